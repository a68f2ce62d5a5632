"""Planning problem validation, screening of unplannable orders, statuses, Solomon."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest

from cloud.planning import (
    Carrier,
    InvalidParams,
    InvalidProblem,
    Order,
    OwnVan,
    PlanningError,
    PlanningParams,
    PlanningProblem,
    PlanStatus,
    UnplannedReason,
    customer_routes,
    hierarchical_params,
    plan,
    solomon_problem,
)
from routing import check_route, read_instance
from tests.helpers import DATA_DIR

DUR = [[0, 100, 200], [100, 0, 100], [200, 100, 0]]
DIST = [[0, 1000, 2000], [1000, 0, 1000], [2000, 1000, 0]]
VAN = OwnVan("v", depot=0, capacity=10, shift_start=0, shift_end=10_000, cost_per_km=10)

DATA = DATA_DIR


def problem(*orders: Order, vehicles: tuple = (VAN,)) -> PlanningProblem:  # type: ignore[type-arg]
    return PlanningProblem(DUR, DIST, tuple(orders), vehicles)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: problem(Order("a", 1, demand=-1)),
        lambda: problem(Order("a", 1), Order("a", 2)),
        lambda: problem(Order("a", 3)),
        lambda: problem(Order("a", 1, pinned_vehicle="ghost")),
        lambda: problem(Order("a", 1), vehicles=(replace(VAN, capacity=-5),)),
        lambda: problem(Order("a", 1), vehicles=(VAN, VAN)),
        lambda: problem(Order("a", 1), vehicles=(replace(VAN, depot=7),)),
        lambda: PlanningProblem([[0, 1]], DIST, (), (VAN,)),
        lambda: PlanningProblem(DUR, [[0, -1, 0], [0, 0, 0], [0, 0, 0]], (), (VAN,)),
        lambda: PlanningProblem(DUR, DIST, (Order("a", 1),), (VAN,), current_plan={"x": ["a"]}),
    ],
)
def test_bad_problems_raise_planning_errors(bad: object) -> None:
    with pytest.raises(InvalidProblem) as err:
        bad()  # type: ignore[operator]
    assert isinstance(err.value, PlanningError) and str(err.value)


@pytest.mark.parametrize(
    "kw",
    [
        {"time_limit_s": 0},
        {"time_limit_s": -1},
        {"seed": -1},
        {"solver": "gurobi"},
        {"iteration_limit": 0},
        {"time_limit_s": float("nan")},
    ],
)
def test_bad_params_raise(kw: dict[str, object]) -> None:
    with pytest.raises(InvalidParams):
        PlanningParams(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("solver", ["ortools", "pyvrp", "auto"])
def test_impossible_orders_are_unplanned_with_reasons(solver: str) -> None:
    p = problem(
        Order("ok", 1, demand=2),
        Order("backwards", 1, ready=500, due=400),
        Order("too-early", 2, due=150),  # 200 s away from the depot
        Order("too-big", 2, demand=11),
        Order("cold", 2, skills=frozenset({"refrigerated"})),
    )
    result = plan(p, PlanningParams(time_limit_s=0.5, solver=solver))
    reasons = {u.order_id: u.reason for u in result.unplanned}
    assert reasons == {
        "backwards": UnplannedReason.IMPOSSIBLE_WINDOW,
        "too-early": UnplannedReason.IMPOSSIBLE_WINDOW,
        "too-big": UnplannedReason.NO_CAPACITY,
        "cold": UnplannedReason.NO_SKILLED_VEHICLE,
    }
    assert result.status is PlanStatus.PARTIAL
    assert result.vehicle_of() == {"ok": "v"}


def test_fleet_with_no_capacity_left_reports_no_capacity() -> None:
    full_3pl = Carrier("3pl", depot=0, price_per_stop=5, daily_stops=0, cutoff=10_000)
    empty_van = replace(VAN, capacity=0)
    p = problem(Order("a", 1, demand=1), Order("b", 2, demand=1), vehicles=(full_3pl, empty_van))
    result = plan(p, PlanningParams(time_limit_s=0.5))
    assert {u.reason for u in result.unplanned} == {UnplannedReason.NO_CAPACITY}
    assert result.routes == ()


def test_required_orders_beyond_the_fleet_capacity_are_unplanned_as_no_capacity() -> None:
    p = problem(*(Order(f"o{k}", 1 + k % 2, demand=4) for k in range(4)))
    result = plan(p, PlanningParams(time_limit_s=1, solver="auto"))
    assert result.status is PlanStatus.PARTIAL
    assert len(result.vehicle_of()) == 2
    assert {u.reason for u in result.unplanned} == {UnplannedReason.NO_CAPACITY}


def test_pyvrp_alone_says_no_solution_rather_than_a_half_plan() -> None:
    p = problem(*(Order(f"o{k}", 1 + k % 2, demand=4) for k in range(4)))
    result = plan(p, PlanningParams(time_limit_s=0.5, solver="pyvrp"))
    assert result.status is PlanStatus.NO_SOLUTION
    assert result.routes == () and result.message
    assert {u.order_id for u in result.unplanned} == {"o0", "o1", "o2", "o3"}


def test_empty_problem_plans_nothing() -> None:
    result = plan(problem(), PlanningParams(time_limit_s=0.5))
    assert result.status is PlanStatus.COMPLETE and result.routes == ()


@pytest.mark.parametrize("solver", ["ortools", "pyvrp", "both"])
def test_solomon_plan_is_feasible_in_double_precision(solver: str) -> None:
    inst = read_instance(DATA / "solomon" / "RC101.txt")
    params = hierarchical_params(PlanningParams(time_limit_s=2, solver=solver))
    result = plan(solomon_problem(inst), params)
    assert result.status is PlanStatus.COMPLETE
    assert result.seconds < 2 + 0.5
    routes = customer_routes(result)
    assert sorted(c for r in routes for c in r) == list(range(1, 101))
    for r in routes:
        chk = check_route(inst, r)
        assert chk.late_stops == 0 and not chk.returns_late and chk.load <= inst.capacity
    assert 14 <= len(routes) <= 18


def test_only_one_module_imports_each_solver() -> None:
    root = Path(__file__).resolve().parents[1] / "cloud"
    users: dict[str, set[str]] = {"ortools": set(), "pyvrp": set(), "vroom": set()}
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in users:
                    users[top].add(path.name)
    assert users == {
        "ortools": {"ortools_planner.py"},
        "pyvrp": {"pyvrp_planner.py"},
        "vroom": {"vroom_planner.py"},
    }


def test_public_names_are_exported() -> None:
    import cloud.planning as pkg

    assert all(hasattr(pkg, name) for name in pkg.__all__)
    assert {"PlanningProblem", "PlanningParams", "Planner", "plan"} <= set(pkg.__all__)
