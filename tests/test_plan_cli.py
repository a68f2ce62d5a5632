"""``wayline plan``: JSON on success, one-line errors and non-zero exits otherwise."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cloud import plan_cli
from routing import check_route, read_instance
from tests.helpers import DATA_DIR

C101 = DATA_DIR / "solomon" / "C101.txt"
ROOT = Path(__file__).resolve().parents[1]


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="wayline plan")
    plan_cli.configure(parser)
    return plan_cli.run(parser.parse_args(argv))


def test_plans_c101_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([str(C101), "--seconds", "1", "--json", "--seed", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    inst = read_instance(C101)
    assert out["vehicles"] == len(out["routes"]) == 10
    assert sorted(c for r in out["routes"] for c in r) == list(range(1, 101))
    assert out["distance"] == pytest.approx(
        sum(check_route(inst, r).distance for r in out["routes"])
    )
    assert out["distance"] < 829.0 * 1.05


def test_runs_as_a_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cloud.plan_cli", str(C101), "--seconds", "0.5", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["vehicles"] >= 10


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["/no/such/file.txt"], "cannot read"),
        (["BADFORMAT"], "Solomon"),
        ([str(C101), "--seconds", "-2"], "--seconds"),
        ([str(C101), "--seconds", "0"], "--seconds"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if argv[0] == "BADFORMAT":
        bad = tmp_path / "bad.txt"
        bad.write_text("hello\nthis is not an instance\n")
        argv = [str(bad)]
    assert run(argv) != 0
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_unsolvable_instance_says_so_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = C101.read_text().splitlines()
    # customer 1 at (45, 68) due at time 1: unreachable from the depot at (40, 50)
    text = [
        ln
        if ln.split()[:1] != ["1"]
        else "    1      45         68         10          0          1         90"
        for ln in text
    ]
    path = tmp_path / "C101x.txt"
    path.write_text("\n".join(text) + "\n")
    assert run([str(path), "--seconds", "0.5", "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "no complete plan" in captured.err
