"""VROOM inside the planner's budget: its construction is not bounded by its own timeout, so
a forked solve is stopped at the deadline, and the portfolio keeps its budget."""

from __future__ import annotations

import threading
import time

import pytest

from cloud.planning import PlanningParams, PlanStatus, hierarchical_params, plan, solomon_problem
from cloud.planning import vroom_planner as vp
from cloud.planning.model import build_model
from cloud.planning.vroom_planner import VroomPlanner
from routing import read_instance
from tests.helpers import DATA_DIR
from tests.planning_checks import assert_feasible_and_complete, solomon_instance, solomon_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def thousand() -> object:
    """Homberger RC2_10_1: 1,000 orders, where VROOM's construction alone takes seconds."""
    return read_instance(DATA_DIR / "homberger" / "1000" / "RC2_10_1.txt")


def test_a_vroom_solve_that_cannot_finish_is_stopped_at_its_deadline(thousand: object) -> None:
    model = solomon_model(thousand)
    t0 = time.perf_counter()
    result = VroomPlanner().solve(model, 0.5)
    took = time.perf_counter() - t0
    assert took < 0.5 + 0.5
    assert result.status is PlanStatus.NO_SOLUTION
    assert result.message == "VROOM found no plan in time"
    assert result.routes == ()


def test_auto_keeps_its_budget_on_a_day_vroom_cannot_plan_in_time(thousand: object) -> None:
    problem = solomon_problem(thousand)
    params = hierarchical_params(PlanningParams(time_limit_s=6))
    t0 = time.perf_counter()
    result = plan(problem, params)
    took = time.perf_counter() - t0
    assert took < 6 + 1.0  # before, VROOM alone took 7-29 s with a 0.9 s timeout here
    assert result.status in (PlanStatus.COMPLETE, PlanStatus.PARTIAL, PlanStatus.NO_SOLUTION)
    if result.status is PlanStatus.COMPLETE:
        assert_feasible_and_complete(thousand, result)


def test_a_forked_vroom_solve_returns_its_plan() -> None:
    inst = solomon_instance("RC101", 50)
    result = VroomPlanner().solve(solomon_model(inst), 2.0)
    assert_feasible_and_complete(inst, result)
    assert result.solver == "vroom"


def test_vroom_failing_in_its_child_is_a_clear_no_solution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(model: object, time_limit_s: float) -> dict[int, list[int]]:
        raise RuntimeError("matrix too large")

    monkeypatch.setattr(vp, "_solve", broken)  # the forked child inherits the patch
    result = VroomPlanner().solve(solomon_model(solomon_instance("C101", 20)), 1.0)
    assert result.status is PlanStatus.NO_SOLUTION
    assert result.message == "VROOM failed: matrix too large"


def test_a_child_that_dies_without_a_word_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def dies(model: object, time_limit_s: float) -> dict[int, list[int]]:
        import os

        os._exit(3)

    monkeypatch.setattr(vp, "_solve", dies)
    result = VroomPlanner().solve(solomon_model(solomon_instance("C101", 20)), 1.0)
    assert result.status is PlanStatus.NO_SOLUTION
    assert result.message == "VROOM stopped without a plan (exit code 3)"


def test_with_other_threads_running_vroom_still_solves_in_a_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A child that dies must not take the caller with it, whatever threads the caller runs
    # (a test run, a server): the solve happens in the child, and a plan still comes back.
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        inst = solomon_instance("R101", 40)
        model = build_model(
            solomon_problem(inst), hierarchical_params(PlanningParams(time_limit_s=1))
        )
        result = VroomPlanner().solve(model, 1.0)
        assert_feasible_and_complete(inst, result)

        def dies(model: object, time_limit_s: float) -> dict[int, list[int]]:
            import os

            os._exit(4)

        monkeypatch.setattr(vp, "_solve", dies)
        gone = VroomPlanner().solve(model, 1.0)
    finally:
        stop.set()
        other.join()
    assert gone.status is PlanStatus.NO_SOLUTION
    assert gone.message == "VROOM stopped without a plan (exit code 4)"
