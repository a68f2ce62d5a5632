"""The ``wayline`` command as a user meets it: help, bad flags and settings, an unreachable
broker, ``--version``, JSON logs, and a parser that imports nothing it does not need."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import MosquittoBroker, free_port
from tests.paired import PAIRING_CODE, pair
from wayline.cli import OUR_ERRORS, build_parser, is_ours
from wayline.parser import DELEGATED, Delegated

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


@pytest.mark.parametrize(
    "name", ["cloud", "vehicle", "depot", "resequence", "plan", "audit", "admin", "demo"]
)
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
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "wayline vehicle: error: --broker: broker URL must look like "
        "mqtt://127.0.0.1:1883 or mqtts://USER:PASSWORD@broker.example.com:8883, got 'http://x'"
    ]
    assert not (tmp_path / "v.db").exists()


def test_bad_vehicle_id_is_one_line(tmp_path: Path) -> None:
    out = wayline(
        "vehicle", "--id", "van/1", "--broker", "mqtt://127.0.0.1:1", "--db", str(tmp_path / "v.db")
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wayline vehicle: error: --id: ")
    assert "van/1" in lines[0]
    assert not (tmp_path / "v.db").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rebalance_evry = 5\n", "{file}: unknown setting rebalance_evry (did you mean "),
        ('rebalance_every = "soon"\n', "rebalance_every in {file}: Input should be a valid number"),
        ("plan_iterations = 0\n", "plan_iterations in {file}: Input should be greater than"),
        ("broker = mqtt\n", "{file}: not valid TOML: "),
        ("", "missing setting broker: give --broker, WAYLINE_BROKER or broker in {file}"),
    ],
    ids=["unknown key", "wrong type", "out of range", "not TOML", "missing"],
)
def test_a_bad_config_file_is_one_line_and_starts_nothing(
    tmp_path: Path, text: str, expected: str
) -> None:
    config = tmp_path / "cloud.toml"
    db = tmp_path / "c.db"
    broker = "" if expected.startswith("missing") else 'broker = "mqtt://127.0.0.1:1"\n'
    config.write_text(f'{broker}db = "{db}"\n{text}')
    out = wayline("cloud", "--config", str(config))
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("wayline cloud: error: " + expected.format(file=config))
    assert not db.exists()


def test_wayline_config_names_the_file(tmp_path: Path) -> None:
    import os

    config = tmp_path / "vehicle.toml"
    config.write_text('broker = "http://nowhere"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYLINE_")}
    env |= {"WAYLINE_CONFIG": str(config), "WAYLINE_ID": "van-1", "WAYLINE_DB": "v.db"}
    out = subprocess.run(
        [sys.executable, "-m", "wayline", "vehicle"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env | {"PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 2
    assert out.stderr.startswith(f"wayline vehicle: error: broker in {config}: broker URL")


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
        env={**os.environ, "WAYLINE_PAIRING_CODE": PAIRING_CODE},
    )
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            try:
                auth = pair(f"http://127.0.0.1:{http}", timeout=2)  # as the driver's tablet
                req = urllib.request.Request(f"http://127.0.0.1:{http}/api/status", headers=auth)
                with urllib.request.urlopen(req, timeout=2) as r:
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
                with urllib.request.urlopen(req, timeout=2) as r:
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
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "wayline cloud: error: unsafe or invalid settings: WAYLINE_SESSION_SECRET is empty; "
        "set a random value of at least 32 characters "
        "(only WAYLINE_ENV=development may leave it empty)"
    ]
    assert not (tmp_path / "c.db").exists()


# --- --version, --log-format ---------------------------------------------------------------


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    out = wayline("--version")
    assert out.returncode == 0
    assert out.stdout == f"wayline {version('wayline')}\n"


def test_json_log_lines(tmp_path: Path) -> None:
    """Every line the agent logs is one JSON object with time, level, logger, message."""
    import json

    dead = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wayline",
            "--log-format",
            "json",
            "vehicle",
            "--id",
            "van-json",
            "--broker",
            f"mqtt://127.0.0.1:{dead}",
            "--db",
            str(tmp_path / "v.db"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(4)  # started, and told that the broker is unreachable
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    lines = [json.loads(line) for line in err.splitlines()]
    assert lines, err
    for line in lines:
        assert set(line) >= {"time", "level", "logger", "message"}, line
        assert line["time"].endswith("+00:00")
    assert any(ln["logger"] == "wayline" and "van-json" in ln["message"] for ln in lines)
    assert any(ln["logger"] == "sync.mqtt" and "unreachable" in ln["message"] for ln in lines)


def test_a_json_line_carries_the_exception() -> None:
    import json
    import logging

    from wayline.logs import JsonFormatter

    try:
        raise RuntimeError("the broker said no")
    except RuntimeError:
        record = logging.getLogger("wayline.test").makeRecord(
            "wayline.test", logging.ERROR, __file__, 1, "failed %s", ("once",), sys.exc_info()
        )
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "ERROR" and line["message"] == "failed once"
    assert line["exception"].startswith("Traceback") and "the broker said no" in line["exception"]
    assert "\n" not in JsonFormatter().format(record)


def test_a_bad_log_format_variable_is_one_line(tmp_path: Path) -> None:
    import os

    env = dict(os.environ, WAYLINE_LOG_FORMAT="xml")
    out = subprocess.run(
        [sys.executable, "-m", "wayline", "audit", "list", "--db", str(tmp_path / "none.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 2
    assert (
        out.stderr == "wayline audit: error: WAYLINE_LOG_FORMAT: expected text or json, got 'xml'\n"
    )


# --- the parser imports nothing heavy --------------------------------------------------------

#: What building the parser, or ``--help``, must not load: the coordinator, the simulator,
#: the solvers and the data and plotting libraries (the ones the issue names), and more:
#: none of our packages and no web or validation library is needed to parse arguments.
NEVER_FOR_THE_PARSER = {
    "cloud",
    "firmware_sim",
    "ortools",
    "pyvrp",
    "vroom",
    "pandas",
    "matplotlib",
    "edge",
    "sync",
    "protocol",
    "routing",
    "pydantic",
    "pydantic_settings",
    "uvicorn",
    "fastapi",
}


def imported_modules(importtime_log: str) -> set[str]:
    """Modules named by ``python -X importtime`` output."""
    return {
        line.split("|", 2)[2].strip()
        for line in importtime_log.splitlines()
        if line.startswith("import time:") and not line.rstrip().endswith("imported package")
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "wayline", "--help"],
        ["-m", "wayline", "vehicle", "--help"],
        ["-m", "wayline", "cloud", "--help"],
        ["-c", "from wayline.cli import build_parser; build_parser().format_help()"],
    ],
    ids=["wayline --help", "wayline vehicle --help", "wayline cloud --help", "build_parser"],
)
def test_the_parser_imports_no_package_of_ours_nor_a_heavy_library(argv: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    modules = imported_modules(out.stderr)
    assert "wayline.parser" in modules  # the log is read at all
    loaded = sorted({m for m in modules if m.split(".")[0] in NEVER_FOR_THE_PARSER})
    assert not loaded, f"{' '.join(argv)} imported {loaded}"


def subparser(parser: argparse.ArgumentParser, name: str) -> Any:
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices[name]  # type: ignore[index]


def test_a_delegated_command_is_configured_only_when_it_runs() -> None:
    parser = build_parser()
    for name in DELEGATED:
        assert not subparser(parser, name).configured, f"{name} configured by the build"
    parser.parse_args(["audit", "list", "--db", "x.db"])
    assert subparser(parser, "audit").configured
    assert not subparser(parser, "plan").configured


def test_a_command_whose_package_is_not_installed_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    subparser(parser, "plan").delegated = Delegated("cloud.not_installed_here", "x", "cloud")
    with pytest.raises(SystemExit) as done:
        parser.parse_args(["plan", "--help"])
    assert done.value.code == 2
    assert capsys.readouterr().err == (
        "wayline plan: error: this installation lacks cloud.not_installed_here "
        "(the command needs wayline[cloud])\n"
    )


@pytest.mark.parametrize("name", sorted(OUR_ERRORS))
def test_the_errors_main_reports_in_one_line_exist(name: str) -> None:
    """main() recognises our errors by their base's dotted name; each must still exist."""
    import importlib

    module, _, cls = name.rpartition(".")
    error = getattr(importlib.import_module(module), cls)
    assert isinstance(error, type) and issubclass(error, Exception)
    assert is_ours(type("Sub", (error,), {})("x"))
    assert not is_ours(RuntimeError("x"))
