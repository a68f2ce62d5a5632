"""The ``wayline`` command as a user meets it: help, bad flags, an unreachable broker."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import MosquittoBroker, free_port

ROOT = Path(__file__).resolve().parents[1]


def wayline(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wayline", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def subcommands() -> list[str]:
    from wayline.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)  # type: ignore[arg-type]


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    for name in subcommands():
        assert re.search(rf"`wayline {name}\b", table), f"wayline {name} is not in README"


@pytest.mark.parametrize("name", subcommands())
def test_help(name: str) -> None:
    out = wayline(name, "--help")
    assert out.returncode == 0
    assert out.stdout.startswith(f"usage: wayline {name}")


@pytest.mark.parametrize("name", ["cloud", "vehicle", "resequence", "plan", "demo"])
def test_bad_flag_is_one_line(name: str) -> None:
    out = wayline(name, "--no-such-flag")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "error" in lines[0] and "Traceback" not in out.stderr


def test_bad_broker_url_is_one_line(tmp_path: Path) -> None:
    out = wayline(
        "vehicle", "--id", "van-1", "--broker", "http://x", "--db", str(tmp_path / "v.db")
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith("wayline vehicle: error: broker URL")
    assert "Traceback" not in out.stderr


def test_bad_vehicle_id_is_one_line(tmp_path: Path) -> None:
    out = wayline(
        "vehicle", "--id", "van/1", "--broker", "mqtt://127.0.0.1:1", "--db", str(tmp_path / "v.db")
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "van/1" in out.stderr


def test_unreachable_broker_is_reported_once_and_the_van_keeps_working(tmp_path: Path) -> None:
    """No broker at all: one line about it, retries with backoff, the tablet still answers."""
    import json
    import urllib.request

    http = free_port()
    dead = free_port()  # nothing listens here
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wayline",
            "vehicle",
            "--id",
            "van-offline",
            "--broker",
            f"mqtt://127.0.0.1:{dead}",
            "--db",
            str(tmp_path / "v.db"),
            "--http",
            f"127.0.0.1:{http}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/api/status", timeout=2) as r:
                    status = json.load(r)
                break
            except OSError:
                time.sleep(0.2)
        assert status is not None and status["connected"] is False
        time.sleep(3)  # several reconnect attempts
        with MosquittoBroker(tmp_path / "late-broker", port=dead):  # the broker appears
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not status["connected"]:
                time.sleep(0.3)
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/api/status", timeout=2) as r:
                    status = json.load(r)
            assert status["connected"] is True, "the van retried and connected by itself"
            proc.terminate()
            _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.communicate(timeout=20)
    outage = [ln for ln in err.splitlines() if "sync.mqtt" in ln and "unreachable" in ln]
    assert len(outage) == 1, err
    assert "unreachable" in outage[0] and "retrying with backoff" in outage[0]
    assert "Traceback" not in err


def test_a_production_cloud_refuses_default_secrets(tmp_path: Path) -> None:
    """Without WAYLINE_ENV=development the coordinator will not start on default secrets."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYLINE_")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "wayline",
            "cloud",
            "--broker",
            "mqtt://127.0.0.1:1",
            "--db",
            str(tmp_path / "c.db"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("wayline cloud: error: unsafe or invalid settings"), out.stderr
    assert "Traceback" not in out.stderr
