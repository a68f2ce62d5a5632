"""The VROOM planner: the only module that imports pyvroom.

VROOM's construction heuristics and local search reach fewer vehicles than PyVRP in a few
seconds on time-windowed problems (``docs/performance.md``), so the portfolio uses it to
find a first plan that PyVRP then improves. It runs only on models it represents exactly:
every vehicle timed (no carrier), no stop limits, every order allowed on every vehicle.
Each order is its own VROOM location (like the PyVRP mapping), so per-order prices sit in
the cost matrix; vehicles of one cost class share a profile; a gig courier has no end.
VROOM has no seed and is not bounded by iterations: the portfolio never uses it for a
solve that must replay exactly (one with ``iteration_limit``).

VROOM's timeout bounds its local search, not its construction heuristics: at 1,000 orders
a 1.5 s timeout took 7-29 s on the shared 2-core machine under load. So VROOM runs in a
forked child that is killed at the deadline: the solve then says VROOM found no plan in
time, and the caller's budget holds (``forked.ForkedRun``). ``VroomPlanner.start`` returns
at once with the run (``VroomRun``), so the caller can work beside it (the portfolio runs
PyVRP on the other core) and collect the plan later. On a day of more than
``LARGE_DAY_ORDERS`` orders VROOM runs its construction only. The coordinator's solves are
bounded by iterations and never call VROOM.
"""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import vroom

from cloud.planning.forked import ForkedRun, child_timeout
from cloud.planning.model import ANYWHERE, Model
from cloud.planning.problem import OrderKind
from cloud.planning.result import PlanResult

__all__ = ["VroomPlanner", "VroomRun", "vroom_supports"]

EXPLORATION_LEVEL = 4
"""Level 5 doubles the time for little: 4 reached R103's 13 vehicles in 4.5 s, 5 in 9 s."""
LARGE_DAY_ORDERS = 400
LARGE_DAY_LEVEL = 0
"""Above ``LARGE_DAY_ORDERS`` the construction dominates: at 1,000 orders level 4 took 4-21 s
with a 1.5 s timeout, level 1 1.3-2.5 s and level 0 0.8-1.4 s (quiet machine) for fleets
within one vehicle of each other; from either, the 10 s plans of the six 1,000-order
Homberger days needed the same 369 vehicles in all."""
LARGE_DAY_SEARCH_S = 0.05
"""VROOM's own timeout on a large day. There VROOM is wanted for its construction (a small
fleet, which PyVRP's fleet phase then improves), and the timeout does not bound the
construction: at 1,000 orders VROOM returned 0.9-2 s after its timeout. So its search is
all but cut, and the solve returns as soon as the construction is done."""
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


def is_large_day(model: Model) -> bool:
    """More than ``LARGE_DAY_ORDERS`` orders: VROOM runs its construction only."""
    return len(model.orders) > LARGE_DAY_ORDERS


class VroomPlanner:
    """Plans with VROOM at its top exploration level, bounded by its timeout."""

    name = "vroom"

    def solve(self, model: Model, time_limit_s: float, *, threads: int = THREADS) -> PlanResult:
        """VROOM's plan within ``time_limit_s`` (waits for it)."""
        return self.start(model, time_limit_s, threads=threads).result()

    def start(self, model: Model, time_limit_s: float, *, threads: int = THREADS) -> VroomRun:
        """Start a solve in a forked child and return at once: the caller goes on with
        other work (the portfolio runs PyVRP beside it) and collects the plan later."""
        return VroomRun(model, time_limit_s, threads)


class VroomRun(ForkedRun):
    """One VROOM solve running in a forked child, killed at its deadline."""

    def __init__(self, model: Model, time_limit_s: float, threads: int) -> None:
        timeout = child_timeout(time_limit_s)
        if is_large_day(model):
            timeout = min(LARGE_DAY_SEARCH_S, timeout)
        refused = None if vroom_supports(model) else "VROOM does not support this problem"
        super().__init__(
            model,
            time_limit_s,
            _solve,
            (model, timeout, threads),
            solver=VroomPlanner.name,
            label="VROOM",
            refused=refused,
        )


def _solve(model: Model, time_limit_s: float, threads: int = THREADS) -> dict[int, list[int]]:
    """VROOM's plan as vehicle → orders (bounded by VROOM's own timeout only)."""
    t0 = time.perf_counter()
    inp = _build(model)
    budget = max(time_limit_s - (time.perf_counter() - t0), _MIN_BUDGET_S)
    sol = inp.solve(
        exploration_level=LARGE_DAY_LEVEL if is_large_day(model) else EXPLORATION_LEVEL,
        nb_threads=threads,
        timeout=timedelta(seconds=budget),
    )
    assignment: dict[int, list[int]] = {}
    df = sol.routes
    for vid, group in df.groupby("vehicle_id", sort=True):
        kinds, ids = group["type"], group["id"]
        jobs = [int(i) - 1 for t, i in zip(kinds, ids, strict=True) if t == "job"]
        if jobs:
            assignment[int(vid) - 1] = jobs
    return assignment


def _matrix(a: np.ndarray) -> np.ndarray:
    """``a`` as the unsigned 32-bit matrix VROOM takes (given as is, not as lists: 0.2 s less
    at 1,000 orders); a value it cannot hold is an error, never a wrapped number."""
    if a.size and (a.min() < 0 or a.max() > np.iinfo(np.uint32).max):
        raise ValueError(f"VROOM matrix values must lie in 0..2**32-1, not {a.min()}..{a.max()}")
    return np.ascontiguousarray(a, dtype=np.uint32)


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
            inp.set_durations_matrix(name, _matrix(dur))
            inp.set_costs_matrix(name, _matrix(cost))
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
