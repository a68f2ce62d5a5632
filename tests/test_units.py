"""The service units in ``deploy/`` start what they say.

Each unit's ``ExecStart`` is run as written, with two changes only: the executable is this
environment's ``wayline`` instead of ``/opt/wayline/.venv/bin/wayline``, and ``--config``
names a copy of the shipped example config (``deploy/<role>.toml``) whose paths point into
the test's directory, whose broker is the test's Mosquitto and whose web app listens on a
free loopback port. The process gets the shipped example environment file
(``deploy/<role>.env``), read as systemd reads an ``EnvironmentFile=``, and nothing else of
Wayline's: the settings layer must find what it needs there. The coordinator's example
ships with empty secrets, which the test fills as the file tells an operator to.

The agent is online when its retained ``wayline/v1/{id}/state`` says so on the broker (and,
for the coordinator, its API answers). A unit whose environment file lacks a required
variable exits 2 with one line naming the variable. ``deploy/Containerfile`` runs the cloud
unit's command line (docker cannot run here, so that much is read from the file).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from protocol import decode, state_topic
from tests.helpers import REPO_ROOT, MosquittoBroker, free_port, unique_id

DEPLOY = REPO_ROOT / "deploy"
ROLES = ("cloud", "vehicle", "depot")
INSTALLED_WAYLINE = "/opt/wayline/.venv/bin/wayline"
HUB_ID = "cloud"
ONLINE_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
#: Keys of the example configs the test points elsewhere; every other line is kept as is.
REWRITTEN = ("broker", "db", "http")


# --- reading what systemd reads ----------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """The parts of a ``[Service]`` section that decide what runs."""

    exec_start: list[str]
    environment_file: Path
    environment_file_optional: bool


def read_unit(role: str) -> Unit:
    """``deploy/wayline-<role>.service``: its ExecStart (split as systemd splits it) and its
    EnvironmentFile (a leading ``-`` makes a missing file acceptable)."""
    section = ""
    values: dict[str, str] = {}
    for raw in (DEPLOY / f"wayline-{role}.service").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        key, _, value = line.partition("=")
        if section == "[Service]":
            assert key not in values, f"{key} twice in wayline-{role}.service"
            values[key] = value
    env_file = values["EnvironmentFile"]
    return Unit(
        exec_start=shlex.split(values["ExecStart"]),
        environment_file=Path(env_file.removeprefix("-")),
        environment_file_optional=env_file.startswith("-"),
    )


def read_environment_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines as systemd's ``EnvironmentFile=`` reads them: blank lines and
    lines starting with ``#`` or ``;`` are skipped, whitespace around the value dropped,
    and one pair of enclosing quotes removed."""
    found: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()), raw
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[key.strip()] = value
    return found


def example_of(installed: Path) -> Path:
    """The example in deploy/ of a file the unit reads from /etc/wayline/."""
    assert installed.parent == Path("/etc/wayline"), installed
    example = DEPLOY / installed.name
    assert example.is_file(), f"the unit reads {installed}, but deploy/ has no {installed.name}"
    return example


def config_path(unit: Unit) -> Path:
    argv = unit.exec_start
    assert argv.count("--config") == 1, argv
    return Path(argv[argv.index("--config") + 1])


# --- running a unit's command line -------------------------------------------------------------


@dataclass
class Prepared:
    """A unit's command line and environment, pointed at the test's directory and broker."""

    argv: list[str]
    env: dict[str, str]
    config: Path
    db: Path
    http_port: int


def prepare(role: str, tmp_path: Path, broker_url: str) -> Prepared:
    unit = read_unit(role)
    example = example_of(config_path(unit))
    port = free_port()
    db = tmp_path / f"{role}.db"
    new = {"broker": broker_url, "db": str(db), "http": f"127.0.0.1:{port}"}
    lines, seen = [], set()
    for line in example.read_text().splitlines():
        m = re.match(r"^([a-z_]+)\s*=", line)
        if m and m.group(1) in new:
            lines.append(f"{m.group(1)} = {json.dumps(new[m.group(1)])}")
            seen.add(m.group(1))
        else:
            assert not re.match(r'^[a-z_]+\s*=\s*"/', line), f"{example.name}: path left: {line}"
            lines.append(line)
    assert seen == set(REWRITTEN), f"{example.name} sets {sorted(seen)} of {REWRITTEN}"
    config = tmp_path / example.name
    config.write_text("\n".join(lines) + "\n")

    argv = list(unit.exec_start)
    assert argv[0] == INSTALLED_WAYLINE, argv
    argv[0] = str(Path(sys.executable).parent / "wayline")
    argv[argv.index("--config") + 1] = str(config)
    assert argv[1] == role

    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("WAYLINE_")}
    env |= read_environment_file(example_of(unit.environment_file))
    return Prepared(argv, env, config, db, port)


@contextmanager
def running(p: Prepared, cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The unit's process; SIGTERM (what systemd sends) at the end, SIGKILL if it lingers."""
    with log.open("wb") as out:
        proc = subprocess.Popen(p.argv, cwd=cwd, env=p.env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)


class StateWatch:
    """Follows a device's retained state on the broker: online/offline since ``since_ms``."""

    def __init__(self, broker: MosquittoBroker, device: str, since_ms: int) -> None:
        self.since_ms = since_ms
        self.online = threading.Event()
        self.offline = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=unique_id("watch"), protocol=mqtt.MQTTv5
        )
        topic = state_topic(device)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        body = decode(bytes(msg.payload)).body
        if getattr(body, "at", 0) < self.since_ms:
            return  # a state from before this start
        if getattr(body, "status", None) == "online":
            self.online.set()
        elif getattr(body, "status", None) == "offline":
            self.offline.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def web_app_answers(role: str, port: int) -> bool:
    """The coordinator's OpenAPI page, the tablet's or the terminal's first page."""
    path = "/docs" if role == "cloud" else "/"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def fill_secrets(env: dict[str, str]) -> list[str]:
    """Random values for the empty secrets, as cloud.env tells an operator to make them."""
    names = [k for k in env if k.endswith(("_SECRET", "_PEPPER"))]
    for name in names:
        assert env[name] == "", f"deploy/cloud.env ships a value for {name}"
        env[name] = secrets.token_hex(32)
    return names


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.broker
@pytest.mark.e2e
@pytest.mark.parametrize("role", ROLES)
def test_the_units_command_line_brings_its_agent_online(
    role: str, broker: MosquittoBroker, tmp_path: Path
) -> None:
    p = prepare(role, tmp_path, broker.url)
    if role == "cloud":
        assert fill_secrets(p.env) == [
            "WAYLINE_SESSION_SECRET",
            "WAYLINE_TOKEN_PEPPER",
            "WAYLINE_WEBHOOK_SECRET",
        ]
        device = HUB_ID
    else:
        device = p.env["WAYLINE_ID"]
    log = tmp_path / f"{role}.log"
    watch = StateWatch(broker, device, int(time.time() * 1000) - 1000)
    try:
        with running(p, tmp_path, log) as proc:
            deadline = time.monotonic() + ONLINE_TIMEOUT_S
            while not (watch.online.is_set() and web_app_answers(role, p.http_port)):
                if proc.poll() is not None:
                    pytest.fail(f"{role} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"{role} not online in {ONLINE_TIMEOUT_S} s:\n{log.read_text()}")
                time.sleep(0.05)
            assert p.db.exists()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(STOP_TIMEOUT_S) == 0, log.read_text()[-3000:]
        assert watch.offline.wait(10), "the agent said offline as it stopped"
    finally:
        watch.close()
    text = log.read_text()
    assert "Traceback" not in text and " ERROR " not in text, text[-3000:]


@pytest.mark.parametrize(
    ("role", "drop", "variable"),
    [
        ("vehicle", "WAYLINE_ID", "WAYLINE_ID"),
        ("depot", "WAYLINE_ID", "WAYLINE_ID"),
        ("cloud", None, "WAYLINE_SESSION_SECRET"),  # as shipped: the secrets are empty
    ],
)
def test_an_environment_file_without_a_required_variable_is_one_line(
    role: str, drop: str | None, variable: str, tmp_path: Path
) -> None:
    p = prepare(role, tmp_path, "mqtt://127.0.0.1:1")
    if drop is not None:
        del p.env[drop]
    log = tmp_path / f"{role}.log"
    with running(p, tmp_path, log) as proc:
        assert proc.wait(60) == 2
    lines = log.read_text().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"wayline {role}: error: ") and variable in lines[0], lines[0]
    assert not p.db.exists(), "nothing was started"


def test_every_unit_reads_an_optional_environment_file_that_deploy_ships() -> None:
    for role in ROLES:
        unit = read_unit(role)
        assert unit.environment_file_optional, f"{role}: a missing file is the settings' to name"
        assert example_of(unit.environment_file).name == f"{role}.env"
        assert example_of(config_path(unit)).name == f"{role}.toml"
        assert unit.exec_start[:2] == [INSTALLED_WAYLINE, role]


def containerfile_command() -> list[str]:
    """ENTRYPOINT then CMD of deploy/Containerfile's final stage (exec form only)."""
    entrypoint: list[str] = []
    cmd: list[str] = []
    for line in (DEPLOY / "Containerfile").read_text().splitlines():
        if line.startswith("FROM "):
            entrypoint, cmd = [], []
        elif line.startswith("ENTRYPOINT "):
            entrypoint = json.loads(line.removeprefix("ENTRYPOINT "))
        elif line.startswith("CMD "):
            cmd = json.loads(line.removeprefix("CMD "))
    return entrypoint + cmd


def test_the_container_runs_the_cloud_units_command_line() -> None:
    assert containerfile_command() == read_unit("cloud").exec_start
    text = (DEPLOY / "Containerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert bases and all(
        re.fullmatch(r"python:3\.1[1-9]-slim-bookworm", b.split()[0]) for b in bases
    )
    assert "'/src[cloud]'" in text  # the coordinator's role, nothing of the demo
    assert f"COPY deploy/cloud.toml {config_path(read_unit('cloud'))}" in text
