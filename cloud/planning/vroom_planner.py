"""The VROOM planner: the only module that imports pyvroom.

VROOM's construction heuristics and local search reach fewer vehicles than PyVRP in a few
seconds on time-windowed problems (``docs/performance.md``), so the portfolio uses it to
find a first plan that PyVRP then improves. It runs only on models it represents exactly:
every vehicle timed (no carrier), no stop limits, every order allowed on every vehicle.
Each order is its own VROOM location (like the PyVRP mapping), so per-order prices sit in
the cost matrix; vehicles of one cost class share a profile; a gig courier has no end.
VROOM has no seed and is not bounded by iterations: the portfolio never uses it for a
solve that must replay exactly (one with ``iteration_limit``).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import numpy as np
import vroom

from cloud.planning.evaluate import evaluate, no_solution
from cloud.planning.model import ANYWHERE, Model
from cloud.planning.problem import OrderKind
from cloud.planning.result import PlanResult

__all__ = ["VroomPlanner", "vroom_supports"]

logger = logging.getLogger(__name__)

EXPLORATION_LEVEL = 4
"""Level 5 doubles the time for little: 4 reached R103's 13 vehicles in 4.5 s, 5 in 9 s."""
THREADS = 2
_MIN_BUDGET_S = 0.05


def vroom_supports(model: Model) -> bool:
    """Whether VROOM can plan ``model`` exactly (see the module docstring)."""
    every = frozenset(range(len(model.vehicles)))
    return (
        bool(model.orders)
        and bool(model.vehicles)
        and all(cv.timed and cv.max_stops is None for cv in model.vehicles)
        and all(a == every for a in model.allowed)
    )


class VroomPlanner:
    """Plans with VROOM at its top exploration level, bounded by its timeout."""

    name = "vroom"

    def solve(self, model: Model, time_limit_s: float) -> PlanResult:
        t0 = time.perf_counter()
        if not vroom_supports(model):
            return no_solution(model, self.name, 0.0, "VROOM does not support this problem")
        inp = _build(model)
        budget = max(time_limit_s - (time.perf_counter() - t0), _MIN_BUDGET_S)
        sol = inp.solve(
            exploration_level=EXPLORATION_LEVEL,
            nb_threads=THREADS,
            timeout=timedelta(seconds=budget),
        )
        assignment: dict[int, list[int]] = {}
        df = sol.routes
        for vid, group in df.groupby("vehicle_id", sort=True):
            kinds, ids = group["type"], group["id"]
            jobs = [int(i) - 1 for t, i in zip(kinds, ids, strict=True) if t == "job"]
            if jobs:
                assignment[int(vid) - 1] = jobs
        return evaluate(model, assignment, self.name, time.perf_counter() - t0)


def _build(model: Model) -> vroom.Input:
    depot_locs: list[int] = []
    for cv in model.vehicles:
        for loc in (cv.start, cv.end):
            if loc != ANYWHERE and loc not in depot_locs:
                depot_locs.append(loc)
    nd = len(depot_locs)
    locs = np.asarray(depot_locs + [o.location for o in model.orders], dtype=np.int64)
    service = np.asarray([0] * nd + [o.service for o in model.orders], dtype=np.int64)
    order = np.asarray([-1] * nd + list(range(len(model.orders))), dtype=np.int64)
    dims_size = any(cv.capacity is not None for cv in model.vehicles)
    big_size = sum(o.demand for o in model.orders) + 1

    inp = vroom.Input()
    profiles: dict[tuple[object, ...], str] = {}
    for v, cv in enumerate(model.vehicles):
        key = model.cost_class(v)
        if key not in profiles:
            name = f"p{len(profiles)}"
            profiles[key] = name
            cost = model.cost_matrix(v, locs, service, order)
            dur = model.time_matrix(v, locs, service) - service[:, None]
            np.fill_diagonal(cost, 0)
            np.fill_diagonal(dur, 0)
            inp.set_durations_matrix(name, dur.tolist())
            inp.set_costs_matrix(name, cost.tolist())
        extra = {}
        if dims_size:
            extra["capacity"] = [big_size if cv.capacity is None else cv.capacity]
        if cv.end != ANYWHERE:
            extra["end"] = depot_locs.index(cv.end)
        inp.add_vehicle(
            vroom.Vehicle(
                v + 1,
                start=depot_locs.index(cv.start),
                profile=profiles[key],
                time_window=vroom.TimeWindow(cv.earliest, cv.latest),
                costs=vroom.VehicleCosts(fixed=cv.fixed_cost + model.params.vehicle_fixed_cost),
                **extra,
            )
        )
    jobs = []
    for k, o in enumerate(model.orders):
        amounts = {}
        if dims_size:
            key = "pickup" if o.kind is OrderKind.PICKUP else "delivery"
            amounts[key] = [o.demand]
        jobs.append(
            vroom.Job(
                k + 1,
                location=nd + k,
                default_service=o.service,
                time_windows=[vroom.TimeWindow(o.ready, model.due(o))],
                **amounts,
            )
        )
    inp.add_job(jobs)
    return inp
