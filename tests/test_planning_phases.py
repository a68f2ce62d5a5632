"""The auto portfolio's phases: a bounded fleet try, a distance phase held to the fleet found."""

from __future__ import annotations

import logging
import time

import pytest

from cloud.planning import (
    PlanningParams,
    PlanStatus,
    customer_routes,
    hierarchical_params,
    plan,
    pyvrp_planner,
    solomon_problem,
)
from cloud.planning.evaluate import no_solution
from cloud.planning.pyvrp_planner import PyVrpPlanner
from cloud.planning.vroom_planner import VroomPlanner
from tests.planning_checks import (
    assert_feasible_and_complete,
    solomon_instance,
    solomon_model,
)


def test_distance_phase_keeps_to_the_fleet_it_is_given() -> None:
    inst = solomon_instance("RC101", 60)
    model = solomon_model(inst)
    pyvrp = PyVrpPlanner()
    first = pyvrp.solve(model, 0.5)
    assert_feasible_and_complete(inst, first)
    k = first.vehicles_used
    held = pyvrp.shorten(model, first, 0.5)  # a short phase: from ``first``, within k
    assert_feasible_and_complete(inst, held)
    assert held.vehicles_used <= k
    assert held.objective <= first.objective  # the start is in the search: never worse


def test_the_distance_phase_searches_afresh_within_the_fleet(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pyvrp_planner, "FRESH_MIN_S", 0.0)  # a long phase, in short
    inst = solomon_instance("RC202", 60)
    model = solomon_model(inst)
    first = VroomPlanner().solve(model, 1.0)
    assert_feasible_and_complete(inst, first)
    with caplog.at_level(logging.INFO, logger="cloud.planning.pyvrp_planner"):
        shorter = PyVrpPlanner().shorten(model, first, 1.0)
    assert_feasible_and_complete(inst, shorter)
    assert shorter.vehicles_used <= first.vehicles_used
    assert shorter.objective < first.objective  # VROOM's plan is not a local optimum of PyVRP's
    assert "from the best plan" not in caplog.text  # the fresh search found a plan by itself


def test_the_distance_phase_falls_back_to_the_best_when_a_fresh_search_finds_nothing(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No time for a fresh search to find a feasible plan: the phase searches from the plan
    # it was given, so a fleet that was hard to reach is not lost.
    inst = solomon_instance("R101")
    model = solomon_model(inst)
    first = VroomPlanner().solve(model, 1.0)
    assert_feasible_and_complete(inst, first)
    fewer = PyVrpPlanner().fewer_vehicles(model, first, 3.0, polish=False)
    monkeypatch.setattr(pyvrp_planner, "FRESH_MIN_S", 0.0)
    monkeypatch.setattr(pyvrp_planner, "FRESH_START_SHARE", 0.0)
    with caplog.at_level(logging.INFO, logger="cloud.planning.pyvrp_planner"):
        shorter = PyVrpPlanner().shorten(model, fewer, 1.0)
    assert "from the best plan" in caplog.text
    assert_feasible_and_complete(inst, shorter)
    assert shorter.vehicles_used <= fewer.vehicles_used
    assert shorter.objective <= fewer.objective


def test_on_a_large_day_the_distance_phase_searches_from_the_best(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = solomon_instance("RC101", 50)
    model = solomon_model(inst)
    first = VroomPlanner().solve(model, 1.0)
    assert_feasible_and_complete(inst, first)
    monkeypatch.setattr(pyvrp_planner, "FRESH_MIN_S", 0.0)
    monkeypatch.setattr(pyvrp_planner, "FRESH_MAX_ORDERS", 49)  # this day counts as large
    with caplog.at_level(logging.INFO, logger="cloud.planning.pyvrp_planner"):
        shorter = PyVrpPlanner().shorten(model, first, 0.5)
    assert "from the best plan" in caplog.text
    assert_feasible_and_complete(inst, shorter)
    assert (shorter.vehicles_used, shorter.objective) <= (first.vehicles_used, first.objective)


def test_a_short_distance_phase_searches_from_the_best(caplog: pytest.LogCaptureFixture) -> None:
    inst = solomon_instance("RC101", 50)
    model = solomon_model(inst)
    first = VroomPlanner().solve(model, 1.0)
    assert_feasible_and_complete(inst, first)
    with caplog.at_level(logging.INFO, logger="cloud.planning.pyvrp_planner"):
        shorter = PyVrpPlanner().shorten(model, first, 0.5)  # under FRESH_MIN_S
    assert "from the best plan" in caplog.text
    assert_feasible_and_complete(inst, shorter)
    assert (shorter.vehicles_used, shorter.objective) <= (first.vehicles_used, first.objective)


def test_the_distance_phase_leaves_an_incomplete_plan_alone() -> None:
    inst = solomon_instance("R101", 30)
    model = solomon_model(inst)
    nothing = no_solution(model, "test", 0.0, "nothing")
    assert PyVrpPlanner().shorten(model, nothing, 1.0) is nothing


def test_a_failed_fleet_try_costs_at_most_its_limit() -> None:
    # R101's best-known fleet is 19: from VROOM's plan the phase finds at most that, and
    # the try below it fails; each try is held to try_limit_s.
    inst = solomon_instance("R101")
    model = solomon_model(inst)
    first = VroomPlanner().solve(model, 1.0)
    assert_feasible_and_complete(inst, first)
    try_limit = 0.4
    t0 = time.perf_counter()
    fewer = PyVrpPlanner().fewer_vehicles(model, first, 20.0, try_limit_s=try_limit, polish=False)
    took = time.perf_counter() - t0
    assert_feasible_and_complete(inst, fewer)
    assert fewer.vehicles_used >= 19
    assert (fewer.vehicles_used, fewer.objective) <= (first.vehicles_used, first.objective)
    tries = first.vehicles_used - fewer.vehicles_used + 1
    assert took < tries * try_limit + 1.0


def test_auto_takes_the_vroom_then_fleet_then_distance_path_within_budget() -> None:
    inst = solomon_instance("R104")
    calls: list[str] = []
    real_fewer = PyVrpPlanner.fewer_vehicles
    real_shorten = PyVrpPlanner.shorten

    def fewer(self, model, best, limit, **kw):  # type: ignore[no-untyped-def]
        calls.append(f"fleet from {best.solver}")
        return real_fewer(self, model, best, limit, **kw)

    def shorten(self, model, best, limit):  # type: ignore[no-untyped-def]
        calls.append(f"distance max_vehicles={best.vehicles_used}")
        return real_shorten(self, model, best, limit)

    mp = pytest.MonkeyPatch()
    mp.setattr(PyVrpPlanner, "fewer_vehicles", fewer)
    mp.setattr(PyVrpPlanner, "shorten", shorten)
    try:
        result = plan(solomon_problem(inst), hierarchical_params(PlanningParams(time_limit_s=4)))
    finally:
        mp.undo()
    assert_feasible_and_complete(inst, result)
    assert result.seconds < 4 + 0.5
    assert calls[0] == "fleet from vroom"
    # Distance is searched within the fleet the fleet phase ended with.
    assert calls[1].startswith("distance max_vehicles=")
    assert int(calls[1].split("=")[1]) >= result.vehicles_used
    assert len(calls) == 2  # no OR-Tools fallback, no second fleet phase


def test_auto_bounded_by_iterations_replays_exactly_on_a_one_kind_fleet() -> None:
    # The fleet phase and VROOM are timed: an iteration-bounded solve (the coordinator's)
    # must not use them, so the same seed gives the same routes whatever the load.
    problem = solomon_problem(solomon_instance("RC105", 50))
    params = hierarchical_params(PlanningParams(time_limit_s=60, seed=5, iteration_limit=300))
    a = plan(problem, params)
    b = plan(problem, params)
    assert a.status is PlanStatus.COMPLETE and a.solver == "pyvrp"
    assert customer_routes(a) == customer_routes(b) and a.objective == b.objective
