"""``wayline resequence``: configure/run directly and as ``python -m edge.resequence_cli``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge import resequence_cli
from routing import check_route, read_instance
from tests.helpers import DATA_DIR

C101 = str(DATA_DIR / "solomon" / "C101.txt")
ROOT = Path(__file__).resolve().parent.parent


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="wayline resequence")
    resequence_cli.configure(parser)
    return resequence_cli.run(parser.parse_args(argv))


def test_json_output_matches_check_route(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run([C101, "--stops", "40", "--seconds", "0.2", "--json", "--seed", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"order", "distance", "lateness", "seconds"}
    assert sorted(out["order"]) == list(range(1, 41))
    check = check_route(read_instance(C101), out["order"])
    assert out["distance"] == check.distance
    assert out["lateness"] == check.lateness
    assert 0 < out["seconds"] < 0.5
    # one search instead of two: a route all the same
    asked: list[int | None] = []
    real = resequence_cli.make_sequencer

    def spy(threads: int | None = None) -> object:
        asked.append(threads)
        return real(threads=threads)

    monkeypatch.setattr(resequence_cli, "make_sequencer", spy)
    assert _run([C101, "--stops", "40", "--seconds", "0.1", "--json", "--threads", "1"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert sorted(one["order"]) == list(range(1, 41))
    assert one["distance"] == check_route(read_instance(C101), one["order"]).distance
    assert asked == [1]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["/no/such/file.txt", "--stops", "5"], "cannot read"),
        ([C101, "--stops", "0"], "--stops"),
        ([C101, "--stops", "101"], "--stops"),
        ([C101, "--stops", "5", "--seconds", "-1"], "--seconds"),
        ([C101, "--stops", "5", "--threads", "0"], "--threads"),
    ],
)
def test_bad_input_is_one_line_on_stderr(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run([*argv, "--json"]) != 0
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_not_solomon_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("hello\nthis is not an instance\n")
    assert _run([str(bad), "--stops", "3", "--json"]) != 0
    assert "Traceback" not in capsys.readouterr().err


def test_module_entry_point() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.resequence_cli",
            C101,
            "--stops",
            "12",
            "--seconds",
            "0.1",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(done.stdout)["order"]) == list(range(1, 13))
    bad = subprocess.run(
        [sys.executable, "-m", "edge.resequence_cli", "/no/file", "--stops", "3", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
