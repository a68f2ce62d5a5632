"""VROOM inside the planner's budget: its construction is not bounded by its own timeout, so
a forked solve is stopped at the deadline, and the portfolio keeps its budget."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest

from cloud.planning import (
    PlanningParams,
    PlanStatus,
    forked,
    hierarchical_params,
    plan,
    portfolio,
    solomon_problem,
)
from cloud.planning import vroom_planner as vp
from cloud.planning.model import build_model
from cloud.planning.portfolio import (
    BESIDE_END,
    LARGE_DAY_VROOM_SHARE,
    VROOM_SHARE,
    PortfolioPlanner,
)
from cloud.planning.pyvrp_planner import PyVrpPlanner
from cloud.planning.result import PlanResult
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


def test_auto_keeps_its_budget_on_a_thousand_order_day(thousand: object) -> None:
    problem = solomon_problem(thousand)
    params = hierarchical_params(PlanningParams(time_limit_s=6))
    t0 = time.perf_counter()
    result = plan(problem, params)
    took = time.perf_counter() - t0
    assert took < 6 + 1.0  # before, VROOM alone took 7-29 s with a 0.9 s timeout here
    assert result.status in (PlanStatus.COMPLETE, PlanStatus.PARTIAL, PlanStatus.NO_SOLUTION)
    if result.status is PlanStatus.COMPLETE:
        assert_feasible_and_complete(thousand, result)


def test_on_a_large_day_vroom_runs_its_construction_only(
    thousand: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # VROOM's timeout does not bound its construction, which is what a large day wants from
    # it: the search is all but cut, and the solve ends when the construction does.
    def told(model: object, time_limit_s: float, *_: object) -> str:
        return f"timeout {time_limit_s:.3f}"

    monkeypatch.setattr(vp, "_solve", told)  # the forked child inherits the patch
    large = VroomPlanner().solve(solomon_model(thousand), 4.0)
    small = VroomPlanner().solve(solomon_model(solomon_instance("C101", 20)), 4.0)
    assert large.message == f"timeout {vp.LARGE_DAY_SEARCH_S:.3f}"
    assert small.message == f"timeout {4.0 - forked.CHILD_MARGIN_S:.3f}"
    assert forked.child_timeout(1.0) == pytest.approx(forked.CHILD_TIMEOUT_SHARE)


def test_vroom_s_construction_plans_a_thousand_order_day(thousand: object) -> None:
    # The generous deadline is only a bound: construction alone took 0.8-1.4 s here.
    result = VroomPlanner().solve(solomon_model(thousand), 20.0)
    assert_feasible_and_complete(thousand, result)


def test_auto_gives_vroom_a_longer_deadline_on_a_large_day(
    thousand: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    shares: list[float] = []
    solve = VroomPlanner.solve

    def recorded(self: VroomPlanner, model: object, time_limit_s: float, **kw: int) -> object:
        shares.append(time_limit_s)
        return solve(self, model, time_limit_s, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(VroomPlanner, "solve", recorded)
    for inst in (solomon_instance("C101", 30), thousand):
        model = build_model(
            solomon_problem(inst), hierarchical_params(PlanningParams(time_limit_s=3))
        )
        PortfolioPlanner().solve(model, 3.0)
    assert shares[0] == pytest.approx(VROOM_SHARE * 3.0)
    assert shares[1] == pytest.approx(LARGE_DAY_VROOM_SHARE * 3.0)
    assert LARGE_DAY_VROOM_SHARE > VROOM_SHARE


@pytest.mark.parametrize("bad", [-1, 2**32])
def test_a_matrix_vroom_cannot_hold_is_refused(bad: int) -> None:
    matrix = np.zeros((3, 3), dtype=np.int64)
    matrix[0, 1] = bad
    with pytest.raises(ValueError, match="VROOM matrix values"):
        vp._matrix(matrix)
    assert vp._matrix(np.ones((2, 2), dtype=np.int64)).dtype == np.uint32


def test_a_started_vroom_solve_runs_while_the_caller_works() -> None:
    inst = solomon_instance("RC101", 50)
    t0 = time.perf_counter()
    run = VroomPlanner().start(solomon_model(inst), 3.0, threads=1)
    assert time.perf_counter() - t0 < 1.0  # returned before the solve could end
    result = run.result()
    assert_feasible_and_complete(inst, result)
    assert run.result().routes == result.routes  # collected once, kept


def test_a_cancelled_vroom_run_is_stopped_and_says_so(thousand: object) -> None:
    run = VroomPlanner().start(solomon_model(thousand), 30.0)
    child = run._child
    run.cancel()
    assert not child.is_alive()
    result = run.result()
    assert result.status is PlanStatus.NO_SOLUTION
    assert result.message == "VROOM cancelled"


def test_auto_runs_a_second_vroom_search_beside_the_fleet_phase(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs: list[tuple[float, int, vp.VroomRun]] = []
    start = VroomPlanner.start

    def recorded(
        self: VroomPlanner, model: object, time_limit_s: float, *, threads: int = 2
    ) -> vp.VroomRun:
        run = start(self, model, time_limit_s, threads=threads)  # type: ignore[arg-type]
        runs.append((time_limit_s, threads, run))
        return run

    monkeypatch.setattr(VroomPlanner, "start", recorded)
    # the start's cap below its share of this budget (1.2 s), so that it shows
    monkeypatch.setattr(portfolio, "VROOM_START_MAX_S", 0.9)
    inst = solomon_instance("R103")
    model = build_model(solomon_problem(inst), hierarchical_params(PlanningParams(time_limit_s=8)))
    result = PortfolioPlanner().solve(model, 8.0)
    assert_feasible_and_complete(inst, result)
    beside, short = runs
    # the search beside the PyVRP phases lasts nearly the whole budget; the short one is
    # the fleet phase's start
    assert beside[0] == pytest.approx(BESIDE_END * 8.0, abs=0.1)
    assert short[0] == pytest.approx(min(VROOM_SHARE * 8.0, portfolio.VROOM_START_MAX_S))
    assert short[0] == pytest.approx(0.9)
    assert beside[1] == short[1] == 1  # one core each
    assert result.objective <= beside[2].result().objective  # its plan was in the running
    assert beside[2]._child is None  # collected and reaped


class _Beside:
    """A stand-in for the VROOM run beside the PyVRP phases, with a given plan."""

    def __init__(self, plan: PlanResult, done: bool) -> None:
        self.plan, self._done, self.cancelled = plan, done, False

    def done(self) -> bool:
        return self._done

    def result(self) -> PlanResult:
        return self.plan

    def cancel(self) -> None:
        self.cancelled = True


@pytest.mark.parametrize("done", [True, False])
def test_the_plan_beside_is_the_distance_phase_s_start_once_done_and_else_a_candidate(
    done: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = solomon_instance("R101", 40)
    model = build_model(solomon_problem(inst), hierarchical_params(PlanningParams(time_limit_s=2)))
    real = VroomPlanner().solve(model, 1.0)
    assert_feasible_and_complete(inst, real)
    unbeatable = dataclasses.replace(real, objective=0)  # better than any plan the phases find
    beside = _Beside(unbeatable, done)
    real_start = VroomPlanner.start

    def start(self: VroomPlanner, model: object, t: float, **kw: int) -> object:
        # the run beside lasts nearly the whole budget; the short one is the real VROOM
        return beside if t > 0.5 * 2.0 else real_start(self, model, t, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(VroomPlanner, "start", start)
    starts: list[PlanResult] = []
    shorten = PyVrpPlanner.shorten

    def recorded(
        self: PyVrpPlanner, model: object, best: PlanResult, t: float, **kw: int
    ) -> PlanResult:
        starts.append(best)  # in this process; the second search's child has its own list
        return shorten(self, model, best, t, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(PyVrpPlanner, "shorten", recorded)
    result = PortfolioPlanner().solve(model, 2.0)
    assert (starts[0] is unbeatable) is done  # the distance phase starts from it once done
    assert result.routes == unbeatable.routes  # and it is the answer either way
    assert beside.cancelled


def test_a_forked_vroom_solve_returns_its_plan() -> None:
    inst = solomon_instance("RC101", 50)
    result = VroomPlanner().solve(solomon_model(inst), 2.0)
    assert_feasible_and_complete(inst, result)
    assert result.solver == "vroom"


def test_vroom_failing_in_its_child_is_a_clear_no_solution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(model: object, time_limit_s: float, *_: object) -> dict[int, list[int]]:
        raise RuntimeError("matrix too large")

    monkeypatch.setattr(vp, "_solve", broken)  # the forked child inherits the patch
    result = VroomPlanner().solve(solomon_model(solomon_instance("C101", 20)), 1.0)
    assert result.status is PlanStatus.NO_SOLUTION
    assert result.message == "VROOM failed: matrix too large"


def test_a_child_that_dies_without_a_word_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def dies(model: object, time_limit_s: float, *_: object) -> dict[int, list[int]]:
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

        def dies(model: object, time_limit_s: float, *_: object) -> dict[int, list[int]]:
            import os

            os._exit(4)

        monkeypatch.setattr(vp, "_solve", dies)
        gone = VroomPlanner().solve(model, 1.0)
    finally:
        stop.set()
        other.join()
    assert gone.status is PlanStatus.NO_SOLUTION
    assert gone.message == "VROOM stopped without a plan (exit code 4)"
