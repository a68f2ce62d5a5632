"""Solomon/Homberger instances as planning problems, the way the literature scores them.

Distances x100 rounded, travel times x100 rounded *up*, windows and service x100: a plan
feasible on these integers is feasible in double precision. One own-van type with the
file's vehicle limit and capacity; cost = distance; a large fixed cost per vehicle makes
the objective hierarchical (fewer vehicles first, then distance).
"""

from __future__ import annotations

import math
from dataclasses import replace

from cloud.planning.params import PlanningParams
from cloud.planning.problem import Order, OwnVan, PlanningProblem
from cloud.planning.result import PlanResult
from routing.instance import Instance

__all__ = ["SCALE", "customer_routes", "hierarchical_params", "solomon_problem"]

SCALE = 100
HIERARCHICAL_FIXED_COST = 10_000 * SCALE
"""More than any one route's length on these instances: one vehicle less always wins."""


def solomon_problem(inst: Instance) -> PlanningProblem:
    n = len(inst.customers)
    dist = [[inst.distance(a, b) for b in range(n)] for a in range(n)]
    distances = [[round(d * SCALE) for d in row] for row in dist]
    durations = [[math.ceil(d * SCALE - 1e-6) for d in row] for row in dist]
    depot = inst.depot
    orders = tuple(
        Order(
            id=str(c.number),
            location=c.number,
            demand=c.demand,
            ready=c.ready * SCALE,
            due=c.due * SCALE,
            service=c.service * SCALE,
        )
        for c in inst.customers[1:]
    )
    vans = tuple(
        OwnVan(
            id=f"v{k}",
            depot=0,
            capacity=inst.capacity,
            shift_start=depot.ready * SCALE,
            shift_end=depot.due * SCALE,
            cost_per_km=1000,
        )
        for k in range(inst.vehicles)
    )
    coords = [(c.x, c.y) for c in inst.customers]
    return PlanningProblem(
        durations=durations,
        distances=distances,
        orders=orders,
        vehicles=vans,
        coordinates=coords,
    )


def hierarchical_params(params: PlanningParams) -> PlanningParams:
    """``params`` with the fixed cost per vehicle that puts fewer vehicles first."""
    return replace(params, vehicle_fixed_cost=HIERARCHICAL_FIXED_COST)


def customer_routes(result: PlanResult) -> list[list[int]]:
    """Routes as lists of customer numbers (order ids are the customer numbers)."""
    return [[int(s.order_id) for s in r.stops] for r in result.routes]
