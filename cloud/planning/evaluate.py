"""Check and price a solver's assignment with the model's own leg costs.

Every engine hands back only "vehicle → sequence of orders"; this module re-simulates each
route (earliest service, waiting allowed, departure pushed as late as the first stop
allows), refuses anything infeasible, and builds the :class:`PlanResult`. A plan that fails
the check becomes ``no_solution``: never a half-written plan.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from cloud.planning.model import Model
from cloud.planning.problem import OrderKind
from cloud.planning.result import (
    CostBreakdown,
    PlannedRoute,
    PlannedStop,
    PlanResult,
    PlanStatus,
    UnplannedOrder,
    UnplannedReason,
)

__all__ = ["RouteInfeasible", "assignment_of", "evaluate", "no_solution"]

logger = logging.getLogger(__name__)


class RouteInfeasible(Exception):
    """Internal: a solver's route breaks a constraint (caught here, never leaves the package)."""


def no_solution(model: Model, solver: str, seconds: float, message: str) -> PlanResult:
    unplanned = model.screened + tuple(
        UnplannedOrder(o.id, UnplannedReason.NO_SOLUTION) for o in model.orders
    )
    return PlanResult(
        status=PlanStatus.NO_SOLUTION,
        routes=(),
        unplanned=unplanned,
        cost=CostBreakdown(),
        objective=-1,
        solver=solver,
        seconds=seconds,
        message=message,
    )


def evaluate(
    model: Model, assignment: Mapping[int, Sequence[int]], solver: str, seconds: float
) -> PlanResult:
    """Turn ``{vehicle index: [plannable order index, ...]}`` into a checked result."""
    try:
        return _evaluate(model, assignment, solver, seconds)
    except RouteInfeasible as exc:
        logger.error("%s returned an infeasible plan: %s", solver, exc)
        return no_solution(model, solver, seconds, f"{solver} returned an infeasible plan: {exc}")


def assignment_of(model: Model, result: PlanResult) -> dict[int, list[int]]:
    """A result's routes as ``{vehicle index: [plannable order index, ...]}``."""
    vindex = {cv.vehicle.id: v for v, cv in enumerate(model.vehicles)}
    oindex = {o.id: k for k, o in enumerate(model.orders)}
    return {vindex[r.vehicle_id]: [oindex[s.order_id] for s in r.stops] for r in result.routes}


def _evaluate(
    model: Model, assignment: Mapping[int, Sequence[int]], solver: str, seconds: float
) -> PlanResult:
    seen: set[int] = set()
    routes: list[PlannedRoute] = []
    fixed = dcost = tcost = stops = stab = 0
    for v in sorted(assignment):
        seq = list(assignment[v])
        if not seq:
            continue
        for k in seq:
            if k in seen:
                raise RouteInfeasible(f"order {model.orders[k].id} planned twice")
            if v not in model.allowed[k]:
                raise RouteInfeasible(f"order {model.orders[k].id} not allowed on vehicle {v}")
            seen.add(k)
        route, costs = _simulate(model, v, seq)
        routes.append(route)
        fixed += model.vehicles[v].fixed_cost
        dcost, tcost, stops, stab = (
            a + b for a, b in zip((dcost, tcost, stops, stab), costs, strict=True)
        )

    unplanned = list(model.screened)
    required_dropped = 0
    dropped = [k for k in range(len(model.orders)) if k not in seen]
    short = _capacity_short(model)
    for k in dropped:
        o = model.orders[k]
        if o.optional:
            unplanned.append(UnplannedOrder(o.id, UnplannedReason.POSTPONED))
        else:
            required_dropped += 1
            reason = UnplannedReason.NO_CAPACITY if short else UnplannedReason.NO_FEASIBLE_ROUTE
            unplanned.append(UnplannedOrder(o.id, reason))
    by_id = {o.id: o for o in model.problem.orders}
    postponement = sum(
        by_id[u.order_id].postponement_cost for u in unplanned if by_id[u.order_id].optional
    )
    cost = CostBreakdown(fixed, dcost, tcost, stops, stab, postponement)
    objective = (
        cost.total
        + model.params.vehicle_fixed_cost * len(routes)
        + model.required_penalty * required_dropped
    )
    required_unplanned = any(not by_id[u.order_id].optional for u in unplanned)
    status = PlanStatus.PARTIAL if required_unplanned else PlanStatus.COMPLETE
    return PlanResult(status, tuple(routes), tuple(unplanned), cost, objective, solver, seconds)


def _simulate(model: Model, v: int, seq: list[int]) -> tuple[PlannedRoute, tuple[int, ...]]:
    cv = model.vehicles[v]
    orders = [model.orders[k] for k in seq]
    if cv.max_stops is not None and len(seq) > cv.max_stops:
        raise RouteInfeasible(f"{cv.vehicle.id}: {len(seq)} stops over its {cv.max_stops}")
    if cv.capacity is not None:
        load = sum(o.demand for o in orders if o.kind is OrderKind.DELIVERY)
        peak = load
        for o in orders:
            load += o.demand if o.kind is OrderKind.PICKUP else -o.demand
            peak = max(peak, load)
        if peak > cv.capacity:
            raise RouteInfeasible(f"{cv.vehicle.id}: load {peak} over capacity {cv.capacity}")

    costs = [0, 0, 0, 0, 0]  # distance units, distance cost, time cost, price, stability
    prev, prev_service = cv.start, 0
    for k, o in zip(seq, orders, strict=True):
        for i, c in enumerate(model.leg(v, prev, prev_service, o.location, k)):
            costs[i] += c
        prev, prev_service = o.location, o.service
    for i, c in enumerate(model.leg(v, prev, prev_service, cv.end, None)):
        costs[i] += c

    stops: list[PlannedStop] = []
    start_time = end_time = None
    if cv.timed:
        depart = cv.earliest
        first = orders[0]
        depart = max(depart, first.ready - int(model.dur[cv.start, first.location]))
        t, prev = depart, cv.start
        for o in orders:
            arrival = t + int(model.dur[prev, o.location])
            begin = max(arrival, o.ready)
            if begin > model.due(o):
                raise RouteInfeasible(f"{cv.vehicle.id}: order {o.id} served at {begin} > due")
            t = begin + o.service
            stops.append(PlannedStop(o.id, o.location, arrival, begin, t))
            prev = o.location
        end_time = t + (0 if cv.end < 0 else int(model.dur[prev, cv.end]))
        if end_time > cv.latest:
            raise RouteInfeasible(f"{cv.vehicle.id}: ends at {end_time} after {cv.latest}")
        start_time = depart
    else:
        stops = [PlannedStop(o.id, o.location, None, None, None) for o in orders]
    v_ = cv.vehicle
    route = PlannedRoute(
        vehicle_id=v_.id,
        fleet=v_.fleet,
        kind=v_.kind,
        stops=tuple(stops),
        start_time=start_time,
        end_time=end_time,
        distance=costs[0],
        cost=cv.fixed_cost + sum(costs[1:]),
    )
    return route, tuple(costs[1:])


def _capacity_short(model: Model) -> bool:
    """Whether the required orders need more room than the whole fleet has."""
    required = [o for o in model.orders if not o.optional]
    room = [cv.capacity for cv in model.vehicles if cv.timed]
    if any(c is None for c in room):
        return False
    deliveries = sum(o.demand for o in required if o.kind is OrderKind.DELIVERY)
    stops_room = sum(cv.max_stops or 0 for cv in model.vehicles if not cv.timed)
    own_room = sum(c for c in room if c is not None)
    largest = max((o.demand for o in required), default=1) or 1
    return deliveries > own_room + stops_room * largest
