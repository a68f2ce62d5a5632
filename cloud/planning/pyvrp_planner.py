"""The PyVRP planner: the only module that imports PyVRP.

The model maps onto PyVRP as follows: each order is a client (with its own location, so
per-order prices and stability can sit in the matrices); every start/end location is a
depot, plus a virtual "anywhere" depot where gig couriers end. Vehicles that are
interchangeable share a vehicle type; each type gets a profile whose *distance* matrix is
the model's leg cost (``unit_distance_cost=1``) and whose duration matrix is its travel
time. Orders a vehicle may not serve (skills, pins, cut-off) cost the required-drop penalty
and take longer than the horizon in that profile, so serving them is never feasible.
Optional orders are clients with ``required=False`` and their postponement cost as prize.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyvrp
from pyvrp.exceptions import PenaltyBoundWarning
from pyvrp.stop import FirstFeasible, MaxIterations, MaxRuntime, MultipleCriteria

from cloud.planning.evaluate import assignment_of, evaluate, no_solution
from cloud.planning.forked import ForkedRun, child_timeout
from cloud.planning.model import ANYWHERE, Model, build_model
from cloud.planning.params import PlanningParams
from cloud.planning.problem import OrderKind, PlanningProblem
from cloud.planning.result import PlanResult, PlanStatus

__all__ = ["PyVrpPlanner", "can_minimise_fleet"]

logger = logging.getLogger(__name__)

_MIN_BUDGET_S = 0.05
FLEET_SEARCH_SHARE = 0.6
"""Share of the time left that one "one vehicle less" search may take."""
FRESH_START_SHARE = 0.4
"""Share of the distance phase a fresh search may take to find a feasible plan within the
fleet before the phase falls back to searching from the fleet phase's plan."""
FRESH_MIN_S = 15.0
"""A distance phase shorter than this searches from the fleet phase's plan: on the 56
Solomon instances at 10 s (a phase of about 4.5 s) that came within 0.65 % of the best known
and lost once to VROOM, a fresh start within 0.81 % and twice; at 60 s (a phase of 15-45 s)
the fresh start is the better one (RC202 1367 against 1406)."""
FRESH_MAX_ORDERS = 400
"""Above this many orders the distance phase searches from the fleet phase's plan: PyVRP's
fresh start (a random plan and a full descent) took 2-3 s at 1,000 orders, 0.1 s at 200."""
_INFEASIBLE = np.iinfo(np.int64).max


class PyVrpPlanner:
    """Plans with PyVRP's iterated local search."""

    name = "pyvrp"

    def plan(self, problem: PlanningProblem, params: PlanningParams) -> PlanResult:
        t0 = time.perf_counter()
        model = build_model(problem, params)
        return self.solve(model, params.time_limit_s - (time.perf_counter() - t0))

    def solve(
        self,
        model: Model,
        time_limit_s: float,
        start: Mapping[int, Sequence[int]] | None = None,
    ) -> PlanResult:
        """Search from ``start`` (vehicle → orders) if given, else from the current plan."""
        t0 = time.perf_counter()
        if not model.orders or not model.vehicles:
            return evaluate(model, {}, self.name, time.perf_counter() - t0)
        data, groups = _build(model)
        budget = max(time_limit_s - (time.perf_counter() - t0), _MIN_BUDGET_S)
        stop: Any = MaxRuntime(budget)
        if model.params.iteration_limit is not None:
            stop = MultipleCriteria([MaxIterations(model.params.iteration_limit), stop])
        initial = _warm_start(data, groups, model.warm_routes if start is None else start)
        with warnings.catch_warnings(record=True) as caught:
            # An infeasible problem is an answer here (no_solution), not a warning.
            warnings.simplefilter("always", PenaltyBoundWarning)
            result = pyvrp.solve(
                data,
                stop,
                seed=model.params.seed,
                collect_stats=False,
                display=model.params.log_search,
                initial_solution=initial,
            )
        if caught:
            logger.info("PyVRP: %s", str(caught[0].message).split(".")[0].strip())
        seconds = time.perf_counter() - t0
        if not result.is_feasible():
            return no_solution(model, self.name, seconds, "PyVRP found no feasible plan in time")
        return evaluate(model, _assignment(result.best, groups), self.name, seconds)

    def shorten(
        self, model: Model, best: PlanResult, time_limit_s: float, *, seed: int | None = None
    ) -> PlanResult:
        """The distance phase: shorten ``best``'s routes, held to its fleet.

        PyVRP searches from its own random start within ``best``'s vehicle count, not from
        ``best``: warm-started from a plan the fleet phase found (the first feasible one,
        unpolished) or from VROOM's, its iterated local search keeps returning to that plan
        and ends far above a fresh search given the same time (Solomon RC202 at 60 s: 1406
        against 1367). If the fresh search has no feasible plan after ``FRESH_START_SHARE``
        of the time (a fleet that was hard to reach), the rest is spent from ``best``. A phase
        shorter than ``FRESH_MIN_S``, or on more than ``FRESH_MAX_ORDERS`` orders, searches
        from ``best`` throughout. ``seed`` replaces the model's (a second search beside this
        one, ``start_shorten``, takes another).
        The result is the better of ``best`` and what the search found.
        """
        t0 = time.perf_counter()
        if best.status is not PlanStatus.COMPLETE or not can_minimise_fleet(model):
            return best
        data, groups = _build(model)
        if data.num_vehicle_types != 1:
            return best
        data = _held_to(data, best.vehicles_used)
        cap = data.vehicle_type(0).num_available
        seed = model.params.seed if seed is None else seed
        budget = time_limit_s - (time.perf_counter() - t0)
        if budget < 2 * _MIN_BUDGET_S:
            return best
        res = None
        if len(model.orders) <= FRESH_MAX_ORDERS and budget >= FRESH_MIN_S:
            gave_up = _NoFeasibleBy(FRESH_START_SHARE * budget)
            res = _quiet_solve(data, MultipleCriteria([gave_up, MaxRuntime(budget)]), seed, None)
        if res is None or not res.is_feasible():
            left = max(time_limit_s - (time.perf_counter() - t0), _MIN_BUDGET_S)
            logger.info("distance phase: from the best plan, within %d vehicles", cap)
            start = _warm_start(data, groups, assignment_of(model, best))
            res = _quiet_solve(data, MaxRuntime(left), seed, start)
        if not res.is_feasible():
            return best
        seconds = time.perf_counter() - t0
        shorter = evaluate(model, _assignment(res.best, groups), self.name, seconds)
        return shorter if _key(shorter) < _key(best) else best

    def start_shorten(
        self, model: Model, best: PlanResult, time_limit_s: float, *, seed: int
    ) -> ForkedRun:
        """``shorten`` with ``seed``, in a forked child, returning at once: the portfolio
        runs it on the machine's second core beside its own distance search and keeps the
        better plan. The child's search ends a margin before ``time_limit_s`` (the time it
        takes to hand the plan over), and is killed at it."""
        return ForkedRun(
            model,
            time_limit_s,
            _shortened,
            (model, best, child_timeout(time_limit_s), seed),
            solver=self.name,
            label="PyVRP",
        )

    def fewer_vehicles(
        self,
        model: Model,
        best: PlanResult,
        time_limit_s: float,
        *,
        try_limit_s: float | None = None,
        polish: bool = True,
    ) -> PlanResult:
        """Try ``best`` with fewer vehicles: the fleet-minimisation phase.

        With one vehicle type and every order required, PyVRP is asked for *any* feasible
        plan with one vehicle less than the best so far (a hard fleet limit; it stops at the
        first feasible one), again and again while time allows. One try gets at most
        ``try_limit_s`` (default: 60 % of the time left), so a fleet that cannot shrink
        costs little. With ``polish`` the smallest fleet found then gets the rest of the
        budget to shorten its routes (or, if none was found, ``best`` is polished);
        without it, the caller spends the rest. Whatever happens, the result is the better
        of ``best`` and that plan, both checked by ``evaluate``.
        """
        t0 = time.perf_counter()
        if not can_minimise_fleet(model):
            return best
        if best.status is not PlanStatus.COMPLETE or best.vehicles_used <= 1:
            return best
        data, groups = _build(model)
        if data.num_vehicle_types != 1 or any(o.optional for o in model.orders):
            return best
        seed = model.params.seed
        found, k = None, best.vehicles_used
        while k - 1 >= _fleet_lower_bound(model):
            left = time_limit_s - (time.perf_counter() - t0)
            if left < 2 * _MIN_BUDGET_S:
                break
            limit = left * FLEET_SEARCH_SHARE
            if try_limit_s is not None:
                limit = min(limit if polish else left, try_limit_s)
            smaller = _held_to(data, k - 1)
            stop = MultipleCriteria([FirstFeasible(), MaxRuntime(limit)])
            res = _quiet_solve(smaller, stop, seed, None)
            logger.info(
                "fleet phase: %d vehicles %s in %.2f s",
                k - 1,
                "found" if res.is_feasible() else "not found",
                time.perf_counter() - t0,
            )
            if not res.is_feasible():
                break
            found, data = res.best, smaller
            k = found.num_routes()
        left = time_limit_s - (time.perf_counter() - t0)
        if found is None:
            if not polish or left < 2 * _MIN_BUDGET_S:
                return best
            # No smaller fleet found or possible: spend the rest on distance.
            polished = self.solve(model, left, start=assignment_of(model, best))
            return polished if _key(polished) < _key(best) else best
        sol = found
        if polish:
            left = max(time_limit_s - (time.perf_counter() - t0), _MIN_BUDGET_S)
            res = _quiet_solve(data, MaxRuntime(left), seed, found)
            sol = res.best if res.is_feasible() else found
        seconds = time.perf_counter() - t0
        fewer = evaluate(model, _assignment(sol, groups), self.name, seconds)
        logger.info("fleet phase: %d -> %d vehicles", best.vehicles_used, fewer.vehicles_used)
        return fewer if _key(fewer) < _key(best) else best


def _shortened(
    model: Model, best: PlanResult, time_limit_s: float, seed: int
) -> dict[int, list[int]]:
    return assignment_of(model, PyVrpPlanner().shorten(model, best, time_limit_s, seed=seed))


def _held_to(data: Any, vehicles: int) -> Any:
    """``data`` (one vehicle type) with at most ``vehicles`` of it, and at least one."""
    fleet = data.vehicle_type(0)
    cap = max(1, min(vehicles, fleet.num_available))
    return data.replace(vehicle_types=[fleet.replace(num_available=cap)])


class _NoFeasibleBy:
    """A PyVRP stop: true once ``after_s`` seconds have passed with no feasible plan."""

    def __init__(self, after_s: float) -> None:
        self._deadline = time.perf_counter() + after_s

    def __call__(self, best_cost: int) -> bool:
        return best_cost >= _INFEASIBLE and time.perf_counter() > self._deadline


def can_minimise_fleet(model: Model) -> bool:
    """Whether the fleet phase applies: one kind of vehicle, every order required and
    allowed on every vehicle (PyVRP then sees one vehicle type)."""
    every = frozenset(range(len(model.vehicles)))
    if any(o.optional for o in model.orders) or any(a != every for a in model.allowed):
        return False
    kinds = {
        (
            model.cost_class(v),
            cv.start,
            cv.end,
            cv.earliest,
            cv.latest,
            cv.capacity,
            cv.max_stops,
            cv.fixed_cost,
        )
        for v, cv in enumerate(model.vehicles)
    }
    return len(kinds) == 1


def _fleet_lower_bound(model: Model) -> int:
    """Vehicles the total load needs at least (1 without capacities)."""
    caps = [cv.capacity for cv in model.vehicles]
    if not caps or any(c is None for c in caps):
        return 1
    cap = max(c for c in caps if c is not None) or 1
    out = sum(o.demand for o in model.orders if o.kind is not OrderKind.PICKUP)
    back = sum(o.demand for o in model.orders if o.kind is OrderKind.PICKUP)
    return max(1, -(-max(out, back) // cap))


def _key(r: PlanResult) -> tuple[bool, int]:
    return (r.status is not PlanStatus.COMPLETE, r.objective)


def _quiet_solve(data: Any, stop: Any, seed: int, initial: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        return pyvrp.solve(data, stop, seed=seed, collect_stats=False, initial_solution=initial)


def _assignment(solution: Any, groups: list[list[int]]) -> dict[int, list[int]]:
    free = [list(g) for g in groups]
    assignment: dict[int, list[int]] = {}
    for route in solution.routes():
        v = free[route.vehicle_type()].pop(0)
        assignment[v] = [a.idx for a in route if a.type == pyvrp.ActivityType.CLIENT]
    return assignment


def _build(model: Model) -> tuple[Any, list[list[int]]]:
    n = len(model.orders)
    depot_locs: list[int] = []
    for cv in model.vehicles:
        for loc in (cv.start, cv.end):
            if loc not in depot_locs:
                depot_locs.append(loc)
    nd = len(depot_locs)
    locs = np.asarray(depot_locs + [o.location for o in model.orders], dtype=np.int64)
    service = np.asarray([0] * nd + [o.service for o in model.orders], dtype=np.int64)
    order = np.asarray([-1] * nd + list(range(n)), dtype=np.int64)

    coords = model.problem.coordinates
    locations = [
        pyvrp.Location(*(coords[loc] if coords is not None and loc != ANYWHERE else (0, 0)))
        for loc in locs.tolist()
    ]
    depots = [pyvrp.Depot(i) for i in range(nd)]

    dims_size = any(cv.capacity is not None for cv in model.vehicles)
    dims_stops = model.has_stop_limits
    clients = []
    for k, o in enumerate(model.orders):
        delivery, pickup = [], []
        if dims_size:
            is_pickup = o.kind is OrderKind.PICKUP
            delivery.append(0 if is_pickup else o.demand)
            pickup.append(o.demand if is_pickup else 0)
        if dims_stops:
            delivery.append(1)
            pickup.append(0)
        clients.append(
            pyvrp.Client(
                nd + k,
                delivery=delivery,
                pickup=pickup,
                service_duration=o.service,
                tw_early=o.ready,
                tw_late=model.due(o),
                required=not o.optional,
                prize=o.postponement_cost if o.optional else 0,
                name=o.id,
            )
        )

    big_size = sum(o.demand for o in model.orders) + 1
    profiles: dict[tuple[object, ...], int] = {}
    distance_matrices: list[Any] = []
    duration_matrices: list[Any] = []
    types: dict[tuple[object, ...], list[int]] = {}
    type_args: dict[tuple[object, ...], dict[str, Any]] = {}
    for v, cv in enumerate(model.vehicles):
        barred = frozenset(k for k in range(n) if v not in model.allowed[k])
        pkey = (model.cost_class(v), barred)
        if pkey not in profiles:
            cost = model.cost_matrix(v, locs, service, order)
            dur = model.time_matrix(v, locs, service)
            if cv.timed:
                dur = dur - service[:, None]  # PyVRP adds the client's service itself
            cols = np.asarray(sorted(barred), dtype=np.int64) + nd
            if len(cols):
                cost[:, cols] += model.required_penalty
                dur[:, cols] = model.horizon + 1
            np.fill_diagonal(cost, 0)
            np.fill_diagonal(dur, 0)
            profiles[pkey] = len(distance_matrices)
            distance_matrices.append(cost)
            duration_matrices.append(dur)
        capacity = []
        if dims_size:
            capacity.append(big_size if cv.capacity is None else cv.capacity)
        if dims_stops:
            capacity.append(n if cv.max_stops is None else cv.max_stops)
        args = dict(
            capacity=capacity,
            start_depot=depot_locs.index(cv.start),
            end_depot=depot_locs.index(cv.end),
            fixed_cost=cv.fixed_cost + model.params.vehicle_fixed_cost,
            tw_early=cv.earliest,
            tw_late=cv.latest,
            unit_distance_cost=1,
            profile=profiles[pkey],
        )
        tkey = (pkey, tuple(sorted((k, str(a)) for k, a in args.items())))
        types.setdefault(tkey, []).append(v)
        type_args[tkey] = args
    vehicle_types = [
        pyvrp.VehicleType(
            len(vs), **type_args[key], name=",".join(model.vehicles[v].vehicle.id for v in vs)[:200]
        )
        for key, vs in types.items()
    ]
    data = pyvrp.ProblemData(
        locations=locations,
        clients=clients,
        depots=depots,
        vehicle_types=vehicle_types,
        distance_matrices=distance_matrices,
        duration_matrices=duration_matrices,
    )
    return data, list(types.values())


def _warm_start(data: Any, groups: list[list[int]], routes: Mapping[int, Sequence[int]]) -> Any:
    if not routes:
        return None
    type_of = {v: t for t, vs in enumerate(groups) for v in vs}
    built = [
        pyvrp.Route(data, [pyvrp.Activity(pyvrp.ActivityType.CLIENT, k) for k in seq], type_of[v])
        for v, seq in routes.items()
        if seq
    ]
    try:
        return pyvrp.Solution(data, built)
    except (RuntimeError, ValueError) as exc:
        logger.warning("warm start rejected by PyVRP (%s); solving from scratch", exc)
        return None
