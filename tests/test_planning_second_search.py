"""The distance phase on both cores: once VROOM's search beside has ended, a second PyVRP
distance search with another seed runs in a forked child, and the shorter plan is kept."""

from __future__ import annotations

import dataclasses
import time

import pytest

from cloud.planning import PlanningParams, PlanStatus, hierarchical_params, portfolio
from cloud.planning import pyvrp_planner as pp
from cloud.planning.model import build_model
from cloud.planning.portfolio import PortfolioPlanner, other_seed
from cloud.planning.pyvrp_planner import PyVrpPlanner
from cloud.planning.result import PlanResult
from cloud.planning.solomon import solomon_problem
from cloud.planning.vroom_planner import VroomPlanner
from tests.planning_checks import assert_feasible_and_complete, solomon_instance

pytestmark = pytest.mark.slow


def _model(seconds: float, seed: int = 0) -> object:
    inst = solomon_instance("R101", 40)
    params = hierarchical_params(PlanningParams(time_limit_s=seconds, seed=seed))
    return inst, build_model(solomon_problem(inst), params)


class _Run:
    """A stand-in for a forked run, with a given plan, done once ``done_after`` seconds
    have passed (``None``: never)."""

    def __init__(self, plan: PlanResult, done_after: float | None = 0.0) -> None:
        self.plan, self.cancelled, self.collected = plan, False, False
        self._done_at = None if done_after is None else time.perf_counter() + done_after

    def done(self) -> bool:
        return self._done_at is not None and time.perf_counter() >= self._done_at

    def result(self) -> PlanResult:
        self.collected = True
        return self.plan

    def cancel(self) -> None:
        self.cancelled = True


def test_a_second_distance_search_runs_in_a_child_and_is_held_to_the_fleet() -> None:
    inst, model = _model(3.0)
    best = PyVrpPlanner().solve(model, 0.3)  # type: ignore[arg-type]
    assert_feasible_and_complete(inst, best)
    t0 = time.perf_counter()
    run = PyVrpPlanner().start_shorten(model, best, 1.5, seed=7)  # type: ignore[arg-type]
    assert time.perf_counter() - t0 < 0.5  # returned at once: the search runs in the child
    shorter = run.result()
    assert time.perf_counter() - t0 < 1.5 + 0.5  # and ended by its deadline
    assert_feasible_and_complete(inst, shorter)
    assert shorter.solver == "pyvrp"
    assert shorter.vehicles_used <= best.vehicles_used
    assert shorter.objective <= best.objective  # never worse than the plan it was given


def test_a_second_search_that_fails_is_a_clear_no_solution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_: object) -> dict[int, list[int]]:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(pp, "_shortened", broken)  # the forked child inherits the patch
    inst, model = _model(2.0)
    best = PyVrpPlanner().solve(model, 0.3)  # type: ignore[arg-type]
    result = PyVrpPlanner().start_shorten(model, best, 1.0, seed=1).result()  # type: ignore[arg-type]
    assert result.status is PlanStatus.NO_SOLUTION
    assert result.message == "PyVRP failed: out of memory"
    # and the portfolio still answers with its own distance search's plan
    answer = PortfolioPlanner().solve(model, 2.0)  # type: ignore[arg-type]
    assert_feasible_and_complete(inst, answer)


@pytest.mark.parametrize(
    ("beside_done_after", "cores", "second"),
    [(0.0, 1, True), (0.8, 1, True), (None, 1, False), (0.0, 0, False)],
    ids=["beside-ended", "beside-ends-mid-phase", "beside-runs-to-the-end", "one-cpu"],
)
def test_the_second_search_starts_once_the_other_core_is_free_and_its_plan_can_win(
    beside_done_after: float | None,
    cores: int,
    second: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inst, model = _model(2.0, seed=5)
    real = VroomPlanner().solve(model, 1.0)  # type: ignore[arg-type]
    assert_feasible_and_complete(inst, real)
    real_start = VroomPlanner.start
    beside = _Run(real, beside_done_after)

    def vroom_start(self: VroomPlanner, model: object, t: float, **kw: int) -> object:
        # the run beside lasts nearly the whole budget; the short one is the real VROOM
        return beside if t > 0.5 * 2.0 else real_start(self, model, t, **kw)  # type: ignore[arg-type]

    unbeatable = dataclasses.replace(real, objective=0)
    started: list[tuple[PlanResult, int, float, float, _Run]] = []

    def start_shorten(
        self: PyVrpPlanner, model: object, best: PlanResult, t: float, *, seed: int
    ) -> _Run:
        run = _Run(unbeatable)
        started.append((best, seed, t, time.perf_counter(), run))
        return run

    monkeypatch.setattr(VroomPlanner, "start", vroom_start)
    monkeypatch.setattr(PyVrpPlanner, "start_shorten", start_shorten)
    monkeypatch.setattr(portfolio, "spare_cores", lambda: cores)
    t0 = time.perf_counter()
    result = PortfolioPlanner().solve(model, 2.0)  # type: ignore[arg-type]
    assert bool(started) is second
    if second:
        ((best, seed, budget, at, run),) = started
        assert seed == other_seed(5) != 5
        assert at - t0 >= (beside_done_after or 0.0)  # not before the other core was free
        assert budget == pytest.approx(2.0 - (at - t0), abs=0.05)  # to the end of the phase
        # it starts from VROOM's plan beside when that is the better one
        assert best.objective <= real.objective
        assert run.collected and run.cancelled  # its plan was weighed, its child stopped
        assert result.routes == unbeatable.routes  # the shorter plan wins
    else:
        assert result.objective > 0  # the caller's own plan
        assert_feasible_and_complete(inst, result)


def test_the_portfolio_weighs_a_real_second_search_and_reaps_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inst, model = _model(3.0)
    runs: list[object] = []
    start_shorten = PyVrpPlanner.start_shorten

    def recorded(self: PyVrpPlanner, *a: object, **kw: int) -> object:
        run = start_shorten(self, *a, **kw)  # type: ignore[arg-type]
        runs.append(run)
        return run

    monkeypatch.setattr(PyVrpPlanner, "start_shorten", recorded)
    monkeypatch.setattr(portfolio, "spare_cores", lambda: 1)  # as on the 2-core gateway or CI
    t0 = time.perf_counter()
    result = PortfolioPlanner().solve(model, 3.0)  # type: ignore[arg-type]
    assert time.perf_counter() - t0 < 3.0 + 0.5  # the budget holds with the child
    assert_feasible_and_complete(inst, result)
    (run,) = runs
    second = run.result()  # type: ignore[attr-defined]
    assert second.status is PlanStatus.COMPLETE  # the child planned within its time
    assert result.objective <= second.objective  # and its plan was in the running
    assert run._child is None  # type: ignore[attr-defined]  # collected and reaped


def test_a_second_search_that_cannot_start_leaves_the_caller_s_plan(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_fork(*_: object, **__: object) -> object:
        raise OSError(11, "Resource temporarily unavailable")

    inst, model = _model(2.0)
    real = VroomPlanner().solve(model, 1.0)  # type: ignore[arg-type]
    real_start = VroomPlanner.start

    def vroom_start(self: VroomPlanner, model: object, t: float, **kw: int) -> object:
        # the run beside has ended at once, so the second search is due to start
        return _Run(real) if t > 0.5 * 2.0 else real_start(self, model, t, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(VroomPlanner, "start", vroom_start)
    monkeypatch.setattr(PyVrpPlanner, "start_shorten", no_fork)
    monkeypatch.setattr(portfolio, "spare_cores", lambda: 1)
    with caplog.at_level("WARNING", logger="cloud.planning.portfolio"):
        result = PortfolioPlanner().solve(model, 2.0)  # type: ignore[arg-type]
    assert_feasible_and_complete(inst, result)
    assert "second distance search not started" in caplog.text


def test_other_seed_is_another_valid_seed() -> None:
    assert other_seed(0) == 1
    assert other_seed(2**32 - 1) == 0  # PyVRP's seeds are 32-bit
    assert PlanningParams(seed=other_seed(41)).seed == 42


def test_spare_cores_counts_the_cpus_this_process_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(portfolio.os, "sched_getaffinity", lambda _: {0}, raising=False)
    assert portfolio.spare_cores() == 0  # pinned to one CPU: no second search
    monkeypatch.setattr(portfolio.os, "sched_getaffinity", lambda _: {0, 3}, raising=False)
    assert portfolio.spare_cores() == 1
    monkeypatch.delattr(portfolio.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(portfolio.os, "cpu_count", lambda: 4)
    assert portfolio.spare_cores() == 3  # where the system does not say: the machine's CPUs
