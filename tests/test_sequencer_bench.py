"""The re-sequencer benchmark's reference cache and its days after an event."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bench.resequence import References, after_event, fingerprint, van_day
from edge.sequencer import GreedySequencer, SequencerParams, simulate

PARAMS = SequencerParams(time_limit_s=0.05)


def test_references_are_cached_as_orders_and_re_simulated(tmp_path: Path) -> None:
    prob = van_day(20, seed=3)
    path = tmp_path / "refs.json"
    refs = References(path, PARAMS)
    runs = ("greedy", "other")
    assert refs.load("20:van3", prob, 30.0, runs) == ["greedy", "other"]  # nothing cached
    r = GreedySequencer().solve(prob, PARAMS)
    refs.offer("20:van3", prob, r, "greedy", 30.0)
    refs.save()

    again = References(path, PARAMS)
    assert again.load("20:van3", prob, 30.0, runs) == ["other"]  # only the run it lacks
    assert again.cost["20:van3"] == simulate(prob, r.order).cost(PARAMS)
    assert again.order("20:van3") == r.order
    assert again.load("20:van3", prob, 60.0, runs) == ["greedy", "other"]  # longer runs asked
    worse = replace(r, cost=r.cost + 1, order=prob.current_order)
    again.offer("20:van3", prob, worse, "other", 30.0)  # made, though not the best
    assert again.load("20:van3", prob, 30.0, runs) == []
    assert again.order("20:van3") == r.order
    other = replace(prob, start_time=prob.start_time + 600)
    again.save()

    # a stored cost is never trusted: the order is simulated again
    data = json.loads(path.read_text())
    data["20:van3"]["cost"] = 1.0
    path.write_text(json.dumps(data))
    third = References(path, PARAMS)
    assert third.load("20:van3", prob, 30.0, runs) == []
    assert third.cost["20:van3"] == simulate(prob, r.order).cost(PARAMS)

    # the same name for another problem: the stale entry is dropped, every run is due
    other = replace(prob, start_time=prob.start_time + 600)
    assert third.load("20:van3", other, 30.0, runs) == list(runs)
    third.save()
    assert "20:van3" not in json.loads(path.read_text())


def test_only_a_cheaper_route_replaces_a_reference(tmp_path: Path) -> None:
    prob = van_day(20, seed=3)
    refs = References(tmp_path / "refs.json", PARAMS)
    good = GreedySequencer().solve(prob, PARAMS)
    bad = replace(good, cost=good.cost + 1, order=prob.current_order)
    refs.offer("k", prob, good, "greedy", 30.0)
    refs.offer("k", prob, bad, "worse", 0.0)
    assert refs.by["k"] == "greedy"
    assert refs.order("k") == good.order
    better = replace(good, cost=good.cost - 1)
    refs.offer("k", prob, better, "short run", 0.0)
    assert refs.by["k"] == "short run"
    refs.save()
    stored = json.loads((tmp_path / "refs.json").read_text())["k"]
    assert stored["runs"] == {"greedy": 30.0}  # short runs are not long runs made


def test_a_day_after_an_event_starts_late_from_the_plan() -> None:
    prob = van_day(50, seed=1)
    plan = GreedySequencer().solve(prob, PARAMS).order
    ev = after_event(prob, plan, seed=50)
    horizon = prob.shift_end - prob.start_time  # type: ignore[operator]
    assert ev.current_order == plan
    assert ev.start_time == prob.start_time + round(0.02 * horizon)
    moved = [(a, b) for a, b in zip(prob.stops, ev.stops, strict=True) if a != b]
    assert len(moved) == 3
    for a, b in moved:
        assert a.due - a.ready < horizon // 2  # only windowed stops move
        assert (b.ready - a.ready, b.due - a.due) == (round(0.05 * horizon),) * 2
    assert fingerprint(ev) != fingerprint(prob)
    assert after_event(prob, plan, seed=50) == ev  # seeded


def test_an_exploratory_run_narrows_to_some_days_and_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.resequence import main, session3_default

    refs = tmp_path / "refs.json"
    rows = "default (portfolio),default on one thread,session 3 default"
    argv = ["--days", "50:van2", "--sequencers", rows, "--long", "0.2", "--repeats", "1"]
    assert main([*argv, "--refs", str(refs)]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| van day")]
    assert len(table) == 3, out  # one day, three rows, no other family
    assert {line.split(" | ")[3] for line in table} == set(rows.split(","))
    assert all(line.split(" | ")[10] == "0" for line in table)  # no route missing
    stored = json.loads(refs.read_text())
    assert list(stored) == ["50:van2"]
    # four long runs: OR-Tools, PyVRP from the driver's order and from the greedy's route,
    # and our own search
    assert set(stored["50:van2"]["runs"]) == {
        "ortools",
        "pyvrp",
        "pyvrp from the greedy",
        "wayline search",
    }
    old = session3_default()
    assert old.primary is not None and getattr(old.primary, "takes_starts", False)
    assert not getattr(old.fallback, "compiled", True)  # the greedy's starts in Python
    assert old.target_s == 0.08  # at session 3's aim
    for bad in (["--days", "50:nowhere"], ["--sequencers", "simplex"]):
        with pytest.raises(SystemExit):
            main([*argv[:4], *bad, "--long", "0.2", "--refs", str(refs)])
