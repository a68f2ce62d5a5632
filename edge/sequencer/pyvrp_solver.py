"""The PyVRP re-sequencer: the only module of the package that imports PyVRP.

Our windows are soft; PyVRP's are hard, a violated window being "time warp" that its
adaptive penalties push out of the search. PyVRP as it comes keeps as its best only routes
that keep every window, so on a day where none does its answer is the warm start, however
late. The default model lets PyVRP's iterated local search run as it is (its adaptive
penalties guide it well to window-keeping routes, and close to them where there are none)
but judges its candidates by our simulation: every candidate that could beat the best so
far is simulated exactly (lateness carries over along the route, the break and load depth
are placed), and the exactly cheapest one is the answer. Whether a candidate could is
decided by pricing its time warp and excess load as we price lateness and overload, a
lower bound of our cost. When no candidate has kept every window by half the time, the
rest goes to polishing the answer with an exact iterated local search
(:func:`edge.sequencer.greedy.polish`), since time warp is a poor guide to lateness.

(Pricing time warp at the lateness weight inside the search, with fixed penalties, was
tried and dropped: time warp does not carry over, so that search settles on routes whose
real lateness is far higher, 10x the cost of stock PyVRP on the synthetic van days.)

The search starts from the warm start polished by one exhaustive local search over the 20
nearest neighbours (a third of the time of the 50 the iterations use: this first descent
cannot be interrupted, and from a poor order at 200 stops it took longer than the whole
budget), and stops
at the time limit or once the exact best has not improved for ``patience`` iterations
(PyVRP's ``NoImprovement`` fed with our cost, capped by ``MaxRuntime``). A committed next
stop is honoured by solving from that stop onwards.

``PyVrpSequencer(soft=False)`` is PyVRP as it comes (hard windows, adaptive penalties,
warm start, the whole time limit): the benchmark's peer; with ``warm=False`` it starts, as
``pyvrp.solve`` does by default, from a random order polished by one exhaustive local
search, which its time limit does not bound.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pyvrp
from pyvrp.search import (
    OPERATORS,
    LocalSearch,
    NeighbourhoodParams,
    PerturbationManager,
    PerturbationParams,
    compute_neighbours,
)
from pyvrp.stop import MaxRuntime, MultipleCriteria, NoImprovement

from edge.sequencer.base import build_result
from edge.sequencer.greedy import polish
from edge.sequencer.problem import (
    SequencerError,
    SequenceResult,
    SequencerParams,
    SequencingProblem,
)
from edge.sequencer.schedule import Evaluator

__all__ = ["PyVrpSequencer"]

log = logging.getLogger(__name__)

MIN_SEARCH_S = 0.002  # never hand the search less than this
RESERVE_S = 0.004  # kept back from the time limit for building the answer
PENALTIES = pyvrp.PenaltyParams()  # PyVRP's adaptive penalties guide the search
PATIENCE = 100  # iterations without an exact improvement after which the search stops
NEIGHBOURS = 50  # granular neighbourhood of the iterations (PyVRP's default)
PERTURBATIONS = (1, 25)  # clients perturbed per iteration, min and max (PyVRP's default)
HISTORY = 300  # late-acceptance history length (PyVRP's default)
EXHAUSTIVE_ON_BEST = False
LATE_DAY_SEARCH_SHARE = 0.5  # if no route kept every window by then, the rest polishes
DESCENT_NEIGHBOURS = 20  # the first, uninterruptible descent: a third of the time of 50


class PyVrpSequencer:
    """PyVRP's iterated local search, judged by our simulation of soft windows."""

    name = "pyvrp"

    def __init__(
        self,
        soft: bool = True,
        patience: int = PATIENCE,
        neighbours: int = NEIGHBOURS,
        warm: bool = True,
    ) -> None:
        self.soft = soft
        self.patience = patience
        self.neighbours = neighbours
        self.warm = warm
        if not soft:
            self.name = "pyvrp-stock" if warm else "pyvrp-stock-cold"

    def solve(self, problem: SequencingProblem, params: SequencerParams) -> SequenceResult:
        t0 = time.perf_counter()
        try:
            order = self._solve(problem, params, t0)
        except SequencerError:
            raise
        except Exception as exc:  # PyVRP raises ValueError/RuntimeError from its C++ core
            raise SequencerError(f"pyvrp failed: {exc}") from exc
        return build_result(problem, params, order, self.name, time.perf_counter() - t0)

    def _solve(self, problem: SequencingProblem, params: SequencerParams, t0: float) -> list[str]:
        model = _Model(problem)
        if model.size <= 1:
            return model.head + [s.id for s in model.stops]
        if not self.soft:
            left = max(MIN_SEARCH_S, params.time_limit_s - (time.perf_counter() - t0))
            result = pyvrp.solve(
                model.data,
                stop=MaxRuntime(left),
                seed=params.seed,
                collect_stats=False,
                initial_solution=model.warm if self.warm else None,
            )
            return model.order(result.best)
        return _soft_search(model, problem, params, t0, self.patience, self.neighbours)


class _Model:
    """The problem as PyVRP data: node 0 where the van is (or the committed stop), 1 the end."""

    def __init__(self, problem: SequencingProblem) -> None:
        stops = list(problem.stops)
        start_node, start_time = problem.start_node, problem.start_time
        self.head: list[str] = []
        if problem.committed_next is not None:  # solve from the committed stop onwards
            c = stops[problem.index[problem.committed_next]]
            arrive = start_time + problem.travel_time[start_node][c.node]
            start_time = max(arrive, c.ready) + c.service
            start_node = c.node
            self.head = [c.id]
            stops = [s for s in stops if s.id != c.id]
        self.stops = stops
        self.size = len(stops)
        if self.size <= 1:
            return
        nodes = [start_node, problem.end_node, *(s.node for s in stops)]
        coords = problem.coordinates
        locations = [
            pyvrp.Location(x=coords[v][1], y=coords[v][0]) if coords else pyvrp.Location(x=0, y=0)
            for v in nodes
        ]
        idx = np.array(nodes)
        tt, dm = problem.arrays()
        dist = dm[np.ix_(idx, idx)]
        dur = tt[np.ix_(idx, idx)]
        use_load = problem.capacity is not None
        clients = [
            pyvrp.Client(
                location=k + 2,
                delivery=[s.delivery] if use_load else [],
                pickup=[s.pickup] if use_load else [],
                service_duration=s.service,
                tw_early=max(0, s.ready - start_time),
                tw_late=max(0, min(s.due - start_time, 2**40)),
                name=s.id,
            )
            for k, s in enumerate(stops)
        ]
        depots = [pyvrp.Depot(location=0), pyvrp.Depot(location=1)]
        shift_end = problem.shift_end
        vehicle = pyvrp.VehicleType(
            num_available=1,
            capacity=[problem.capacity] if use_load and problem.capacity is not None else [],
            start_depot=0,
            end_depot=1,
            tw_early=0,
            tw_late=max(0, shift_end - start_time) if shift_end is not None else 2**40,
            start_late=0,  # the van leaves now
            initial_load=[problem.extra_load] if use_load else [],
        )
        self.data = pyvrp.ProblemData(locations, clients, depots, [vehicle], [dist], [dur])
        pos = {s.id: k for k, s in enumerate(stops)}  # a route lists client indices
        self.warm = pyvrp.Solution(
            self.data, [[pos[sid] for sid in problem.current_order if sid in pos]]
        )

    def visits(self, sol: pyvrp.Solution) -> list[int]:
        routes = sol.routes()
        if len(routes) != 1 or sol.num_missing_clients():
            raise SequencerError("pyvrp returned an incomplete route")
        return [a.idx for a in routes[0] if a.is_client()]

    def order(self, sol: pyvrp.Solution) -> list[str]:
        return self.head + [self.stops[v].id for v in self.visits(sol)]


class _Judge(pyvrp.IteratedLocalSearchCallbacks):
    """Simulates promising candidates exactly and keeps the cheapest; a stopping criterion
    on our cost (``NoImprovement``) and the time cap. ``ce`` prices time warp and excess
    load as we price lateness and overload: the lower bound of our cost."""

    def __init__(
        self,
        model: _Model,
        problem: SequencingProblem,
        params: SequencerParams,
        ce: pyvrp.CostEvaluator,
    ) -> None:
        self.model, self.ce = model, ce
        self.ev = Evaluator(problem, params)
        self.prefix = [problem.index[sid] for sid in model.head]
        self.pos = [problem.index[s.id] for s in model.stops]
        self.best: list[int] | None = None
        self.best_cost = float("inf")
        self.last_key: tuple[int, int] | None = None
        self.iterations = 0
        self.kept_windows = False  # a candidate without time warp or excess load was seen
        self._stop: MultipleCriteria | None = None
        self._handover = 0.0

    def arm(self, cap_s: float, patience: int, late_share: float) -> None:
        """Start the clock: stop after ``cap_s`` or ``patience`` iterations without gain,
        or after ``late_share`` of ``cap_s`` if no candidate has kept every window yet."""
        self._stop = MultipleCriteria([MaxRuntime(cap_s), NoImprovement(patience)])
        self._handover = time.perf_counter() + late_share * cap_s

    def consider(self, sol: pyvrp.Solution) -> None:
        # The penalised cost never exceeds our cost of the same route: lateness carries
        # over where time warp does not, overload is summed per stop where excess load is
        # the route's peak, and the break only adds. So a candidate whose penalised cost
        # is not below the best exact cost cannot beat it, and is not simulated.
        if not self.kept_windows and sol.is_feasible():
            self.kept_windows = True
        pen = self.ce.penalised_cost(sol)
        if pen >= self.best_cost + 1:
            return
        key = (pen, sol.distance())
        if key == self.last_key:
            return
        self.last_key = key
        idx = self.prefix + [self.pos[v] for v in self.model.visits(sol)]
        cost = self.ev.cost(idx)
        if cost < self.best_cost - 1e-9:
            self.best, self.best_cost = idx, cost

    def on_iteration(self, current, candidate, best, cost_evaluator) -> None:  # type: ignore[no-untyped-def]
        self.iterations += 1
        self.consider(candidate)

    def __call__(self, best_cost: int) -> bool:  # StoppingCriterion, on our exact cost
        if self._stop is None:
            return True
        if not self.kept_windows and time.perf_counter() > self._handover:
            return True  # a late day: the rest of the time goes to the exact polish
        return self._stop(round(self.best_cost * 1000) if self.best is not None else 2**62)


def _soft_search(
    model: _Model,
    problem: SequencingProblem,
    params: SequencerParams,
    t0: float,
    patience: int,
    neighbours: int,
) -> list[str]:
    data = model.data
    rng = pyvrp.RandomNumberGenerator(seed=params.seed)
    nbh = compute_neighbours(data, NeighbourhoodParams(num_neighbours=neighbours))
    first = nbh
    if neighbours > DESCENT_NEIGHBOURS:
        first = compute_neighbours(data, NeighbourhoodParams(num_neighbours=DESCENT_NEIGHBOURS))
    ls = LocalSearch(data, rng, first, PerturbationManager(PerturbationParams(*PERTURBATIONS)))
    for op in OPERATORS:
        if op.supports(data):
            ls.add_operator(op(data))
    pm = pyvrp.PenaltyManager(PENALTIES.midpoint_penalties(data), PENALTIES)
    ours = pyvrp.CostEvaluator(
        [params.overload_weight] * data.num_load_dimensions, params.lateness_weight, 0.0
    )
    deadline = t0 + params.time_limit_s - RESERVE_S
    judge = _Judge(model, problem, params, ours)
    judge.consider(model.warm)
    if deadline - time.perf_counter() > MIN_SEARCH_S:
        init = ls(model.warm, pm.cost_evaluator(), exhaustive=True)
        judge.consider(init)
        ls.neighbours = nbh
        left = deadline - time.perf_counter()
        if left > MIN_SEARCH_S:
            judge.arm(left, patience, LATE_DAY_SEARCH_SHARE)
            ils = pyvrp.IteratedLocalSearch(
                data,
                pm,
                ls,
                init,
                pyvrp.IteratedLocalSearchParams(
                    history_length=HISTORY, exhaustive_on_best=EXHAUSTIVE_ON_BEST, callbacks=judge
                ),
            )
            ils.run(judge, collect_stats=False)
        if not judge.kept_windows and judge.best is not None:  # a late day
            judge.best, judge.best_cost = polish(judge.ev, judge.best, deadline, params.seed)
    log.debug(
        "pyvrp: %d iterations, cost %.0f, %.3f s",
        judge.iterations,
        judge.best_cost,
        time.perf_counter() - t0,
    )
    assert judge.best is not None  # the warm start is always judged
    return [judge.ev.ids[i] for i in judge.best]
