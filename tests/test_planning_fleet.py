"""The planner on mixed fleets, with real OR-Tools and PyVRP, re-checked independently."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from cloud.planning import (
    Carrier,
    GigCourier,
    Order,
    OrderKind,
    OwnVan,
    PlanningParams,
    PlanningProblem,
    PlanResult,
    PlanStatus,
    UnplannedReason,
    plan,
)

SOLVERS = ["ortools", "pyvrp"]
SPEED = 10  # metres per second
DAY_START, DAY_END = 8 * 3600, 20 * 3600


def world(points: list[tuple[int, int]]) -> tuple[list[list[int]], list[list[int]]]:
    dist = [[round(math.dist(a, b)) for b in points] for a in points]
    dur = [[math.ceil(d / SPEED) for d in row] for row in dist]
    return dur, dist


# location 0: depot; 1..10: customers on a ring 3 km out; 11: a gig courier's position
RING = (
    [(0, 0)]
    + [
        (round(3000 * math.cos(k * math.pi / 5)), round(3000 * math.sin(k * math.pi / 5)))
        for k in range(10)
    ]
    + [(6000, 0)]
)
DUR, DIST = world(RING)


def van(vid: str, **kw: object) -> OwnVan:
    base = dict(
        id=vid,
        depot=0,
        capacity=50,
        shift_start=DAY_START,
        shift_end=DAY_END,
        fixed_cost=2000,
        cost_per_km=30,
        cost_per_hour=1500,
    )
    base.update(kw)
    return OwnVan(**base)  # type: ignore[arg-type]


def orders(n: int = 10, **kw: object) -> tuple[Order, ...]:
    return tuple(
        Order(id=f"o{k}", location=k, demand=5, service=120, **kw)  # type: ignore[arg-type]
        for k in range(1, n + 1)
    )


def params(solver: str, seconds: float = 1.0, seed: int = 1, **kw: object) -> PlanningParams:
    return PlanningParams(time_limit_s=seconds, seed=seed, solver=solver, **kw)  # type: ignore[arg-type]


def check_plan(problem: PlanningProblem, result: PlanResult) -> None:
    """Independent re-check from the problem data: windows, loads, skills, pins, shifts."""
    assert result.status is not PlanStatus.NO_SOLUTION, result.message
    by_id = {o.id: o for o in problem.orders}
    vehicles = {v.id: v for v in problem.vehicles}
    served = [s.order_id for r in result.routes for s in r.stops]
    assert len(served) == len(set(served))
    assert set(served) | {u.order_id for u in result.unplanned} == set(by_id)
    assert not set(served) & {u.order_id for u in result.unplanned}
    for route in result.routes:
        v = vehicles[route.vehicle_id]
        stops = [by_id[s.order_id] for s in route.stops]
        for o in stops:
            assert o.skills <= v.skills
            assert o.pinned_vehicle in (None, v.id)
        if isinstance(v, Carrier):
            assert len(stops) <= v.daily_stops
            continue
        load = sum(o.demand for o in stops if o.kind is OrderKind.DELIVERY)
        assert load <= v.capacity
        for o in stops:
            load += o.demand if o.kind is OrderKind.PICKUP else -o.demand
            assert 0 <= load <= v.capacity
        if isinstance(v, OwnVan):
            t, at, earliest, latest = route.start_time, v.depot, v.shift_start, v.shift_end
            at = v.start if v.start is not None else v.depot
        else:
            t, at, earliest, latest = route.start_time, v.start, v.available_from, v.available_until
        assert t is not None and t >= max(earliest, problem.now)
        for o, s in zip(stops, route.stops, strict=True):
            t += problem.durations[at][o.location]
            assert s.arrival == t
            t = max(t, o.ready)
            assert o.due is None or t <= o.due
            t += o.service
            at = o.location
        if isinstance(v, OwnVan):
            t += problem.durations[at][v.depot]
        assert t <= latest


@pytest.mark.parametrize("solver", SOLVERS)
def test_refrigerated_order_only_on_refrigerated_van(solver: str) -> None:
    cold = frozenset({"refrigerated"})
    os = list(orders())
    os[2] = replace(os[2], skills=cold)
    os[7] = replace(os[7], skills=cold)
    problem = PlanningProblem(
        DUR,
        DIST,
        tuple(os),
        (van("plain", capacity=100), van("cold", skills=cold)),
    )
    result = plan(problem, params(solver))
    check_plan(problem, result)
    assert result.status is PlanStatus.COMPLETE
    assert result.vehicle_of()["o3"] == result.vehicle_of()["o8"] == "cold"


@pytest.mark.parametrize("solver", SOLVERS)
def test_carrier_takes_cheap_stops_up_to_its_daily_capacity(solver: str) -> None:
    problem = PlanningProblem(
        DUR,
        DIST,
        orders(),
        (
            van("v1", fixed_cost=50_000),
            Carrier("3pl", depot=0, price_per_stop=100, daily_stops=4, cutoff=DAY_END),
        ),
        now=7 * 3600,
    )
    result = plan(problem, params(solver))
    check_plan(problem, result)
    assert result.status is PlanStatus.COMPLETE
    carrier = result.route_of("3pl")
    assert carrier is not None and len(carrier.stops) == 4
    assert all(s.arrival is None for s in carrier.stops)
    assert result.cost.stops == 400


@pytest.mark.parametrize("solver", SOLVERS)
def test_carrier_past_its_cutoff_takes_no_new_order(solver: str) -> None:
    problem = PlanningProblem(
        DUR,
        DIST,
        orders(4),
        (van("v1"), Carrier("3pl", depot=0, price_per_stop=1, daily_stops=9, cutoff=6 * 3600)),
        now=7 * 3600,
    )
    result = plan(problem, params(solver))
    check_plan(problem, result)
    assert result.route_of("3pl") is None


@pytest.mark.parametrize("solver", SOLVERS)
def test_gig_courier_starts_where_it_is_and_respects_its_capacity(solver: str) -> None:
    near = tuple(
        Order(
            id=f"g{k}", location=loc, demand=4, service=60, optional=True, postponement_cost=50_000
        )
        for k, loc in enumerate((1, 2, 10))
    )  # 1, 2, 10 are nearest (6000, 0)
    gig = GigCourier(
        "gig",
        start=11,
        capacity=8,
        available_from=9 * 3600,
        available_until=12 * 3600,
        price_per_drop=300,
    )
    problem = PlanningProblem(DUR, DIST, near, (van("v1", fixed_cost=90_000), gig))
    result = plan(problem, params(solver))
    check_plan(problem, result)
    route = result.route_of("gig")
    assert route is not None and len(route.stops) == 2  # 3 x 4 > capacity 8
    assert [u.reason for u in result.unplanned] == [UnplannedReason.POSTPONED]
    first = route.stops[0]
    assert first.arrival == route.start_time + DUR[11][first.location]
    assert result.cost.stops == 600


@pytest.mark.parametrize("solver", SOLVERS)
def test_unprofitable_optional_order_is_postponed_with_its_reason(solver: str) -> None:
    far = [(0, 0), (100, 0), (200, 0), (90_000, 0)]
    dur, dist = world(far)
    os = (
        Order("a", 1, demand=1),
        Order("b", 2, demand=1),
        Order("far", 3, demand=1, optional=True, postponement_cost=100),
    )
    problem = PlanningProblem(dur, dist, os, (van("v1", cost_per_km=50),))
    result = plan(problem, params(solver))
    check_plan(problem, result)
    assert result.status is PlanStatus.COMPLETE
    assert [(u.order_id, u.reason) for u in result.unplanned] == [
        ("far", UnplannedReason.POSTPONED)
    ]
    assert result.cost.postponement == 100


@pytest.mark.parametrize("solver", SOLVERS)
def test_pinned_orders_stay_on_their_van(solver: str) -> None:
    os = tuple(replace(o, pinned_vehicle="far") if o.location in (1, 6) else o for o in orders())
    problem = PlanningProblem(
        DUR,
        DIST,
        os,
        (van("near", capacity=100), van("far", fixed_cost=9_000, start=11)),
    )
    result = plan(problem, params(solver))
    check_plan(problem, result)
    vehicle_of = result.vehicle_of()
    assert vehicle_of["o1"] == vehicle_of["o6"] == "far"


@pytest.mark.parametrize("solver", SOLVERS)
def test_warm_start_with_stability_keeps_an_unchanged_plan(solver: str) -> None:
    fleet = (van("a", capacity=25), van("b", capacity=25), van("c", capacity=25))
    problem = PlanningProblem(DUR, DIST, orders(), fleet)
    first = plan(problem, params(solver))
    check_plan(problem, first)
    current = {r.vehicle_id: list(r.order_ids) for r in first.routes}
    again = replace(problem, current_plan=current, stability_cost=10_000)
    second = plan(again, params(solver, seed=7))
    check_plan(again, second)
    assert {r.vehicle_id: list(r.order_ids) for r in second.routes} == current
    assert second.cost.stability == 0


@pytest.mark.parametrize("solver", SOLVERS)
def test_same_seed_same_plan(solver: str) -> None:
    problem = PlanningProblem(DUR, DIST, orders(), (van("a", capacity=25), van("b", capacity=30)))
    p = params(solver, seconds=5.0, iteration_limit=200)
    a, b = plan(problem, p), plan(problem, p)
    assert [r.order_ids for r in a.routes] == [r.order_ids for r in b.routes]
    assert a.objective == b.objective


@pytest.mark.parametrize("solver", SOLVERS)
def test_pickups_and_deliveries_share_the_van(solver: str) -> None:
    os = tuple(
        replace(o, kind=OrderKind.PICKUP if o.location % 2 else OrderKind.DELIVERY, demand=10)
        for o in orders()
    )
    problem = PlanningProblem(DUR, DIST, os, (van("a", capacity=30), van("b", capacity=30)))
    result = plan(problem, params(solver))
    check_plan(problem, result)
    assert result.status is PlanStatus.COMPLETE
