"""The ``Planner`` protocol, the portfolio that picks an engine per problem, and ``plan()``.

What the benchmark showed (``bench/plan.py``, ``docs/performance.md``): PyVRP serves the
time-windowed, many-vehicle problems best, but VROOM reaches fewer vehicles sooner, and
PyVRP asked for a feasible plan under a hard fleet limit finds smaller fleets still. So
``auto``, when the solve need not replay by iterations:

* gives VROOM a short share of the budget for a first plan (when it can represent the
  problem; on a day of more than ``vroom_planner.LARGE_DAY_ORDERS`` orders, VROOM's
  construction only, with a longer deadline);
* on a one-kind fleet of up to ``LARGE_DAY_ORDERS`` orders, runs a second VROOM search on
  the other core beside the PyVRP phases, for nearly the whole budget: if it has finished
  when the fleet phase ends, its plan may be the start of the distance phase; otherwise it
  goes on and its plan is compared with the final one (better: fewer vehicles, or as
  many and shorter);
* with one vehicle kind and every order required, starts the fleet-minimisation phase
  from VROOM's plan at once (one vehicle less, again while it succeeds; a try that fails
  costs at most ``FLEET_TRY_SHARE`` of the budget), then spends all the rest on distance
  with PyVRP held to the smallest fleet found (``PyVrpPlanner.shorten``: a fresh search,
  which ends shorter than one warm-started from the fleet phase's plan). As soon as the
  search beside has ended (or at once, if none runs), a second distance search with
  another seed starts on the other core (``SecondSearch``), and the shorter plan is kept:
  PyVRP's result at a given fleet varies with the seed by up to 2 % on the long-route
  Solomon days (R204 at 45 s: 834-850 over four seeds);
* otherwise runs PyVRP from VROOM's plan (or from the current plan), then the fleet phase
  where it applies, and keeps a reserve for OR-Tools, which runs only when PyVRP returns no
  feasible plan (PyVRP keeps required orders required; OR-Tools can leave one out with its
  reason and still plan the rest).

Every candidate is checked by ``evaluate`` and the better one kept. A solve bounded by
``iteration_limit`` uses PyVRP (and the OR-Tools fallback) only, and replays exactly.
``both`` splits the budget evenly and keeps the better result: complete before partial
before none, then the lower objective.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Protocol

from cloud.planning.evaluate import assignment_of
from cloud.planning.forked import ForkedRun
from cloud.planning.model import Model, build_model
from cloud.planning.ortools_planner import OrToolsPlanner
from cloud.planning.params import PlanningParams, SolverChoice
from cloud.planning.problem import PlanningProblem
from cloud.planning.pyvrp_planner import PyVrpPlanner, can_minimise_fleet
from cloud.planning.result import PlanResult, PlanStatus
from cloud.planning.vroom_planner import VroomPlanner, VroomRun, is_large_day, vroom_supports

__all__ = ["Planner", "PortfolioPlanner", "make_planner", "plan"]

logger = logging.getLogger(__name__)

AUTO_RESERVE_FRACTION = 0.1
"""Share of the budget ``auto`` keeps for the OR-Tools fallback."""
AUTO_RESERVE_MAX_S = 3.0
VROOM_SHARE = 0.15
"""Share of the budget ``auto`` gives VROOM for a starting plan."""
VROOM_START_MAX_S = 1.5
"""With the search beside the PyVRP phases running, the VROOM run that starts the fleet
phase only has to give it a plan: it gets ``VROOM_SHARE`` of the budget, at most this. At
60 s its 9 s went to the distance phase instead: on the eight Solomon instances hardest for
Wayline at 60 s, three losses to plain PyVRP by 1.3-2.5 % became ties (R205, R206, RC206)."""
LARGE_DAY_VROOM_SHARE = 0.4
"""The same above ``LARGE_DAY_ORDERS`` orders, where VROOM runs its construction only and
returns as soon as it is done (1-2.5 s at 1,000 orders on a quiet machine, twice that under
load): a deadline, seldom spent. A 1.5 s share (10 s budget) cut it off under load, and the
fleet phase then started from PyVRP's first plan, dozens of vehicles larger."""
FLEET_SHARE = 0.4
"""Share of the budget ``auto`` keeps for the fleet-minimisation phase after PyVRP (when
VROOM gave no plan to start from)."""
FLEET_END = 0.55
"""From VROOM's plan, the fleet phase may start a try until this share of the budget."""
BESIDE_END = 0.97
"""The VROOM search beside the PyVRP phases ends by this share of the budget (its plan is
then compared with theirs; the rest is the margin for collecting it)."""
SECOND_MIN_S = 1.0
"""The second distance search does not start with less time than this left."""
WATCH_EVERY_S = 0.05
"""How often the second search's watcher looks whether VROOM's search beside has ended."""
FLEET_TRY_SHARE = 0.2
"""Share of the budget one "one vehicle less" try may take (a failed try costs this)."""

_RANK = {PlanStatus.COMPLETE: 0, PlanStatus.PARTIAL: 1, PlanStatus.NO_SOLUTION: 2}


class Planner(Protocol):
    """A planning engine: bounded by ``params.time_limit_s``, seeded, warm-started."""

    name: str

    def plan(self, problem: PlanningProblem, params: PlanningParams) -> PlanResult: ...

    def solve(self, model: Model, time_limit_s: float) -> PlanResult: ...


def better(a: PlanResult, b: PlanResult) -> PlanResult:
    """The better of two results: status first, then objective (ties keep ``a``)."""
    ka, kb = (_RANK[a.status], a.objective), (_RANK[b.status], b.objective)
    return b if kb < ka else a


class PortfolioPlanner:
    """Runs PyVRP and/or OR-Tools inside one time budget, per ``params.solver``."""

    name = "portfolio"

    def __init__(self) -> None:
        self._pyvrp = PyVrpPlanner()
        self._ortools = OrToolsPlanner()
        self._vroom = VroomPlanner()

    def plan(self, problem: PlanningProblem, params: PlanningParams) -> PlanResult:
        t0 = time.perf_counter()
        model = build_model(problem, params)
        return self.solve(model, params.time_limit_s - (time.perf_counter() - t0))

    def solve(self, model: Model, time_limit_s: float) -> PlanResult:
        t0 = time.perf_counter()
        choice = model.params.solver
        if choice is SolverChoice.ORTOOLS:
            return self._ortools.solve(model, time_limit_s)
        if choice is SolverChoice.PYVRP:
            return self._pyvrp.solve(model, time_limit_s)
        if choice is SolverChoice.BOTH:
            first = self._pyvrp.solve(model, time_limit_s / 2)
            second = self._ortools.solve(model, time_limit_s - (time.perf_counter() - t0))
            best = better(first, second)
        else:
            best = self._auto(model, time_limit_s, t0)
        return _retimed(best, time.perf_counter() - t0)

    def _auto(self, model: Model, time_limit_s: float, t0: float) -> PlanResult:
        def left() -> float:
            return time_limit_s - (time.perf_counter() - t0)

        reserve = min(AUTO_RESERVE_FRACTION * time_limit_s, AUTO_RESERVE_MAX_S)
        timed = model.params.iteration_limit is None
        fleet = timed and can_minimise_fleet(model)
        first = beside = second = None
        try:
            if timed and vroom_supports(model):
                large = is_large_day(model)
                share = LARGE_DAY_VROOM_SHARE if large else VROOM_SHARE
                if fleet and not large:
                    # A second VROOM search goes on beside the PyVRP phases, on the other core:
                    # given seconds, VROOM sometimes finds the smaller fleet that the fleet
                    # phase's tries do not (R103: 13 vehicles in 4.5 s), or a shorter plan.
                    beside = self._vroom.start(
                        model, BESIDE_END * time_limit_s - (time.perf_counter() - t0), threads=1
                    )
                    start_s = min(share * time_limit_s, VROOM_START_MAX_S)
                    first = self._vroom.solve(model, start_s, threads=1)
                else:
                    first = self._vroom.solve(model, share * time_limit_s)
                if first.status is PlanStatus.COMPLETE:
                    reserve = 0.0  # a complete plan is in hand: no fallback needed
            if fleet and first is not None and first.status is PlanStatus.COMPLETE:
                # VROOM's fleet is the one to beat: the fleet phase starts from it at once,
                # and PyVRP then spends the rest on distance from the smallest fleet found.
                best = self._pyvrp.fewer_vehicles(
                    model,
                    first,
                    FLEET_END * time_limit_s - (time.perf_counter() - t0),
                    try_limit_s=FLEET_TRY_SHARE * time_limit_s,
                    polish=False,
                )
                if beside is not None and beside.done():
                    # VROOM has finished: its plan may be the better start for distance
                    best = better(best, beside.result())
                if spare_cores() > 0:
                    # A second distance search, with another seed, once the other core is free
                    second = SecondSearch(self._pyvrp, model, best, beside, t0 + time_limit_s)
                best = self._pyvrp.shorten(model, best, left())
                other = second.result() if second is not None else None
                if other is not None:
                    best = better(best, other)
                if beside is not None:
                    best = better(best, beside.result())
                return best
        finally:
            if second is not None:
                second.cancel()
            if beside is not None:
                beside.cancel()
        start = None
        if first is not None and first.status is PlanStatus.COMPLETE:
            start = assignment_of(model, first)
        share = FLEET_SHARE if fleet else 0.0
        best = self._pyvrp.solve(model, left() - share * time_limit_s - reserve, start=start)
        if first is not None:
            best = better(best, first)
        if fleet and best.status is PlanStatus.COMPLETE:
            best = self._pyvrp.fewer_vehicles(
                model, best, left(), try_limit_s=FLEET_TRY_SHARE * time_limit_s
            )
        if best.status is not PlanStatus.COMPLETE:
            logger.info("PyVRP: %s; trying OR-Tools", best.message or best.status)
            best = better(best, self._ortools.solve(model, left()))
        return best


class SecondSearch:
    """The second distance search: started on the other core as soon as it is free.

    A watcher thread waits for the VROOM search beside (``beside``, if any) to end, then
    starts ``PyVrpPlanner.start_shorten`` with ``other_seed`` from the better of ``best``
    and VROOM's plan, until ``deadline`` (``time.perf_counter``). On the long-route days
    VROOM's search beside takes several seconds, longer than the fleet phase, so waiting
    for it here rather than skipping the second search is what gives those days two seeds.
    It starts nothing with less than ``SECOND_MIN_S`` left.
    """

    def __init__(
        self,
        pyvrp: PyVrpPlanner,
        model: Model,
        best: PlanResult,
        beside: VroomRun | None,
        deadline: float,
    ) -> None:
        self._pyvrp, self._model, self._best, self._beside = pyvrp, model, best, beside
        self._deadline = deadline
        self._stop = threading.Event()
        self._run: ForkedRun | None = None
        self._watcher = threading.Thread(target=self._start_when_free, daemon=True)
        self._watcher.start()

    def _start_when_free(self) -> None:
        beside = self._beside
        while beside is not None and not beside.done():
            if self._stop.wait(WATCH_EVERY_S):
                return
        left = self._deadline - time.perf_counter()
        if self._stop.is_set() or left < SECOND_MIN_S:
            return
        start = self._best if beside is None else better(self._best, beside.result())
        seed = other_seed(self._model.params.seed)
        logger.info("second distance search: seed %d, %.2f s", seed, left)
        try:
            self._run = self._pyvrp.start_shorten(self._model, start, left, seed=seed)
        except OSError as exc:  # no process to be had: the caller's own search stands
            logger.warning("second distance search not started: %s", exc)

    def result(self) -> PlanResult | None:
        """The second search's plan (waiting for it until the deadline), or ``None`` if it
        never started; the watcher stops waiting for the other core now."""
        self._stop.set()
        self._watcher.join()
        return None if self._run is None else self._run.result()

    def cancel(self) -> None:
        self._stop.set()
        self._watcher.join()
        if self._run is not None:
            self._run.cancel()


def spare_cores() -> int:
    """CPUs this process may use beyond the one it runs on (where the system does not say
    which it may use, the machine's CPUs)."""
    affinity = getattr(os, "sched_getaffinity", None)
    cpus = len(affinity(0)) if affinity is not None else os.cpu_count() or 1
    return max(cpus - 1, 0)


def other_seed(seed: int) -> int:
    """The second distance search's seed: another, and reproducible from ``seed``."""
    return (seed + 1) % 2**32


def _retimed(r: PlanResult, seconds: float) -> PlanResult:
    return PlanResult(
        r.status, r.routes, r.unplanned, r.cost, r.objective, r.solver, seconds, r.message
    )


def make_planner(params: PlanningParams) -> Planner:
    """The planner ``params.solver`` names (the portfolio for ``auto`` and ``both``)."""
    if params.solver is SolverChoice.ORTOOLS:
        return OrToolsPlanner()
    if params.solver is SolverChoice.PYVRP:
        return PyVrpPlanner()
    return PortfolioPlanner()


def plan(problem: PlanningProblem, params: PlanningParams) -> PlanResult:
    """Plan ``problem`` within ``params.time_limit_s`` seconds with the chosen engine."""
    return make_planner(params).plan(problem, params)
