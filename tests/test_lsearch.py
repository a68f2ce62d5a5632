"""The compiled local search (edge/sequencer/_lsearch.c) against the Python simulation."""

from __future__ import annotations

import functools
import gc
import os
import random
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from edge.sequencer import (
    Break,
    GreedySequencer,
    PortfolioSequencer,
    Sequencer,
    SequencerError,
    SequencerParams,
    SequencingProblem,
    Stop,
    _lsearch,
    lsearch,
    make_sequencer,
    problem_from_instance,
    simulate,
)
from edge.sequencer.greedy import _insertion, _nearest_neighbour
from edge.sequencer.lsearch import LocalSearchSequencer, compile_problem
from edge.sequencer.schedule import Evaluator
from routing import read_instance
from tests.helpers import DATA_DIR


def _random_problem(rng: random.Random, n: int, **over: object) -> SequencingProblem:
    """A day with every term of the cost in play: a break, capacity with pickups and
    deliveries, depth, a shift end, a committed stop, asymmetric travel times, an end node
    that is not the start."""
    pts = [(rng.uniform(0, 6000), rng.uniform(0, 6000)) for _ in range(n + 2)]
    dist = [[round(1.3 * np.hypot(a[0] - b[0], a[1] - b[1])) for b in pts] for a in pts]
    tt = [
        [d // 8 + (rng.randint(0, 30) if i != j else 0) for j, d in enumerate(row)]
        for i, row in enumerate(dist)
    ]
    stops = []
    for k in range(n):
        ready = rng.randint(0, 6000)
        windowed = rng.random() < 0.7
        stops.append(
            Stop(
                f"s{k}",
                k + 2,
                ready=ready if windowed else 0,
                due=ready + rng.randint(0, 2400) if windowed else 2**40,
                service=rng.randint(0, 300),
                delivery=rng.randint(0, 6),
                pickup=rng.choice([0, 0, rng.randint(1, 6)]),
                depth=rng.choice([0.0, round(rng.uniform(0, 40), 3)]),
            )
        )
    earliest = rng.randint(0, 4000)
    kw: dict[str, object] = {
        "shift_end": rng.choice([None, rng.randint(4000, 12000)]),
        "capacity": rng.choice([None, rng.randint(5, 60)]),
        "extra_load": rng.randint(0, 8),
        "break_": rng.choice(
            [None, Break(earliest, earliest + rng.randint(0, 2400), rng.randint(0, 1800))]
        ),
        "committed_next": rng.choice([None, f"s{rng.randrange(n)}"]),
    }
    kw.update(over)
    order = [s.id for s in stops]
    rng.shuffle(order)
    return SequencingProblem(
        tt,
        dist,
        0,
        rng.randint(0, 600),
        tuple(stops),
        rng.choice([0, 1]),
        current_order=tuple(order),
        **kw,  # type: ignore[arg-type]
    )


def _params(rng: random.Random) -> SequencerParams:
    return SequencerParams(
        lateness_weight=rng.choice([100.0, 1.5, 0.0]),
        overload_weight=rng.choice([10_000.0, 3.0]),
        depth_weight=rng.choice([1.0, 0.25]),
    )


def _solomon(name: str, n: int, stretch: float, **kw: object) -> SequencingProblem:
    path = DATA_DIR / ("solomon" if n <= 100 else "homberger/200") / f"{name}.txt"
    inst = read_instance(str(path))
    customers = list(range(1, n + 1))
    warm = sorted(customers, key=lambda c: (inst.customers[c].ready, c))
    prob = problem_from_instance(inst, customers, stretch=stretch, current_order=warm)
    return replace(prob, **kw) if kw else prob


def _route(prob: SequencingProblem, order: tuple[str, ...] | None = None) -> np.ndarray:
    return np.array([prob.index[s] for s in order or prob.current_order], dtype=np.int64)


def test_c_cost_equals_the_python_simulation_on_random_orders() -> None:
    rng = random.Random(20261123)
    seen = {"break": 0, "capacity": 0, "depth": 0, "shift_end": 0, "late": 0, "over": 0}
    for case in range(400):
        prob = _random_problem(rng, rng.randint(1, 35))
        params = _params(rng)
        ev = Evaluator(prob, params)
        args = compile_problem(prob, params)
        for _ in range(3):
            idx = list(range(len(prob.stops)))
            rng.shuffle(idx)
            sched = ev.run(idx)
            cost, distance, lateness, overload, depth = _lsearch.cost(
                **args, route=np.array(idx, dtype=np.int64)
            )
            assert (distance, lateness, overload) == (
                sched.distance,
                sched.lateness,
                sched.overload,
            ), case
            assert depth == pytest.approx(sched.depth, rel=1e-12, abs=1e-9)
            assert cost == pytest.approx(sched.cost(params), rel=1e-12, abs=1e-6), case
            seen["late"] += sched.lateness > 0
            seen["over"] += sched.overload > 0
        seen["break"] += prob.break_ is not None
        seen["capacity"] += prob.capacity is not None
        seen["depth"] += any(s.depth for s in prob.stops)
        seen["shift_end"] += prob.shift_end is not None
    assert min(seen.values()) > 50, seen  # every term was exercised, many times


def test_c_cost_of_an_empty_and_a_one_stop_route() -> None:
    rng = random.Random(7)
    for n in (0, 1):
        stops = tuple(Stop(f"s{k}", 1, ready=10, due=20, service=5, depth=3.0) for k in range(n))
        prob = SequencingProblem(
            ((0, 40), (40, 0)), ((0, 50), (50, 0)), 0, 0, stops, 0, break_=Break(0, 5, 7)
        )
        params = _params(rng)
        got = _lsearch.cost(**compile_problem(prob, params), route=np.arange(n, dtype=np.int64))
        assert got[0] == pytest.approx(Evaluator(prob, params).cost(list(range(n))))


def test_search_answers_a_valid_route_never_costlier_than_its_warm_start() -> None:
    rng = random.Random(99)
    for case in range(120):
        prob = _random_problem(rng, rng.randint(1, 60))
        params = _params(rng)
        ev = Evaluator(prob, params)
        args = compile_problem(prob, params)
        warm = _route(prob)
        fixed = prob.committed_next is not None
        route, cost, stats = _lsearch.search(
            **args,
            route=warm,
            fixed=int(fixed),
            seed=case,
            time_limit=0.05,
            rule=rng.choice([3, 0, 4, 9]),  # first or best improvement, mixed, both
            accept=rng.choice([0.0, 0.01]),
            segment=rng.choice([1, 2, 3, 5]),
            segment_after=rng.choice([0, 1, 4]),
        )
        assert sorted(route) == list(range(len(prob.stops))), case
        if fixed:
            assert route[0] == prob.index[prob.committed_next]
        assert cost == pytest.approx(ev.cost(route), rel=1e-12, abs=1e-6)
        assert cost <= ev.cost(list(warm)) + 1e-9
        assert stats["evaluations"] >= 0 and stats["seconds"] < 1.0
        assert stats["mispriced"] == 0, case


def test_every_applied_move_costs_what_it_was_priced_at() -> None:
    """The search prices a move from cached prefix states, prefix sums of the distance and
    shortcuts through the suffix and through blocks of the old route; after each move it
    applies, the route is simulated in full again and the two must agree."""
    rng = random.Random(4242)
    moves = 0
    for case in range(150):
        prob = _random_problem(rng, rng.randint(5, 80), capacity=rng.choice([None, None, 30]))
        params = _params(rng)
        args = compile_problem(prob, params)
        _, _, stats = _lsearch.search(
            **args,
            route=_route(prob),
            fixed=int(prob.committed_next is not None),
            seed=case,
            time_limit=0,
            max_iters=60,
            rule=rng.choice([0, 1, 2, 3]),
            segment=rng.choice([1, 3, 8]),
            segment_after=rng.choice([0, 1, 2]),
        )
        assert stats["mispriced"] == 0, case
        moves += stats["moves"]
    for name, n in (("RC101", 100), ("C201", 100), ("RC2_2_1", 200)):  # narrow windows
        prob = _solomon(name, n, 2.0)
        _, _, stats = _lsearch.search(
            **compile_problem(prob, SequencerParams()),
            route=_route(prob),
            time_limit=0,
            max_iters=200,
        )
        assert stats["mispriced"] == 0, name
        moves += stats["moves"]
    assert moves > 20_000


def test_half_the_kicks_move_runs_of_stops_to_their_cheapest_places() -> None:
    """A kick either exchanges two segments or moves a run of up to eight stops, each to
    its cheapest place near a near stop: over many kicks both happen, the second moving at
    most eight stops per kick (two kicks at most per iteration), and every move so made is
    priced right."""
    rng = random.Random(77)
    relocated = 0
    for case in range(20):
        prob = _random_problem(rng, rng.randint(20, 60))
        args = compile_problem(prob, _params(rng))
        fixed = int(prob.committed_next is not None)
        common = {"route": _route(prob), "fixed": fixed, "seed": case, "time_limit": 0}
        _, _, none = _lsearch.search(**args, **common, max_iters=0)
        assert none["relocated"] == 0  # the first descent alone: no kick
        route, _, stats = _lsearch.search(**args, **common, max_iters=100)
        assert 0 < stats["relocated"] <= 2 * 8 * stats["iterations"], case
        assert stats["mispriced"] == 0 and sorted(route) == list(range(len(prob.stops)))
        relocated += stats["relocated"]
    # about half of up to 200 kicks a call, each moving 4.5 stops on average
    assert 20 * 100 * 0.5 < relocated < 20 * 200 * 8


def test_c_constructions_are_the_greedys_routes() -> None:
    rng = random.Random(515)
    for case in range(300):
        prob = _random_problem(rng, rng.randint(1, 60))
        params = _params(rng)
        ev = Evaluator(prob, params)
        args = compile_problem(prob, params)
        cur = ev.indices(prob.current_order)
        fixed = 1 if prob.committed_next is not None else 0
        route = np.asarray(cur, dtype=np.int64)
        urgency = rng.choice([0.0, 0.05, 0.5])
        kw = {**args, "route": route, "fixed": fixed}
        assert _lsearch.construct(**kw) == _insertion(ev, cur[:fixed]), case
        got = _lsearch.construct(**kw, method="insertion in order")
        assert got == _insertion(ev, cur[:fixed], cur), case
        got = _lsearch.construct(**kw, method="nearest", urgency=urgency)
        assert got == _nearest_neighbour(ev, cur[:fixed], urgency), case
    for name, n in (("R201", 100), ("C1_2_1", 200)):
        prob = _solomon(name, n, 2.0, committed_next="7")
        ev = Evaluator(prob, SequencerParams())
        args = compile_problem(prob, SequencerParams())
        cur = ev.indices(prob.current_order)
        got = _lsearch.construct(**args, route=np.asarray(cur, dtype=np.int64), fixed=1)
        assert got == _insertion(ev, cur[:1]) and got[0] == prob.index["7"]


def test_the_beam_searches_build_a_valid_route_on_any_day() -> None:
    rng = random.Random(77)
    for case in range(150):
        prob = _random_problem(rng, rng.randint(1, 45))
        args = compile_problem(prob, _params(rng))
        fixed = 1 if prob.committed_next is not None else 0
        for method in ("beam", "windows first"):
            kw = {**args, "route": _route(prob), "fixed": fixed, "method": method}
            width = rng.choice([1, 2, 7, 50])
            got = _lsearch.construct(**kw, width=width)
            assert sorted(got) == list(range(len(prob.stops))), (case, method)
            if fixed:
                assert got[0] == prob.index[prob.committed_next], (case, method)
            assert _lsearch.construct(**kw, width=width) == got  # no randomness
            assert _lsearch.cost(**{**args, "route": np.asarray(got, dtype=np.int64)})[0] >= 0


def test_the_beam_search_finds_the_order_a_days_narrow_windows_set() -> None:
    # forty stops whose windows follow one another, listed and placed at random: the only
    # route on time serves them in the windows' order, which no nearest stop leads to
    rng = random.Random(3)
    n = 40
    pts = [(0.0, 0.0)] + [(rng.uniform(0, 5000), rng.uniform(0, 5000)) for _ in range(n)]
    dist = [[round(np.hypot(a[0] - b[0], a[1] - b[1])) for b in pts] for a in pts]
    tt = [[d // 10 for d in row] for row in dist]
    slot = list(range(n))
    rng.shuffle(slot)
    stops = tuple(
        Stop(f"s{k}", k + 1, ready=1000 * (slot[k] + 1), due=1000 * (slot[k] + 1) + 100, service=60)
        for k in range(n)
    )
    prob = SequencingProblem(tt, dist, 0, 0, stops, 0, current_order=tuple(s.id for s in stops))
    args = {**compile_problem(prob, SequencerParams()), "route": _route(prob)}
    got = _lsearch.construct(**args, method="beam", width=20)
    assert [slot[k] for k in got] == list(range(n))
    assert _lsearch.cost(**{**args, "route": np.asarray(got, dtype=np.int64)})[2] == 0
    nearest = _lsearch.construct(**args, method="nearest", urgency=0.0)
    assert _lsearch.cost(**{**args, "route": np.asarray(nearest, dtype=np.int64)})[2] > 0


def test_windows_first_keeps_the_beams_order_of_the_windowed_stops_and_inserts_the_rest() -> None:
    from bench.resequence import van_day

    prob = van_day(200, 1)  # half the stops with two-hour windows, half free all day
    args = {**compile_problem(prob, SequencerParams()), "route": _route(prob)}
    got = _lsearch.construct(**args, method="windows first", width=50)
    assert sorted(got) == list(range(200))
    windowed = [k for k, s in enumerate(prob.stops) if s.due - s.ready < 6 * 3600]
    assert 80 < len(windowed) < 120
    # the windowed stops alone, by the beam search: their order is kept
    sub = {
        **args,
        **{k: np.asarray(args[k])[windowed] for k in ("nodes", "ready", "due", "service")},
        **{k: np.asarray(args[k])[windowed] for k in ("dload", "depth")},
        "route": np.arange(len(windowed), dtype=np.int64),
    }
    alone = [windowed[k] for k in _lsearch.construct(**sub, method="beam", width=50)]
    assert [k for k in got if k in set(windowed)] == alone

    def late(route: list[int]) -> int:
        return int(_lsearch.cost(**{**args, "route": np.asarray(route, dtype=np.int64)})[2])

    # far less late than the driver's sweep or the greedy's constructions
    assert late(got) * 20 < min(late(_lsearch.construct(**args)), late(list(_route(prob))))
    nearest = _lsearch.construct(**args, method="nearest", urgency=0.05)
    assert late(got) * 20 < late(nearest)


def test_the_beam_search_comes_near_the_best_known_routes_of_clustered_days() -> None:
    import json
    from pathlib import Path

    from bench.resequence import STRETCH, _bks_vehicles

    refs = json.loads((Path(__file__).parents[1] / "docs/results/resequence-refs.json").read_text())
    bks = _bks_vehicles()
    for name, n in (("C201", 100), ("C2_2_1", 200)):
        size = 100 if n <= 100 else 200
        prob = _solomon(name, n, max(1.0, STRETCH * bks[name] * n / size))  # as the benchmark
        args = {**compile_problem(prob, SequencerParams()), "route": _route(prob)}
        best = _lsearch.cost(**{**args, "route": _route(prob, tuple(refs[f"{n}:{name}"]["order"]))})

        def cost(route: list[int], args: dict[str, object] = args) -> float:
            return float(_lsearch.cost(**{**args, "route": np.asarray(route, dtype=np.int64)})[0])

        beam = cost(_lsearch.construct(**args, method="beam", width=lsearch.beam_width(n)))
        assert beam < 1.02 * best[0], name
        # the greedy's constructions are far from it
        assert cost(_lsearch.construct(**args)) > 1.15 * best[0], name
        assert cost(_lsearch.construct(**args, method="nearest", urgency=0.05)) > 1.15 * best[0]


def test_the_compiled_greedy_answers_as_the_python_one(monkeypatch: pytest.MonkeyPatch) -> None:
    params = SequencerParams(time_limit_s=5.0)
    for prob in (_solomon("RC201", 100, 2.0, committed_next="3"), _solomon("C101", 50, 2.0)):
        python = GreedySequencer(polish=False).solve(prob, params)
        compiled = GreedySequencer(polish=False, compiled=True).solve(prob, params)
        assert compiled.order == python.order and compiled.cost == python.cost
    # a construction the extension refuses is built in Python: the same answer
    prob = _solomon("R101", 50, 2.0)
    real = lsearch.compile_problem

    def broken(p: SequencingProblem, q: SequencerParams) -> dict[str, object]:
        return {**real(p, q), "ready": np.zeros(3, dtype=np.int64)}

    monkeypatch.setattr(lsearch, "compile_problem", broken)
    again = GreedySequencer(polish=False, compiled=True).solve(prob, params)
    assert again.order == GreedySequencer(polish=False).solve(prob, params).order


def test_search_improves_a_poor_order_and_keeps_the_committed_stop() -> None:
    prob = _solomon("R201", 100, 2.0, committed_next="57")
    params = SequencerParams(time_limit_s=0.1, seed=3)
    r = LocalSearchSequencer().solve(prob, params)
    assert isinstance(LocalSearchSequencer(), Sequencer)
    assert prob.is_valid_order(r.order) and r.order[0] == "57"
    assert r.cost == pytest.approx(simulate(prob, r.order).cost(params))
    current = simulate(prob, prob.current_order).cost(params)
    greedy = GreedySequencer().solve(prob, replace(params, time_limit_s=0.05)).cost
    assert r.cost < 0.8 * current  # the ready-time order is far from a good route
    assert r.cost < greedy
    assert r.solver == "lsearch"


def test_search_respects_its_deadline() -> None:
    prob = _solomon("R1_2_1", 200, 4.0)
    args = compile_problem(prob, SequencerParams())
    for limit in (0.001, 0.03, 0.1):
        t = time.perf_counter()
        _, _, stats = _lsearch.search(**args, route=_route(prob), time_limit=limit, patience=-1)
        elapsed = time.perf_counter() - t
        assert stats["timed_out"]
        assert elapsed < limit + 0.05, (limit, elapsed)


def test_search_is_deterministic_per_seed_and_releases_the_gil() -> None:
    import threading

    prob = _solomon("RC201", 100, 2.0)
    args = compile_problem(prob, SequencerParams())
    runs = [
        _lsearch.search(**args, route=_route(prob), seed=s, time_limit=0, max_iters=300)
        for s in (5, 5, 6)
    ]
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    assert runs[0][2]["iterations"] == runs[1][2]["iterations"] == 300
    # while one thread searches, another keeps running Python code
    ticks = 0
    done = threading.Event()

    def work() -> None:
        _lsearch.search(**args, route=_route(prob), time_limit=0.3, patience=-1)
        done.set()

    th = threading.Thread(target=work)
    th.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    th.join()
    assert ticks > 50


def _good_args() -> tuple[SequencingProblem, dict[str, object]]:
    prob = _random_problem(random.Random(1), 12, committed_next=None)
    return prob, {**compile_problem(prob, SequencerParams()), "route": _route(prob)}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"travel_time": [[0, 1], [1, 0]]}, "buffer protocol"),
        ({"travel_time": "not a matrix"}, "buffer protocol"),
        ({"distance": np.zeros((14, 14), dtype=np.float64)}, "dtype int64"),
        ({"travel_time": np.array([[0, 1], [1]], dtype=object)}, "int64"),
        ({"travel_time": np.zeros((14, 13), dtype=np.int64)}, "square"),
        ({"distance": np.zeros((13, 13), dtype=np.int64)}, "one size"),
        ({"travel_time": np.zeros(14, dtype=np.int64)}, "2-dimensional"),
        ({"ready": np.zeros(11, dtype=np.int64)}, "ready has 11 entries"),
        ({"due": np.zeros(13, dtype=np.int64)}, "due has 13 entries"),
        ({"service": np.full(12, -1, dtype=np.int64)}, "service[0] is negative"),
        ({"depth": np.zeros(12, dtype=np.int64)}, "dtype float64"),
        ({"depth": np.full(12, -1.0)}, "non-negative"),
        ({"nodes": np.full(12, 14, dtype=np.int64)}, "outside the 14x14"),
        ({"nodes": np.full(12, -1, dtype=np.int64)}, "outside the 14x14"),
        ({"start_node": 99}, "start node 99 is outside"),
        ({"end_node": -3}, "end node -3 is outside"),
        ({"route": np.zeros(12, dtype=np.int64)}, "not a permutation"),
        ({"route": np.arange(11, dtype=np.int64)}, "route has 11 entries"),
        ({"route": np.arange(12, dtype=np.int32)}, "dtype int64"),
        ({"route": np.arange(24, dtype=np.int64)[::2]}, "C-contiguous"),
        ({"break_": (10, 5, 3)}, "break"),
        ({"break_": "soon"}, "break"),
        ({"capacity": "ten"}, "capacity"),
        ({"weights": (1.0, -1.0, 1.0)}, "weights"),
    ],
)
def test_bad_input_is_a_clear_value_error(change: dict[str, object], message: str) -> None:
    prob, args = _good_args()
    arrays = [v for v in args.values() if isinstance(v, np.ndarray)]
    gc.collect()
    before = [sys.getrefcount(a) for a in arrays]
    for fn in (_lsearch.cost, _lsearch.search, _lsearch.construct):
        for _ in range(50):
            with pytest.raises(ValueError, match=re.escape(message)):
                fn(**{**args, **change})
    # every buffer taken on the way to the error was given back
    gc.collect()
    assert [sys.getrefcount(a) for a in arrays] == before
    assert _lsearch.search(**args, time_limit=0.01)[1] > 0  # still works
    assert prob.stops


def test_search_parameters_are_checked() -> None:
    _, args = _good_args()
    for bad in ({"fixed": 2}, {"neighbours": 0}, {"accept": -1.0}):
        with pytest.raises(ValueError):
            _lsearch.search(**args, **bad)
    with pytest.raises(ValueError, match="accept_start and time_limit numbers"):
        _lsearch.search(**args, accept_start=float("nan"))
    with pytest.raises(TypeError):
        _lsearch.search(**args, accept_start="warm")
    for segment in (0, -1, 9):
        with pytest.raises(ValueError, match=f"segment must be 1 to 8, not {segment}"):
            _lsearch.search(**args, segment=segment)
    for after in (-1, 9):
        with pytest.raises(
            ValueError, match=rf"segment_after must be 0 \(as segment\) to 8, not {after}"
        ):
            _lsearch.search(**args, segment_after=after)
    assert _lsearch.search(**args, segment=8, time_limit=0.01)[1] > 0  # still works


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"method": "sweep"},
            "method must be 'insertion', 'insertion in order', 'nearest', 'beam' or "
            "'windows first'",
        ),
        ({"method": "beam", "width": 0}, "width must be 1 to 10000, not 0"),
        ({"method": "windows first", "width": -3}, "width must be 1 to 10000, not -3"),
        ({"method": "beam", "width": 10001}, "width must be 1 to 10000, not 10001"),
        ({"width": "wide"}, "integer"),
        ({"method": 3}, "str"),
        ({"fixed": 2}, "fixed must be 0 or 1"),
        ({"fixed": -1}, "fixed must be 0 or 1"),
        ({"urgency": -0.5}, "urgency must be finite and non-negative"),
        ({"urgency": float("inf")}, "urgency must be finite and non-negative"),
        ({"urgency": float("nan")}, "urgency must be finite and non-negative"),
        ({"urgency": "soon"}, "must be real number"),
    ],
)
def test_construct_parameters_are_checked(change: dict[str, object], message: str) -> None:
    prob, args = _good_args()
    arrays = [v for v in args.values() if isinstance(v, np.ndarray)]
    gc.collect()
    before = [sys.getrefcount(a) for a in arrays]
    for _ in range(50):
        with pytest.raises((ValueError, TypeError), match=re.escape(message)):
            _lsearch.construct(**args, **change)
    gc.collect()
    assert [sys.getrefcount(a) for a in arrays] == before
    assert sorted(_lsearch.construct(**args)) == list(range(12))  # still works
    assert prob.stops


def test_construct_with_a_committed_stop_needs_a_stop() -> None:
    prob = SequencingProblem(((0, 1), (1, 0)), ((0, 1), (1, 0)), 0, 0, (), 0)
    args = {**compile_problem(prob, SequencerParams()), "route": np.zeros(0, dtype=np.int64)}
    with pytest.raises(ValueError, match="fixed=1 needs at least one stop"):
        _lsearch.construct(**args, fixed=1)
    assert _lsearch.construct(**args) == []
    assert _lsearch.construct(**args, method="nearest") == []


def test_no_leak_over_many_calls() -> None:
    import tracemalloc

    _prob, args = _good_args()
    for _ in range(50):
        _lsearch.search(**args, time_limit=0.001)
    tracemalloc.start()
    snap = tracemalloc.take_snapshot()
    for _ in range(2000):
        _lsearch.cost(**args)
        _lsearch.search(**args, time_limit=0, max_iters=2)
        _lsearch.construct(**args, method="insertion in order")
        _lsearch.construct(**args, method="nearest", urgency=0.1)
        _lsearch.construct(**args, method="beam", width=30)
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(snap, "filename"))
    tracemalloc.stop()
    assert grown < 200_000


def test_a_failing_local_search_leaves_the_portfolio_answering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prob = _solomon("C101", 50, 2.0)
    params = SequencerParams(time_limit_s=0.1)
    real = lsearch.compile_problem

    def broken(p: SequencingProblem, q: SequencerParams) -> dict[str, object]:
        args = real(p, q)
        args["distance"] = np.asarray(args["distance"], dtype=np.float64)  # wrong dtype
        return args

    monkeypatch.setattr(lsearch, "compile_problem", broken)
    with pytest.raises(SequencerError, match="dtype int64"):
        LocalSearchSequencer().solve(prob, params)
    r = PortfolioSequencer(primary=LocalSearchSequencer()).solve(prob, params)
    assert prob.is_valid_order(r.order)
    assert r.status in ("fallback", "current")


def test_the_default_portfolio_runs_the_compiled_search() -> None:
    seq = make_sequencer()
    assert isinstance(seq, PortfolioSequencer)
    assert isinstance(seq.primary, LocalSearchSequencer)
    prob = _solomon("RC101", 100, 2.0, committed_next="12")
    params = SequencerParams(time_limit_s=0.2, seed=2)
    t = time.perf_counter()
    r = seq.solve(prob, params)
    assert time.perf_counter() - t < 0.2
    assert prob.is_valid_order(r.order) and r.order[0] == "12"
    assert r.solver in ("lsearch", "greedy", "current")
    assert r.cost <= simulate(prob, prob.current_order).cost(params) + 1e-6
    old = make_sequencer(solver="pyvrp")
    assert isinstance(old, PortfolioSequencer) and old.primary is not None
    assert old.primary.name == "pyvrp"
    with pytest.raises(ValueError, match="unknown solver"):
        make_sequencer(solver="simplex")


def test_the_descent_rule_follows_the_days_windows() -> None:
    from bench.resequence import van_day

    tight = _solomon("R101", 100, 2.0)  # every stop windowed, narrow against the day
    loose = van_day(50, 1)  # half the stops free, the others two hours of twelve
    assert lsearch.window_share(tight) < lsearch.TIGHT_WINDOW_SHARE
    assert lsearch.window_share(loose) > lsearch.TIGHT_WINDOW_SHARE
    free = replace(loose, stops=tuple(replace(s, ready=0, due=2**40) for s in loose.stops))
    assert lsearch.window_share(free) == pytest.approx(1.0)
    assert lsearch.choose_rule(tight, repair=True) == lsearch.RULE_TIGHT
    assert lsearch.choose_rule(tight, repair=False) == lsearch.RULE_TIGHT
    assert lsearch.choose_rule(loose, repair=True) == lsearch.RULE_LOOSE_REPAIR
    assert lsearch.choose_rule(loose, repair=False) == lsearch.RULE_LOOSE
    empty = replace(loose, stops=(), current_order=())
    assert lsearch.window_share(empty) == 1.0


_Call = tuple[list[int], int, float, float, int, int, list[int], tuple[int, int]]


class _Calls(list[_Call]):
    """The spy's record. ``clear()`` starts a new solve: a search still running from the
    one before (a thread past its share of the time, which the solve no longer waits for)
    is not recorded as the new solve's."""

    generation = 0

    def clear(self) -> None:
        self.generation += 1
        super().clear()


def _spy_on_search(
    monkeypatch: pytest.MonkeyPatch, before: Callable[[], object] | None = None
) -> _Calls:
    """Record each call of the compiled search: start, rule, time limit, cost found,
    neighbours, seed, route found, or-opt's longest segments (first descent, after kicks).
    ``before`` runs first in each call."""
    calls = _Calls()
    real = lsearch.search

    def spy(args, route, fixed, seed, time_limit_s, *a, **kw):  # type: ignore[no-untyped-def]
        generation = calls.generation
        if before is not None:
            before()
        out = real(args, route, fixed, seed, time_limit_s, *a, **kw)
        if calls.generation != generation:
            return out
        calls.append(
            (
                list(route),
                kw["rule"],
                time_limit_s,
                out[1],
                a[0],
                seed,
                list(out[0]),
                (kw["segment"], kw["segment_after"]),
            )
        )
        return out

    monkeypatch.setattr(lsearch, "search", spy)
    return calls


def test_a_small_day_screens_several_starts_and_goes_on_from_the_best(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench.resequence import van_day

    prob = van_day(50, 1)  # the driver's order is a sweep that ignores the windows
    params = SequencerParams(time_limit_s=0.06, seed=1)
    built = GreedySequencer(polish=False).solve(prob, params)
    warm = prob.reordered(built.order)
    ev = Evaluator(prob, params)
    driver = ev.indices(prob.current_order)
    calls = _spy_on_search(monkeypatch)
    t = time.perf_counter()
    one = LocalSearchSequencer(threads=1)  # the searches one after another
    r = one.solve(warm, params, repair=False, driver_order=prob.current_order)
    assert time.perf_counter() - t < 0.06 + 0.02
    # the warm start, the driver's order, the greedy's insertion and nearest neighbour
    # (the warm start is one of the last two here, so it is screened once)
    screened = [c[0] for c in calls[:-1]]
    assert screened[:2] == [list(_route(warm)), driver]
    assert _insertion(ev, []) in screened and _nearest_neighbour(ev, [], 0.05) in screened
    assert len(screened) == len({tuple(x) for x in screened}) == 3
    assert {c[1] for c in calls} == {lsearch.RULE_LOOSE}
    assert all(c[2] < 0.06 * lsearch.SCREEN_SHARE + 1e-9 for c in calls[:-1])
    best = min(calls[:-1], key=lambda c: c[3])
    assert calls[-1][2] > 0.06 * 0.4  # the rest of the time, from the best screened route
    assert calls[-1][3] <= best[3]
    assert prob.is_valid_order(r.order) and r.cost <= built.cost + 1e-6
    assert r.cost == pytest.approx(min(c[3] for c in calls))
    # a narrow-window day screens too, and keeps the committed stop first everywhere
    calls.clear()
    tight = _solomon("RC101", 100, 2.0, committed_next="5")
    greedy = GreedySequencer(polish=False).solve(tight, params)
    r = one.solve(
        tight.reordered(greedy.order), params, repair=False, driver_order=tight.current_order
    )
    assert len(calls) >= 3 and {c[1] for c in calls} == {lsearch.RULE_TIGHT}
    assert all(c[0][0] == tight.index["5"] for c in calls) and r.order[0] == "5"
    assert r.cost <= greedy.cost + 1e-6
    # a repair, a larger day or no driver's order: one start
    big = van_day(51, 1)  # wide windows: up to 50 stops
    for kw, p in (
        ({"repair": True, "driver_order": prob.current_order}, warm),
        ({"repair": False}, warm),
        (
            {"repair": False, "driver_order": big.current_order},
            big.reordered(GreedySequencer(polish=False).solve(big, params).order),
        ),
    ):
        calls.clear()
        r = one.solve(p, params, **kw)
        assert len(calls) == 1 and p.is_valid_order(r.order), kw
    assert calls[0][1] == lsearch.RULE_LOOSE
    calls.clear()
    narrow = _solomon("R1_2_1", 200, 2.0)  # narrow windows: up to 100 stops
    greedy = GreedySequencer(polish=False).solve(narrow, params)
    one.solve(
        narrow.reordered(greedy.order), params, repair=False, driver_order=narrow.current_order
    )
    assert len(calls) == 1
    with pytest.raises(TypeError):
        one.solve(prob, params, starts=3)  # type: ignore[call-arg]


def test_two_threads_search_side_by_side_from_the_warm_start_and_a_built_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench.resequence import van_day

    # each call waits at a barrier for the other: run one after the other, they would not
    # pass it (BrokenBarrierError after its timeout fails the test); on a busy
    # machine the low-priority helper may end late, so here it is awaited whatever it takes
    monkeypatch.setattr(lsearch, "HELPER_GRACE_S", 10.0)
    barrier = threading.Barrier(2, timeout=10)
    calls = _spy_on_search(monkeypatch, before=barrier.wait)
    day = van_day(150, 3)  # wide windows, more than 50 stops: no screening
    params = SequencerParams(time_limit_s=0.1, seed=7)
    built = GreedySequencer(polish=False).solve(day, params)
    warm = day.reordered(built.order)
    two = LocalSearchSequencer(threads=2)
    r = two.solve(warm, params, repair=False, driver_order=day.current_order)
    assert len(calls) == 2
    assert sorted(c[5] for c in calls) == [7, 7 + lsearch.THREAD_SEED_STRIDE]
    starts = {c[5]: c[0] for c in calls}
    assert starts[7] == list(_route(warm))  # the first thread: the warm start, the seed given
    # the second: the windowed stops' beam, the others inserted
    args = {**compile_problem(day, params), "route": _route(day), "method": "windows first"}
    assert starts[7 + lsearch.THREAD_SEED_STRIDE] == _lsearch.construct(
        **args, width=lsearch.beam_width(150)
    )
    assert all(c[2] > 0.1 * 0.8 for c in calls)  # both for the whole time
    assert {c[4] for c in calls} == {lsearch.WIDE_NEIGHBOURS}  # a large day of wide windows
    assert r.cost == pytest.approx(min(c[3] for c in calls))
    assert warm.is_valid_order(r.order) and r.cost <= built.cost + 1e-6
    # without it, from the driver's order
    monkeypatch.setattr(lsearch, "WINDOWS_FIRST", False)
    calls.clear()
    two.solve(warm, params, repair=False, driver_order=day.current_order)
    second = {c[5]: c[0] for c in calls}[7 + lsearch.THREAD_SEED_STRIDE]
    assert second == [day.index[s] for s in day.current_order]
    # a repair: both threads from the plan, with their own seeds
    calls.clear()
    r = two.solve(warm, params, repair=True, driver_order=day.current_order)
    assert [c[0] for c in calls] == [list(_route(warm))] * 2
    assert len({c[5] for c in calls}) == 2 and r.cost == pytest.approx(min(c[3] for c in calls))


def test_a_narrow_window_day_goes_on_from_the_beam_searchs_route_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lsearch, "HELPER_GRACE_S", 10.0)  # awaited, on a busy machine too
    calls = _spy_on_search(monkeypatch)
    day = _solomon("R1_2_1", 200, 2.0)  # narrow windows, more than 100 stops: no screening
    params = SequencerParams(time_limit_s=0.1, seed=5)
    warm = day.reordered(GreedySequencer(polish=False).solve(day, params).order)
    args = {**compile_problem(day, params), "route": _route(day), "method": "beam"}
    assert lsearch.beam_width(200) == 50 and lsearch.beam_width(100) == 100
    beam = _lsearch.construct(**args, width=lsearch.beam_width(200))
    two = LocalSearchSequencer(threads=2)
    r = two.solve(warm, params, repair=False, driver_order=day.current_order)
    starts = {c[5]: c[0] for c in calls}
    assert starts[5] == list(_route(warm))  # the first thread: the warm start
    assert starts[5 + lsearch.THREAD_SEED_STRIDE] == beam  # the second: the beam's route
    assert {c[1] for c in calls} == {lsearch.RULE_TIGHT}
    assert r.cost == pytest.approx(min(c[3] for c in calls)) and warm.is_valid_order(r.order)
    # without the beam (and so without windows first) the second goes on from the driver's order
    width_max = lsearch.BEAM_WIDTH_MAX
    monkeypatch.setattr(lsearch, "BEAM_WIDTH_MAX", 0)
    calls.clear()
    two.solve(warm, params, repair=False, driver_order=day.current_order)
    assert {c[5]: c[0] for c in calls}[5 + lsearch.THREAD_SEED_STRIDE] == list(_route(day))
    monkeypatch.setattr(lsearch, "BEAM_WIDTH_MAX", width_max)
    # a small day of narrow windows screens the beam's route among its starts, and keeps
    # the committed stop first in it
    small = _solomon("C201", 100, 2.0, committed_next="9")
    params = SequencerParams(time_limit_s=0.08, seed=1)
    greedy = GreedySequencer(polish=False).solve(small, params)
    args = {**compile_problem(small, params), "route": _route(small), "fixed": 1}
    beam = _lsearch.construct(**args, method="beam", width=lsearch.beam_width(100))
    assert beam[0] == small.index["9"]
    calls.clear()
    r = LocalSearchSequencer(threads=1).solve(
        small.reordered(greedy.order), params, repair=False, driver_order=small.current_order
    )
    assert beam in [c[0] for c in calls[:-1]] and r.order[0] == "9"
    assert r.cost <= greedy.cost + 1e-6
    # a repair builds no beam: the plan is where both threads start
    calls.clear()
    two.solve(warm, SequencerParams(time_limit_s=0.05), repair=True)
    assert [c[0] for c in calls] == [list(_route(warm))] * 2


def test_two_threads_screen_a_small_days_starts_and_go_on_from_the_two_cheapest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench.resequence import van_day

    prob = van_day(50, 1)
    params = SequencerParams(time_limit_s=0.08, seed=2)
    built = GreedySequencer(polish=False).solve(prob, params)
    warm = prob.reordered(built.order)
    # the helper at the usual priority, so that on a busy machine its screens end on time
    # (the priority has its own test below), and awaited whatever it takes
    monkeypatch.setattr(lsearch, "_yield_to_others", lambda: None)
    monkeypatch.setattr(lsearch, "HELPER_GRACE_S", 10.0)
    calls = _spy_on_search(monkeypatch)
    r = LocalSearchSequencer(threads=2).solve(
        warm, params, repair=False, driver_order=prob.current_order
    )
    screened = [c for c in calls if c[2] < 0.08 * lsearch.SCREEN_SHARE + 1e-9]
    going_on = [c for c in calls if c not in screened]
    assert len(screened) == 3 and len({tuple(c[0]) for c in screened}) == 3
    cheapest = sorted(screened, key=lambda c: c[3])[:2]
    assert len(going_on) == 2
    # two screens side by side, then one: the rest is more than half the time
    assert all(c[2] > 0.08 * (1 - 2 * lsearch.SCREEN_SHARE) - 0.02 for c in going_on)
    assert sorted(c[0] for c in going_on) == sorted(c[6] for c in cheapest)
    assert {c[5] for c in going_on} == {2, 2 + lsearch.THREAD_SEED_STRIDE}
    assert r.cost == pytest.approx(min(c[3] for c in calls))
    assert prob.is_valid_order(r.order) and r.cost <= built.cost + 1e-6


def test_helpers_run_at_the_lowest_priority_and_a_late_one_is_not_awaited() -> None:
    seen: dict[int, int] = {}

    def job(k: int, sleep: float) -> int:
        tid = threading.get_native_id()
        seen[k] = os.getpriority(os.PRIO_PROCESS, tid) if sys.platform == "linux" else 0
        time.sleep(sleep)
        return k

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    until = time.perf_counter() + 0.05
    out = lsearch._side_by_side(
        [functools.partial(job, 0, 0.0), functools.partial(job, 1, 1.0)], 2, until
    )
    took = time.perf_counter() - (until - 0.05)
    assert out == [0, None]  # the helper's job outlived the phase: not awaited
    # ...but the interpreter will wait for it at exit (a thread in native code then aborts)
    from edge.sequencer import base

    assert any(t.name == "lsearch-1" and t.is_alive() for t in base._late)
    assert took < 0.05 + lsearch.HELPER_GRACE_S + 0.5
    if sys.platform == "linux":
        assert seen[0] == mine and seen[1] == lsearch.HELPER_NICE
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
    # past the phase, a helper starts nothing: the caller runs every job
    seen.clear()
    out = lsearch._side_by_side([functools.partial(job, k, 0.0) for k in range(4)], 2, 0.0)
    assert out == [0, 1, 2, 3] and set(seen.values()) == {mine}

    # an error in a job is raised once the jobs waited for have ended
    def boom() -> int:
        raise MemoryError("no memory")

    with pytest.raises(MemoryError, match="no memory"):
        lsearch._side_by_side([functools.partial(job, 0, 0.0), boom], 2, time.perf_counter() + 5)


def test_threads_are_checked_and_bounded_by_the_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError, match="threads must be at least 1"):
            LocalSearchSequencer(threads=bad)
    for cpus, want in ((None, 1), (1, 1), (2, min(2, lsearch.THREADS)), (64, lsearch.THREADS)):
        monkeypatch.setattr(lsearch.os, "cpu_count", lambda c=cpus: c)
        assert lsearch.default_threads() == want
    monkeypatch.setattr(lsearch.os, "cpu_count", lambda: 1)
    calls = _spy_on_search(monkeypatch)
    from bench.resequence import van_day

    day = van_day(150, 3)
    params = SequencerParams(time_limit_s=0.03)
    LocalSearchSequencer().solve(day, params, repair=False, driver_order=day.current_order)
    assert len(calls) == 1  # a single CPU: one search


def test_a_thread_that_fails_fails_the_search_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    real = lsearch.search

    def second_fails(args, route, fixed, seed, *a, **kw):  # type: ignore[no-untyped-def]
        if seed != 0:
            raise MemoryError("no memory for the second search")
        return real(args, route, fixed, seed, *a, **kw)

    monkeypatch.setattr(lsearch, "search", second_fails)
    prob = _solomon("R201", 100, 2.0)
    params = SequencerParams(time_limit_s=0.05, seed=0)
    monkeypatch.setattr(lsearch, "HELPER_GRACE_S", 10.0)  # awaited, so its error is seen
    with pytest.raises(SequencerError, match="no memory for the second search"):
        LocalSearchSequencer(threads=2).solve(prob, params)
    # the portfolio answers all the same, with the greedy's route
    r = PortfolioSequencer(primary=LocalSearchSequencer(threads=2)).solve(prob, params)
    assert prob.is_valid_order(r.order)


def test_a_large_loose_day_from_a_poor_order_looks_at_more_neighbours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench.resequence import van_day

    params = SequencerParams(time_limit_s=0.03)
    calls = _spy_on_search(monkeypatch)
    for n, repair, narrow, want in (
        (150, False, False, lsearch.WIDE_NEIGHBOURS),
        (150, True, False, lsearch.NEIGHBOURS),  # a repair
        (100, False, False, lsearch.NEIGHBOURS),  # not large
        (150, False, True, lsearch.NEIGHBOURS),  # narrow windows
    ):
        day = van_day(n, 3)
        if narrow:
            day = _solomon("RC1_2_1", n, 2.0)
        calls.clear()
        r = LocalSearchSequencer(threads=1).solve(day, params, repair=repair)
        assert {c[4] for c in calls} == {want}, (n, repair, narrow)
        assert day.is_valid_order(r.order)
    calls.clear()
    LocalSearchSequencer(neighbours=30, threads=1).solve(van_day(150, 3), params, repair=False)
    assert calls[0][4] == 30  # asked for more: kept


def test_or_opt_moves_single_stops_in_a_repair_and_segments_from_a_poor_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench.resequence import van_day

    params = SequencerParams(time_limit_s=0.03)
    calls = _spy_on_search(monkeypatch)
    mended = (lsearch.REPAIR_SEGMENT, 0)  # single stops throughout
    for day, built in (
        (van_day(60, 3), (lsearch.SEGMENT, 0)),  # wide windows: segments throughout
        (_solomon("RC101", 60, 2.0), (lsearch.SEGMENT, lsearch.TIGHT_SEGMENT_AFTER)),
    ):
        for repair, want in ((True, mended), (False, built)):
            calls.clear()
            r = LocalSearchSequencer(threads=2).solve(
                day, params, repair=repair, driver_order=day.current_order
            )
            assert calls and {c[7] for c in calls} == {want}, (repair, want)
            assert day.is_valid_order(r.order)


def test_the_portfolio_tells_the_search_whether_it_repairs_a_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench.resequence import after_event, van_day

    seen: list[dict[str, object]] = []
    real = LocalSearchSequencer.solve

    def spy(self, problem, params, **kw):  # type: ignore[no-untyped-def]
        seen.append({**kw, "warm": problem.current_order})
        return real(self, problem, params, **kw)

    monkeypatch.setattr(LocalSearchSequencer, "solve", spy)
    day = van_day(100, 2)
    params = SequencerParams(time_limit_s=0.2, seed=0)
    seq = make_sequencer()
    first = seq.solve(day, params)  # from the sweep: the greedy's route is the warm start
    assert seen[-1]["repair"] is False and seen[-1]["driver_order"] == day.current_order
    assert seen[-1]["warm"] != day.current_order
    drifted = after_event(day, first.order, seed=3)  # a good plan that drifted
    r = seq.solve(drifted, params)
    assert seen[-1]["repair"] is True and seen[-1]["warm"] == drifted.current_order
    assert drifted.is_valid_order(r.order)
    assert r.cost <= simulate(drifted, drifted.current_order).cost(params) + 1e-6


def _spy_on_keyword(monkeypatch: pytest.MonkeyPatch, name: str) -> list[float]:
    """Record keyword ``name`` of each call of the compiled search."""
    seen: list[float] = []
    real = lsearch.search

    def spy(*a, **kw):  # type: ignore[no-untyped-def]
        seen.append(kw[name])
        return real(*a, **kw)

    monkeypatch.setattr(lsearch, "search", spy)
    return seen


def test_the_search_keeps_kicked_routes_near_the_best_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sequencer asks for record-to-record acceptance; whatever the share, the answer is
    the best route found, never costlier than the warm start."""
    seen = _spy_on_keyword(monkeypatch, "accept")
    day = _solomon("R101", 60, 2.0)
    r = LocalSearchSequencer(threads=1).solve(day, SequencerParams(time_limit_s=0.03))
    assert seen == [lsearch.ACCEPT] and lsearch.ACCEPT > 0
    assert day.is_valid_order(r.order)
    args = compile_problem(day, SequencerParams())
    warm = _route(day)
    start = _lsearch.cost(**args, route=warm)[0]
    walks = set()
    for accept in (0.0, 0.003, 0.5):
        route, cost, stats = _lsearch.search(
            **args, route=warm, time_limit=0, max_iters=300, accept=accept, seed=1
        )
        assert cost <= start and stats["iterations"] == 300
        assert cost == pytest.approx(_lsearch.cost(**args, route=np.asarray(route))[0])
        walks.add((stats["moves"], cost))
    assert len(walks) == 3  # keeping worse routes changes the walk (same seed)


def test_a_search_may_start_with_a_wider_acceptance_that_narrows_to_accept() -> None:
    """``accept_start``: kicked routes further above the best found are kept at first, the
    share falling to ``accept`` as the run ends. The same seed walks otherwise, and the
    answer is still the best route found, priced exactly, never costlier than the start."""
    from bench.resequence import van_day

    day = van_day(60, 2)
    args = compile_problem(day, SequencerParams())
    warm = _route(day)
    start = _lsearch.cost(**args, route=warm)[0]
    walks = {}
    for accept_start in (-1.0, 0.003, 0.06, 1.0):
        route, cost, stats = _lsearch.search(
            **args,
            route=warm,
            time_limit=0,
            max_iters=200,
            accept=0.003,
            accept_start=accept_start,
            seed=4,
        )
        assert cost <= start and stats["iterations"] == 200
        assert cost == pytest.approx(_lsearch.cost(**args, route=np.asarray(route))[0])
        assert sorted(route) == list(range(len(day.stops)))
        walks[accept_start] = (stats["moves"], stats["evaluations"], cost, tuple(route))
    assert walks[0.003] == walks[-1.0]  # starting at accept: accept throughout
    assert len({walks[-1.0], walks[0.06], walks[1.0]}) == 3  # a wider start walks otherwise
    # by the clock too (no kick count): the walk is the search's, the answer as valid
    route, cost, _ = _lsearch.search(**args, route=warm, time_limit=0.02, accept_start=0.06)
    assert cost <= start and sorted(route) == list(range(len(day.stops)))


def test_the_acceptance_starts_wide_on_small_days_and_on_large_wide_window_days_built_anew(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench.resequence import after_event, van_day

    assert lsearch.ANNEAL_MAX_STOPS == 100
    assert lsearch.ACCEPT_START > lsearch.ACCEPT_START_WIDE > lsearch.ACCEPT > 0
    seen = _spy_on_keyword(monkeypatch, "accept_start")
    monkeypatch.setattr(lsearch, "HELPER_GRACE_S", 10.0)  # every search awaited and seen
    params = SequencerParams(time_limit_s=0.05, seed=2)
    loose, tight = van_day(150, 3), _solomon("RC1_2_1", 150, 2.0)
    for day, repair, want in (
        (van_day(100, 3), False, lsearch.ACCEPT_START),  # up to 100 stops: any day, any call
        (van_day(100, 3), True, lsearch.ACCEPT_START),
        (_solomon("RC101", 60, 2.0), False, lsearch.ACCEPT_START),  # the screened starts too
        (_solomon("RC101", 60, 2.0), True, lsearch.ACCEPT_START),
        (loose, False, lsearch.ACCEPT_START_WIDE),  # larger, wide windows, a poor order
        (after_event(loose, loose.current_order, seed=1), True, -1.0),  # a repair
        (tight, False, -1.0),  # narrow windows
    ):
        seen.clear()
        r = LocalSearchSequencer(threads=2).solve(
            day, params, repair=repair, driver_order=day.current_order
        )
        assert seen and set(seen) == {want}, (len(day.stops), repair, want, seen)
        assert day.is_valid_order(r.order)
        assert (
            lsearch.choose_accept_start(len(day.stops), lsearch.choose_rule(day, repair), repair)
            == want
        )
