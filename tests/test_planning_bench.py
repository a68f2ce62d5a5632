"""The planner benchmark's CSV survives being stopped: ``--resume`` carries on from it."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pytest

import bench.plan as bench_plan
from bench.plan_peers import PeerRun
from routing import Instance


def _one_route_each(inst: Instance, seconds: float, seed: int) -> PeerRun:
    del seconds, seed
    return PeerRun([list(range(1, inst.size + 1))], 0.0, "one route")


def _args(path: Path, seconds: int) -> argparse.Namespace:
    return argparse.Namespace(
        csv=str(path), resume=True, instances=["C101"], seconds=[seconds], solvers=["probe"], seed=0
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    calls: list[float] = []

    def peer(inst: Instance, seconds: float, seed: int) -> PeerRun:
        calls.append(seconds)
        return _one_route_each(inst, seconds, seed)

    monkeypatch.setitem(bench_plan.PEERS, "probe", peer)
    return calls


def test_resume_from_a_file_stopped_before_its_first_row(tmp_path: Path, probe: list[float]):
    path = tmp_path / "run.csv"
    path.write_text("")  # the run was stopped before its first row
    bench_plan.run_all(_args(path, 1))
    rows = _rows(path)
    assert [(r["instance"], r["seconds"], r["solver"]) for r in rows] == [("C101", "1", "probe")]
    assert rows[0]["vehicles"] == "1" and rows[0]["feasible"] == "False"  # capacity 200 < load


def test_resume_skips_rows_done_and_appends_the_rest(tmp_path: Path, probe: list[float]):
    path = tmp_path / "run.csv"
    bench_plan.run_all(_args(path, 1))
    bench_plan.run_all(_args(path, 1))  # nothing left to do
    assert probe == [1.0]
    bench_plan.run_all(_args(path, 2))
    assert probe == [1.0, 2.0]
    assert [r["seconds"] for r in _rows(path)] == ["1", "2"]
    assert path.read_text().startswith(",".join(bench_plan.FIELDS) + "\n")


def test_quality_is_compared_where_both_reach_the_bks_fleet(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bks = bench_plan.load_bks()
    c101, r101 = bks["C101"], bks["R101"]

    def row(name: str, solver: str, k: int, d: float, ok: bool = True) -> dict[str, str]:
        return {
            "instance": name,
            "seconds": "10",
            "solver": solver,
            "vehicles": str(k),
            "distance": f"{d:.2f}",
            "feasible": str(ok),
        }

    rows = [
        row("C101", "wayline", c101[0], c101[1] * 1.01),
        row("C101", "pyvrp", c101[0], c101[1] * 1.03),
        row("R101", "wayline", r101[0], r101[1] * 1.02),  # pyvrp one vehicle more: left out
        row("R101", "pyvrp", r101[0] + 1, r101[1]),
    ]
    bench_plan.report(rows, [10])
    out = capsys.readouterr().out
    assert "wayline vs pyvrp: wins 2, losses 0, ties 0" in out
    assert "on the 1 where both reach the BKS fleet, mean gap: wayline 1.00%, pyvrp 3.00%" in out
