"""The portfolio's VROOM start and fleet-minimisation phase: never a worse or broken plan."""

from __future__ import annotations

from dataclasses import replace

from cloud.planning import (
    Carrier,
    PlanningParams,
    PlanStatus,
    customer_routes,
    hierarchical_params,
    plan,
    solomon_problem,
)
from cloud.planning.evaluate import assignment_of
from cloud.planning.model import build_model
from cloud.planning.pyvrp_planner import PyVrpPlanner
from cloud.planning.vroom_planner import VroomPlanner, vroom_supports
from tests.planning_checks import (
    assert_feasible_and_complete,
    solomon_instance,
    solomon_model,
)


def test_fleet_phase_returns_a_complete_feasible_plan_no_worse_than_its_start() -> None:
    inst = solomon_instance("R103")
    model = build_model(solomon_problem(inst), hierarchical_params(PlanningParams(seed=1)))
    pyvrp = PyVrpPlanner()
    start = pyvrp.solve(model, 0.3)
    assert start.status is PlanStatus.COMPLETE
    fewer = pyvrp.fewer_vehicles(model, start, 2.0)
    assert_feasible_and_complete(inst, fewer)
    assert (fewer.vehicles_used, fewer.objective) <= (start.vehicles_used, start.objective)


def test_fleet_phase_leaves_an_incomplete_plan_alone() -> None:
    inst = solomon_instance("R101", 20)
    model = solomon_model(inst)
    pyvrp = PyVrpPlanner()
    nothing = replace(pyvrp.solve(model, 0.2), status=PlanStatus.NO_SOLUTION)
    assert pyvrp.fewer_vehicles(model, nothing, 1.0) is nothing


def test_vroom_start_is_feasible_and_can_seed_pyvrp() -> None:
    inst = solomon_instance("RC101", 50)
    model = solomon_model(inst)
    assert vroom_supports(model)
    first = VroomPlanner().solve(model, 1.0)
    assert_feasible_and_complete(inst, first)
    after = PyVrpPlanner().solve(model, 0.5, start=assignment_of(model, first))
    assert_feasible_and_complete(inst, after)
    assert after.objective <= first.objective


def test_vroom_declines_a_problem_with_a_carrier() -> None:
    problem = solomon_problem(solomon_instance("C101", 10))
    problem = replace(
        problem,
        vehicles=(
            *problem.vehicles,
            Carrier("3pl", depot=0, price_per_stop=1, daily_stops=5, cutoff=10**9),
        ),
    )
    model = build_model(problem, PlanningParams())
    assert not vroom_supports(model)
    assert VroomPlanner().solve(model, 1.0).status is PlanStatus.NO_SOLUTION


def test_auto_with_an_iteration_limit_uses_neither_vroom_nor_the_clock() -> None:
    problem = solomon_problem(solomon_instance("R101", 40))
    params = hierarchical_params(PlanningParams(time_limit_s=30, seed=3, iteration_limit=200))
    a, b = plan(problem, params), plan(problem, params)
    assert a.solver == "pyvrp" and a.status is PlanStatus.COMPLETE
    assert customer_routes(a) == customer_routes(b)


def test_auto_on_solomon_is_complete_within_its_budget() -> None:
    inst = solomon_instance("R105")
    result = plan(solomon_problem(inst), hierarchical_params(PlanningParams(time_limit_s=3)))
    assert_feasible_and_complete(inst, result)
    assert result.seconds < 3 + 0.5
