"""The OR-Tools re-sequencer: the only module of the package that imports OR-Tools.

The model: node 0 is the vehicle's position, 1..n the stops, n+1 the end. Distance and
time (travel plus the service of the node left) are registered as matrices, not Python
callbacks. Windows are soft (``SetCumulVarSoftUpperBound`` on each stop at its due time,
on the end at the shift end); load and load depth are soft bounds on two more
dimensions. Guided local search starts from the current order (``ReadAssignmentFromRoutes``)
under a hard time limit. The break is not in the model: the answer is judged by
:func:`edge.sequencer.schedule.simulate`, which places it.
"""

from __future__ import annotations

import logging
import time

from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from edge.sequencer.base import build_result
from edge.sequencer.problem import (
    SequencerError,
    SequenceResult,
    SequencerParams,
    SequencingProblem,
)

__all__ = ["OrToolsSequencer"]

log = logging.getLogger(__name__)

COST_SCALE = 10  # integer costs: a metre is worth COST_SCALE
MIN_SEARCH_S = 0.005  # never hand OR-Tools less than this


class OrToolsSequencer:
    """OR-Tools routing with soft windows and guided local search, warm-started."""

    name = "ortools"

    def solve(self, problem: SequencingProblem, params: SequencerParams) -> SequenceResult:
        t0 = time.perf_counter()
        try:
            order = _solve(problem, params, t0)
        except SequencerError:
            raise
        except Exception as exc:  # OR-Tools raises plain Python errors from SWIG
            raise SequencerError(f"ortools failed: {exc}") from exc
        return build_result(problem, params, order, self.name, time.perf_counter() - t0)


def _solve(problem: SequencingProblem, params: SequencerParams, t0: float) -> list[str]:
    stops = problem.stops
    n = len(stops)
    if n <= 1:
        return list(problem.current_order)
    nodes = [problem.start_node, *(s.node for s in stops), problem.end_node]
    size = n + 2
    tt, dm = problem.travel_time, problem.distance
    service = [0, *(s.service for s in stops), 0]
    dist = [[dm[nodes[i]][nodes[j]] * COST_SCALE for j in range(size)] for i in range(size)]
    ttm = [[tt[nodes[i]][nodes[j]] + service[i] for j in range(size)] for i in range(size)]
    for i in range(size):  # no arcs back into the start or out of the end
        dist[i][0] = ttm[i][0] = 0
        dist[n + 1][i] = ttm[n + 1][i] = 0

    manager = pywrapcp.RoutingIndexManager(size, 1, [0], [n + 1])
    routing = pywrapcp.RoutingModel(manager)
    arc = routing.RegisterTransitMatrix(dist)
    routing.SetArcCostEvaluatorOfAllVehicles(arc)

    t_start = problem.start_time
    horizon = (
        max([s.due for s in stops] + [s.ready for s in stops] + [problem.shift_end or 0, t_start])
        - t_start
        + sum(max(row) for row in ttm)
        + 1
    )
    time_cb = routing.RegisterTransitMatrix(ttm)
    routing.AddDimension(time_cb, horizon, horizon, False, "time")
    tdim = routing.GetDimensionOrDie("time")
    tdim.CumulVar(routing.Start(0)).SetValue(0)
    late_coef = max(1, round(params.lateness_weight * COST_SCALE))
    for k, s in enumerate(stops, start=1):
        idx = manager.NodeToIndex(k)
        tdim.CumulVar(idx).SetMin(max(0, s.ready - t_start))
        tdim.SetCumulVarSoftUpperBound(idx, max(0, s.due - t_start), late_coef)
    if problem.shift_end is not None:
        tdim.SetCumulVarSoftUpperBound(
            routing.End(0), max(0, problem.shift_end - t_start), late_coef
        )

    if problem.capacity is not None:
        delta = [0, *(s.pickup - s.delivery for s in stops), 0]
        load_cb = routing.RegisterUnaryTransitVector(delta)
        big = problem.initial_load + sum(s.pickup for s in stops) + 1
        routing.AddDimension(load_cb, 0, big, False, "load")
        ldim = routing.GetDimensionOrDie("load")
        ldim.CumulVar(routing.Start(0)).SetValue(problem.initial_load)
        over_coef = max(1, round(params.overload_weight * COST_SCALE))
        for k in range(1, n + 1):
            ldim.SetCumulVarSoftUpperBound(manager.NodeToIndex(k), problem.capacity, over_coef)

    if params.depth_weight > 0 and any(s.depth > 0 for s in stops):
        pos_cb = routing.RegisterUnaryTransitVector([1] * size)
        routing.AddDimension(pos_cb, 0, size + 1, True, "position")
        pdim = routing.GetDimensionOrDie("position")
        for k, s in enumerate(stops, start=1):  # cost depth * (n - position) / (n - 1)
            coef = round(params.depth_weight * s.depth * COST_SCALE / (n - 1))
            if coef > 0:
                pdim.SetCumulVarSoftLowerBound(manager.NodeToIndex(k), n, coef)

    if problem.committed_next is not None:
        first = manager.NodeToIndex(problem.index[problem.committed_next] + 1)
        routing.solver().Add(routing.NextVar(routing.Start(0)) == first)

    search = pywrapcp.DefaultRoutingSearchParameters()
    search.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    )
    search.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    left = params.time_limit_s - (time.perf_counter() - t0)
    search.time_limit.FromMilliseconds(max(int(MIN_SEARCH_S * 1000), int(left * 1000)))
    search.log_search = False

    routing.CloseModelWithParameters(search)
    warm = [manager.NodeToIndex(problem.index[sid] + 1) for sid in problem.current_order]
    initial = routing.ReadAssignmentFromRoutes([warm], True)
    if initial is None:
        log.warning("ortools could not read the current order as a warm start")
        solution = routing.SolveWithParameters(search)
    else:
        solution = routing.SolveFromAssignmentWithParameters(initial, search)
    if solution is None:
        raise SequencerError(f"ortools found no route (status {routing.status()})")
    order: list[str] = []
    idx = routing.Start(0)
    idx = solution.Value(routing.NextVar(idx))
    while not routing.IsEnd(idx):
        order.append(stops[manager.IndexToNode(idx) - 1].id)
        idx = solution.Value(routing.NextVar(idx))
    return order
