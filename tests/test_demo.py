"""``wayline demo`` on a short seeded disrupted day: the report's figures and its files.

Small fleet, high speed. Every goal of the disrupted day is asserted from ``summary.json``:
nothing lost or applied twice with power cuts and a dead zone in play, on-time rate and cost
per delivered order better than both baselines, at least 95% of exceptions resolved without
a person (and what the policy resolved carried out). A power cut during a delivery losing
nothing is tested on its own in ``test_hardware_power.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

ROOT = Path(__file__).resolve().parents[1]
FIELDS = [
    "orders",
    "delivered",
    "failed",
    "on_time_rate",
    "cost",
    "km",
    "events_sent",
    "events_applied",
    "events_lost",
    "events_duplicated",
    "exceptions_total",
    "exceptions_auto_resolved",
    "exceptions_escalated",
    "notifications_sent",
    "disconnections",
    "max_offline_s",
    "power_cuts",
]


def test_demo_day_reports_its_goals(tmp_path: Path) -> None:
    report = tmp_path / "report"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "wayline",
            "demo",
            "--vehicles",
            "2",
            "--speed",
            "400",
            "--seed",
            "7",
            "--headless",
            "--report",
            str(report),
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    s = json.loads((report / "summary.json").read_text())
    for key in FIELDS:
        assert key in s, key
    for base in ("baseline_static", "baseline_zones"):
        for key in ("orders", "delivered", "failed", "on_time_rate", "cost", "km"):
            assert key in s[base]
        assert s[base]["orders"] == s["orders"]
    assert s["events_sent"] == s["events_applied"] > 0
    assert s["events_lost"] == 0 and s["events_duplicated"] == 0
    assert s["power_cuts"] >= 2
    assert s["outboxes_drained"]
    assert s["delivered"] > 0
    assert s["exceptions_total"] == s["exceptions_auto_resolved"] + s["exceptions_escalated"]
    # The goals of the disrupted day, asserted from summary.json.
    for base in ("baseline_static", "baseline_zones"):
        b = s[base]
        assert s["on_time_rate"] > b["on_time_rate"], (base, s["on_time_rate"], b["on_time_rate"])
        assert s["cost"] / s["delivered"] < b["cost"] / max(b["delivered"], 1), base
    assert s["exceptions_total"] > 0
    assert s["exceptions_source"].startswith("coordinator triage")
    share = s["exceptions_auto_resolved"] / s["exceptions_total"]
    assert share >= 0.95, (share, s["exceptions_by_policy_action"])
    goal = next(g for g in s["goals"] if "person" in g["goal"] or "exception" in g["goal"])
    assert goal["met"] is True
    # what the policy resolved was carried out: one action per incident, none failed, and
    # all but those the last minutes queued done (or found nothing left to do)
    actions = s["exception_actions"]
    assert actions, "no exception was carried out"
    by_status: dict[str, int] = {}
    for per_option in actions.values():
        for status, n in per_option.items():
            by_status[status] = by_status.get(status, 0) + n
    assert "failed" not in by_status, actions
    assert sum(by_status.values()) >= s["exceptions_auto_resolved"]
    finished = by_status.get("done", 0) + by_status.get("skipped", 0)
    assert finished >= 0.9 * sum(by_status.values()), actions
    # customer messages are the cloud's own, as sent
    assert s["notifications_source"].startswith("cloud notifications table")
    assert s["notifications_sent"] > 0
    assert {g["goal"] for g in s["goals"]} and all(isinstance(g["met"], bool) for g in s["goals"])
    assert s["learning"]["with_hygiene"]["mae_s"] < s["learning"]["without_hygiene"]["mae_s"]
    for name in ("routes", "on_time", "exceptions", "notifications", "offline", "eta_learning"):
        assert (report / f"{name}.png").stat().st_size > 1000
    assert "Wayline against the baselines" in (report / "report.html").read_text()
    assert "lost / twice 0 / 0" in out.stdout
    for log in (tmp_path / "work").glob("*.log"):  # a logged ERROR in any process fails
        errors = [
            line for line in log.read_text(errors="replace").splitlines() if " ERROR " in line
        ]
        assert not errors, f"{log.name}: {errors[:3]}"
