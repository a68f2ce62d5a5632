"""The re-sequencer's effort scales with the stops, and its insertion start keeps windows."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from edge.sequencer import (
    GreedySequencer,
    PortfolioSequencer,
    SequenceResult,
    SequencerParams,
    SequencingProblem,
    Stop,
    make_sequencer,
    problem_from_instance,
    simulate,
)
from edge.sequencer.greedy import _insertion
from edge.sequencer.portfolio import TARGET_S
from edge.sequencer.schedule import Evaluator
from routing import read_instance
from tests.helpers import DATA_DIR

DATA = str(DATA_DIR / "solomon")


def _day(name: str, n: int, stretch: float) -> SequencingProblem:
    inst = read_instance(f"{DATA}/{name}.txt")
    customers = list(range(1, n + 1))
    warm = sorted(customers, key=lambda c: (inst.customers[c].ready, c))
    return problem_from_instance(inst, customers, stretch=stretch, current_order=warm)


class _Spy:
    """Answers at once with the greedy, noting the time limit it was handed."""

    name = "spy"

    def __init__(self) -> None:
        self.limits: list[float] = []
        self.problems: list[SequencingProblem] = []

    def solve(self, problem: SequencingProblem, params: SequencerParams) -> SequenceResult:
        self.limits.append(params.time_limit_s)
        self.problems.append(problem)
        return GreedySequencer().solve(problem, replace(params, time_limit_s=0.001))


def test_effort_is_the_target_up_to_100_stops_and_grows_past_it() -> None:
    seq = PortfolioSequencer(primary=None)
    assert seq.effort_s(10, 0.2) == pytest.approx(TARGET_S)
    assert seq.effort_s(100, 0.2) == pytest.approx(TARGET_S)
    assert seq.effort_s(150, 0.2) == pytest.approx(min(0.2, TARGET_S * 1.5**2))
    assert seq.effort_s(200, 0.2) == pytest.approx(0.2)  # the budget stays the cap
    assert seq.effort_s(200, 5.0) == pytest.approx(TARGET_S * 4)
    assert seq.effort_s(100, 0.05) == pytest.approx(0.05)  # a shorter budget is kept
    assert PortfolioSequencer(primary=None, target_s=None).effort_s(100, 0.2) == 0.2


def test_solver_is_handed_the_scaled_effort_not_the_whole_budget() -> None:
    spy = _Spy()
    prob = _day("R201", 100, stretch=4.0)
    PortfolioSequencer(primary=spy).solve(prob, SequencerParams(time_limit_s=0.2))
    assert len(spy.limits) == 1
    assert spy.limits[0] < TARGET_S


def test_default_answers_100_stops_well_inside_the_default_budget() -> None:
    prob = _day("R201", 100, stretch=4.0)
    seq = make_sequencer()
    seq.solve(_day("R201", 10, stretch=4.0), SequencerParams(time_limit_s=0.05))  # imports
    t = time.perf_counter()
    r = seq.solve(prob, SequencerParams(time_limit_s=0.2, seed=1))
    elapsed = time.perf_counter() - t
    assert elapsed < 0.2  # it used to spend the whole budget
    assert r.cost <= simulate(prob, prob.current_order).cost(SequencerParams()) + 1e-6


@pytest.mark.parametrize(("name", "stretch"), [("C101", 6.0), ("R201", 2.4), ("RC201", 2.4)])
def test_insertion_keeps_every_window_on_a_day_that_allows_it(name: str, stretch: float) -> None:
    # 30 stops stretched as the benchmark does: a route keeping every window exists
    prob = _day(name, 30, stretch=stretch)
    ev = Evaluator(prob, SequencerParams())
    route = _insertion(ev, [])
    assert sorted(route) == list(range(30))
    order = [ev.ids[i] for i in route]
    assert simulate(prob, order).lateness == 0
    if name == "RC201":
        assert simulate(prob, prob.current_order).lateness > 0  # stops by ready time are late


def test_insertion_keeps_the_committed_stop_first_and_prices_a_late_day() -> None:
    prob = _day("R101", 40, stretch=1.0)  # a fleet's windows: one van cannot keep them
    prob = replace(prob, committed_next="17")
    ev = Evaluator(prob, SequencerParams())
    route = _insertion(ev, [prob.index["17"]])
    order = [ev.ids[i] for i in route]
    assert order[0] == "17"
    assert prob.is_valid_order(order)
    assert simulate(prob, order).lateness > 0
    r = GreedySequencer().solve(prob, SequencerParams(time_limit_s=0.05))
    assert r.order[0] == "17"


def test_insertion_honours_the_shift_end() -> None:
    # two stops on a line; visiting the far one first would end the shift late
    tt = ((0, 10, 100), (10, 0, 95), (100, 95, 0))
    stops = (Stop("near", 1, ready=0, due=1_000), Stop("far", 2, ready=0, due=1_000))
    prob = SequencingProblem(tt, tt, 0, 0, stops, 0, shift_end=210)
    ev = Evaluator(prob, SequencerParams())
    order = [ev.ids[i] for i in _insertion(ev, [])]
    assert simulate(prob, order).lateness == 0


def test_insertion_in_the_current_order_repairs_a_plan_a_delay_made_late() -> None:
    day = _day("C201", 30, stretch=1.8)
    first = Evaluator(day, SequencerParams())
    plan = tuple(first.ids[i] for i in _insertion(first, []))  # deterministic, on time
    assert simulate(day, plan).lateness == 0
    horizon = max(s.due for s in day.stops) - day.start_time
    late = replace(day, start_time=day.start_time + horizon // 10, current_order=plan)
    assert simulate(late, plan).lateness > 0  # the van left late: the plan no longer holds
    ev = Evaluator(late, SequencerParams())
    repaired = [ev.ids[i] for i in _insertion(ev, [], ev.indices(plan))]
    assert late.is_valid_order(repaired)
    assert simulate(late, repaired).lateness < simulate(late, plan).lateness


def test_a_plan_that_drifted_is_the_solvers_warm_start_and_a_sweep_is_not() -> None:
    from bench.resequence import after_event, van_day

    cold = van_day(60, seed=4)  # the current order is a sweep that ignores the windows
    spy = _Spy()
    PortfolioSequencer(primary=spy).solve(cold, SequencerParams(time_limit_s=0.2))
    warm_cold = spy.problems[0].current_order
    assert warm_cold != cold.current_order  # the greedy route, far less late

    # a good plan, the same on a busy machine: the compiled search bounded by its
    # iterations, not by the clock, from the deterministic insertion
    from edge.sequencer.lsearch import compile_problem, search

    params = SequencerParams()
    start = _insertion(Evaluator(cold, params), [])
    route, _, _ = search(compile_problem(cold, params), start, False, 0, 0.0, max_iters=400)
    plan = tuple(cold.stops[i].id for i in route)
    drifted = after_event(cold, plan, seed=60)
    spy = _Spy()
    PortfolioSequencer(primary=spy).solve(drifted, SequencerParams(time_limit_s=0.2))
    assert spy.problems[0].current_order == plan  # repaired, not rebuilt
