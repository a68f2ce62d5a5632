"""The walking skeleton: ``wayline demo`` on a small day, end to end, as a new user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_a_small_day_and_loses_nothing(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "wayline",
            "demo",
            "--vehicles",
            "2",
            "--stops",
            "4",
            "--report",
            str(tmp_path / "report"),
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["delivered"] + summary["failed"] == 8
    assert summary["events_sent"] == summary["events_applied"] > 0
    assert summary["events_lost"] == 0 and summary["events_duplicated"] == 0
    assert summary["events_by_kind"]["telemetry"] > 0
    assert summary["events_by_kind"]["stop_event"] >= 16  # arrived + outcome per stop
    assert "lost / twice     0 / 0" in out.stdout
