"""The PyVRP re-sequencer: the only module of the package that imports PyVRP.

PyVRP's windows are hard (a violated window is "time warp", penalised during the search
but not a lateness); our windows are soft. So this sequencer asks PyVRP for the shortest
route that keeps every window, warm-started from the current order, and hands whatever
PyVRP ends with (feasible or not) to the common simulation, which prices lateness. When no
route can keep every window PyVRP's answer may be poor; the portfolio sends such days to
OR-Tools, whose soft windows are native. A committed next stop is honoured by solving from
that stop onwards. The break and the load depth are not in the model.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pyvrp
from pyvrp.stop import MaxRuntime, MultipleCriteria, NoImprovement

from edge.sequencer.base import build_result
from edge.sequencer.problem import (
    SequencerError,
    SequenceResult,
    SequencerParams,
    SequencingProblem,
)

__all__ = ["PyVrpSequencer"]

log = logging.getLogger(__name__)

MIN_SEARCH_S = 0.005
PATIENCE = 1500  # iterations without improvement after which the search stops early
NO_LIMIT = 2**40


class PyVrpSequencer:
    """PyVRP's iterated local search with hard windows, warm-started, seeded."""

    name = "pyvrp"

    def solve(self, problem: SequencingProblem, params: SequencerParams) -> SequenceResult:
        t0 = time.perf_counter()
        try:
            order = _solve(problem, params, t0)
        except SequencerError:
            raise
        except Exception as exc:  # PyVRP raises ValueError/RuntimeError from its C++ core
            raise SequencerError(f"pyvrp failed: {exc}") from exc
        return build_result(problem, params, order, self.name, time.perf_counter() - t0)


def _solve(problem: SequencingProblem, params: SequencerParams, t0: float) -> list[str]:
    stops = list(problem.stops)
    start_node, start_time = problem.start_node, problem.start_time
    head: list[str] = []
    if problem.committed_next is not None:  # solve from the committed stop onwards
        c = stops[problem.index[problem.committed_next]]
        arrive = start_time + problem.travel_time[start_node][c.node]
        start_time = max(arrive, c.ready) + c.service
        start_node = c.node
        head = [c.id]
        stops = [s for s in stops if s.id != c.id]
    if len(stops) <= 1:
        return head + [s.id for s in stops]

    nodes = [start_node, problem.end_node, *(s.node for s in stops)]
    coords = problem.coordinates
    locations = [
        pyvrp.Location(x=coords[v][1], y=coords[v][0]) if coords else pyvrp.Location(x=0, y=0)
        for v in nodes
    ]
    idx = np.array(nodes)
    dist = np.asarray(problem.distance, dtype=np.int64)[np.ix_(idx, idx)]
    dur = np.asarray(problem.travel_time, dtype=np.int64)[np.ix_(idx, idx)]
    use_load = problem.capacity is not None
    clients = [
        pyvrp.Client(
            location=k + 2,
            delivery=[s.delivery] if use_load else [],
            pickup=[s.pickup] if use_load else [],
            service_duration=s.service,
            tw_early=max(0, s.ready - start_time),
            tw_late=max(0, s.due - start_time),
            name=s.id,
        )
        for k, s in enumerate(stops)
    ]
    depots = [pyvrp.Depot(location=0), pyvrp.Depot(location=1)]
    vehicle = pyvrp.VehicleType(
        num_available=1,
        capacity=[problem.capacity] if use_load and problem.capacity is not None else [],
        start_depot=0,
        end_depot=1,
        initial_load=[problem.extra_load] if use_load else [],
    )
    data = pyvrp.ProblemData(locations, clients, depots, [vehicle], [dist], [dur])
    pos = {s.id: k for k, s in enumerate(stops)}  # a route lists client indices
    warm_ids = [sid for sid in problem.current_order if sid in pos]
    initial = pyvrp.Solution(data, [[pos[sid] for sid in warm_ids]])
    left = max(MIN_SEARCH_S, params.time_limit_s - (time.perf_counter() - t0))
    result = pyvrp.solve(
        data,
        stop=MultipleCriteria([MaxRuntime(left), NoImprovement(PATIENCE)]),
        seed=params.seed,
        collect_stats=False,
        display=False,
        initial_solution=initial,
    )
    best = result.best
    routes = best.routes()
    if best.num_missing_clients() or len(routes) != 1:
        raise SequencerError("pyvrp returned an incomplete route")
    visits = [a.idx for a in routes[0] if a.is_client()]
    log.debug("pyvrp: feasible=%s distance=%s", best.is_feasible(), best.distance())
    return head + [stops[v].id for v in visits]
