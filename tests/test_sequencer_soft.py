"""Soft windows inside PyVRP's search, its early stop, and the stock model it replaced."""

from __future__ import annotations

import itertools
import math
import random
import time

import pytest

from edge.sequencer import (
    InvalidProblemError,
    PyVrpSequencer,
    SequencerParams,
    SequencingProblem,
    Stop,
    make_sequencer,
    problem_from_instance,
    simulate,
)
from routing import read_instance
from tests.helpers import DATA_DIR

DATA = str(DATA_DIR / "solomon")
PARAMS = SequencerParams(time_limit_s=0.3, seed=0)


def _late_day(seed: int, n: int = 7) -> SequencingProblem:
    """A small day whose windows cannot all be kept: lateness is unavoidable and carries
    over to the stops after a late one, which PyVRP's time warp does not."""
    rng = random.Random(seed)
    pts = [(0.0, 0.0)] + [(rng.uniform(0, 600), rng.uniform(0, 600)) for _ in range(n)]
    m = tuple(tuple(round(math.dist(a, b)) for b in pts) for a in pts)  # metres; a second per metre
    stops = []
    for k in range(1, n + 1):
        ready = rng.randrange(0, 1_500)
        stops.append(Stop(str(k), k, ready=ready, due=ready + rng.randrange(0, 200), service=60))
    order = tuple(s.id for s in sorted(stops, key=lambda s: -s.due))  # a poor warm start
    return SequencingProblem(m, m, 0, 0, tuple(stops), 0, current_order=order)


def _brute_force(prob: SequencingProblem) -> float:
    return min(
        simulate(prob, order).cost(PARAMS)
        for order in itertools.permutations(s.id for s in prob.stops)
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_soft_windows_reach_the_lateness_aware_optimum(seed: int) -> None:
    prob = _late_day(seed)
    best = _brute_force(prob)
    assert simulate(prob, prob.current_order).lateness > 0
    r = PyVrpSequencer().solve(prob, PARAMS)
    assert r.lateness > 0  # no route keeps every window on these days
    assert r.cost == pytest.approx(best)
    assert make_sequencer().solve(prob, PARAMS).cost == pytest.approx(best)


def test_soft_model_beats_hard_windows_on_a_late_day() -> None:
    # R101's windows are made for a fleet: with hard windows PyVRP's best stays the warm
    # start, since no route keeps them all; priced as lateness the search gets going.
    inst = read_instance(f"{DATA}/R101.txt")
    prob = problem_from_instance(inst, list(range(1, 41)))
    stock = PyVrpSequencer(soft=False).solve(prob, PARAMS)
    soft = PyVrpSequencer().solve(prob, PARAMS)
    assert prob.is_valid_order(stock.order) and prob.is_valid_order(soft.order)
    assert soft.cost < 0.9 * stock.cost
    assert soft.cost <= simulate(prob, prob.current_order).cost(PARAMS)


def test_converged_search_stops_early_with_a_valid_route() -> None:
    inst = read_instance(f"{DATA}/C101.txt")
    prob = problem_from_instance(inst, list(range(1, 21)), stretch=10.0)  # windows keepable
    params = SequencerParams(time_limit_s=3.0, seed=0)
    for seq in (PyVrpSequencer(), make_sequencer()):
        t = time.perf_counter()
        r = seq.solve(prob, params)
        assert time.perf_counter() - t < 1.0  # far less than the 3 s budget
        assert prob.is_valid_order(r.order)
        assert r.cost == pytest.approx(simulate(prob, r.order).cost(params))
    # and no worse than running the whole budget
    full = PyVrpSequencer(patience=10**9).solve(prob, SequencerParams(time_limit_s=0.5))
    assert PyVrpSequencer().solve(prob, params).cost <= full.cost * 1.005


def test_soft_search_keeps_its_time_limit() -> None:
    inst = read_instance(f"{DATA}/RC101.txt")
    prob = problem_from_instance(inst, list(range(1, 101)), stretch=2.0)
    params = SequencerParams(time_limit_s=0.1, seed=0)
    t = time.perf_counter()
    r = PyVrpSequencer(patience=10**9).solve(prob, params)
    assert time.perf_counter() - t < 0.1 + 0.15  # as the other sequencers: a shared machine
    assert prob.is_valid_order(r.order)


def test_committed_stop_stays_first_on_a_late_day() -> None:
    prob = _late_day(4)
    committed = prob.current_order[-1]
    prob = SequencingProblem(
        prob.travel_time,
        prob.distance,
        0,
        0,
        prob.stops,
        0,
        committed_next=committed,
        current_order=prob.current_order,
    )
    r = PyVrpSequencer().solve(prob, PARAMS)
    assert r.order[0] == committed
    best = min(
        simulate(prob, (committed, *rest)).cost(PARAMS)
        for rest in itertools.permutations(s.id for s in prob.stops if s.id != committed)
    )
    assert r.cost == pytest.approx(best)


def test_reordered_problem_is_the_same_problem_with_another_warm_start() -> None:
    prob = _late_day(5)
    order = tuple(reversed(prob.current_order))
    again = prob.reordered(order)
    assert again.current_order == order
    assert again.travel_time is prob.travel_time and again.stops == prob.stops
    assert prob.current_order != order  # the original is untouched
    with pytest.raises(InvalidProblemError):
        prob.reordered(order[1:])
