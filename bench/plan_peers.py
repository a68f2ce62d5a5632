"""Peers for the cloud planner benchmark, each on the same integer matrices as Wayline.

* ``wayline``: ``cloud.planning.plan`` with ``solver=auto`` (the portfolio: VROOM for a
  starting plan on 15 % of the budget, the fleet-minimisation phase from it, then PyVRP on
  distance within the fleet found).
* ``ortools``: Wayline's OR-Tools planner, which *is* the best OR-Tools setup found
  (matrices, parallel cheapest insertion, guided local search, fixed cost per vehicle).
* ``pyvrp``: plain PyVRP as a peer: one vehicle type, default parameters.
* ``vroom``: pyvroom at its top exploration level, one thread (it has no time budget).
* ``vroom-t``: the same, stopped at the column's budget (its timeout): for the large
  Homberger instances, where unbounded VROOM runs for minutes.

Every peer returns routes of customer numbers; the caller re-checks them in double precision.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pyvrp
import vroom
from pyvrp.stop import MaxRuntime

from cloud.planning import (
    PlanningParams,
    SolverChoice,
    customer_routes,
    hierarchical_params,
    plan,
    solomon_problem,
)
from cloud.planning.solomon import HIERARCHICAL_FIXED_COST
from routing import Instance

__all__ = ["PEERS", "UNBUDGETED", "PeerRun"]


@dataclass(frozen=True, slots=True)
class PeerRun:
    routes: list[list[int]]
    seconds: float
    note: str = ""


def _wayline(inst: Instance, seconds: float, seed: int, solver: SolverChoice) -> PeerRun:
    problem = solomon_problem(inst)
    params = hierarchical_params(PlanningParams(time_limit_s=seconds, seed=seed, solver=solver))
    t0 = time.perf_counter()
    result = plan(problem, params)
    note = "" if result.status == "complete" else f"{result.status}: {result.message}"
    return PeerRun(customer_routes(result), time.perf_counter() - t0, note or result.solver)


def wayline(inst: Instance, seconds: float, seed: int) -> PeerRun:
    return _wayline(inst, seconds, seed, SolverChoice.AUTO)


def ortools_best(inst: Instance, seconds: float, seed: int) -> PeerRun:
    return _wayline(inst, seconds, seed, SolverChoice.ORTOOLS)


def pyvrp_plain(inst: Instance, seconds: float, seed: int) -> PeerRun:
    t0 = time.perf_counter()
    p = solomon_problem(inst)
    dist = np.asarray(p.distances, dtype=np.int64)
    dur = np.asarray(p.durations, dtype=np.int64)
    cs = inst.customers
    data = pyvrp.ProblemData(
        locations=[pyvrp.Location(c.x, c.y) for c in cs],
        clients=[
            pyvrp.Client(
                c.number,
                delivery=[c.demand],
                service_duration=c.service * 100,
                tw_early=c.ready * 100,
                tw_late=c.due * 100,
            )
            for c in cs[1:]
        ],
        depots=[pyvrp.Depot(0, tw_early=cs[0].ready * 100, tw_late=cs[0].due * 100)],
        vehicle_types=[
            pyvrp.VehicleType(
                inst.vehicles,
                capacity=[inst.capacity],
                fixed_cost=HIERARCHICAL_FIXED_COST,
                tw_early=cs[0].ready * 100,
                tw_late=cs[0].due * 100,
            )
        ],
        distance_matrices=[dist],
        duration_matrices=[dur],
    )
    budget = max(seconds - (time.perf_counter() - t0), 0.05)
    res = pyvrp.solve(data, MaxRuntime(budget), seed=seed, collect_stats=False)
    routes = [
        [a.idx + 1 for a in r if a.type == pyvrp.ActivityType.CLIENT] for r in res.best.routes()
    ]
    note = "" if res.is_feasible() else "infeasible"
    return PeerRun(routes if res.is_feasible() else [], time.perf_counter() - t0, note)


def vroom_top(inst: Instance, seconds: float, seed: int) -> PeerRun:
    del seconds, seed  # VROOM runs to its own end; deterministic with one thread
    return _vroom(inst, None)


def vroom_timed(inst: Instance, seconds: float, seed: int) -> PeerRun:
    del seed
    return _vroom(inst, seconds)


def _vroom(inst: Instance, timeout: float | None) -> PeerRun:
    t0 = time.perf_counter()
    p = solomon_problem(inst)
    inp = vroom.Input()
    inp.set_durations_matrix("car", [list(r) for r in p.durations])
    inp.set_costs_matrix("car", [list(r) for r in p.distances])
    depot = inst.depot
    for k in range(inst.vehicles):
        inp.add_vehicle(
            vroom.Vehicle(
                k + 1,
                start=0,
                end=0,
                capacity=[inst.capacity],
                time_window=vroom.TimeWindow(depot.ready * 100, depot.due * 100),
                costs=vroom.VehicleCosts(fixed=HIERARCHICAL_FIXED_COST),
            )
        )
    inp.add_job(
        [
            vroom.Job(
                c.number,
                location=c.number,
                delivery=[c.demand],
                default_service=c.service * 100,
                time_windows=[vroom.TimeWindow(c.ready * 100, c.due * 100)],
            )
            for c in inst.customers[1:]
        ]
    )
    bound = {} if timeout is None else {"timeout": timedelta(seconds=timeout)}
    sol = inp.solve(exploration_level=5, nb_threads=1, **bound)
    df = sol.routes
    routes: list[list[int]] = []
    for _, group in df.groupby("vehicle_id", sort=True):
        jobs = [int(i) for t, i in zip(group["type"], group["id"], strict=True) if t == "job"]
        if jobs:
            routes.append(jobs)
    return PeerRun(routes, time.perf_counter() - t0, "")


PEERS: dict[str, Callable[[Instance, float, int], PeerRun]] = {
    "wayline": wayline,
    "ortools": ortools_best,
    "pyvrp": pyvrp_plain,
    "vroom": vroom_top,
    "vroom-t": vroom_timed,
}
UNBUDGETED = frozenset({"vroom"})
"""Peers without a time budget: run once, at the first column, and compared in every one."""
