"""The processes of a demo day: broker, cloud coordinator, depot sorter and van gateways.

Every server listens on 127.0.0.1 only. :class:`DayProcesses` starts them in order, knows
each one's log and store, and stops every one of them (broker last) whatever happened —
also on Ctrl-C. The cloud runs on the demo's simulated clock (``wayline cloud --sim-start
--sim-anchor --speed``) so it plans in the scenario's hours; each gateway builds its own
clock from ``--sim-start`` at power-up, which is rewritten before every restart.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware_sim.broker import MosquittoBroker, free_port, port_accepts
from firmware_sim.hardware import GatewayProcess
from firmware_sim.world import SimClock

__all__ = ["CloudApi", "DayProcesses", "HttpError"]

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0
REBALANCE_EVERY_S = 2.0
SLOW_S = 0.5
STARTUP_SHARE = 0.8
"""Share of a gateway's start-up spent before its clock starts (imports, settings)."""


class HttpError(OSError):
    """The cloud answered a request with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class CloudApi:
    """The coordinator's REST API, as an order system or the demo's world calls it."""

    def __init__(self, url: str) -> None:
        self.url = url

    def request(self, method: str, path: str, body: Any = None, timeout: float = 120) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise HttpError(exc.code, exc.read()[:300].decode(errors="replace")) from None
        finally:
            took = time.monotonic() - t0
            if took > SLOW_S:
                log.debug("%s %s took %.1f s", method, path, took)

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, {} if body is None else body)


@dataclass
class DayProcesses:
    """Everything the day runs on this machine; ``stop()`` is safe to call at any point."""

    work: Path
    clock: SimClock
    broker_url: str | None = None
    broker: MosquittoBroker | None = None
    cloud: subprocess.Popen[bytes] | None = None
    cloud_api: CloudApi | None = None
    depot: subprocess.Popen[bytes] | None = None
    gateways: dict[str, GatewayProcess] = field(default_factory=dict)
    startup_s: float = 2.0
    """How long the last gateway took from spawn to answering."""

    def start_broker(self, external: str | None) -> str:
        if external:
            self.broker_url = external
        else:
            self.broker = MosquittoBroker(self.work / "broker")
            self.broker.start()
            self.broker_url = self.broker.url
        return self.broker_url

    def start_cloud(self) -> CloudApi:
        port = free_port()
        argv = [
            "cloud", "--broker", str(self.broker_url), "--db", str(self.work / "cloud.db"),
            "--http", f"127.0.0.1:{port}", "--rebalance-every", str(REBALANCE_EVERY_S),
            # The day's morning plan is asked for by the runner, at the hour it chooses.
            "--morning-every", "0",
            "--sim-start", repr(self.clock.start), "--sim-anchor", repr(self.clock.real_start),
            "--speed", repr(self.clock.speed), "--plan-iterations", "200",
            "--plan-time-limit", "5",
        ]  # fmt: skip
        self.cloud = self._spawn("cloud", ["-m", "wayline", *argv])
        _wait_port(self.cloud, port, "cloud", self.work / "cloud.log")
        self.cloud_api = CloudApi(f"http://127.0.0.1:{port}")
        return self.cloud_api

    def start_depot(self, depot_id: str, lat: float, lon: float) -> str:
        port = free_port()
        argv = [
            "depot", "--id", depot_id, "--broker", str(self.broker_url),
            "--db", str(self.work / f"{depot_id}.db"), "--http", f"127.0.0.1:{port}",
            "--at", f"{lat},{lon}",
        ]  # fmt: skip
        self.depot = self._spawn(depot_id, ["-m", "wayline", *argv])
        _wait_port(self.depot, port, depot_id, self.work / f"{depot_id}.log")
        return f"http://127.0.0.1:{port}"

    def add_gateway(
        self, vehicle_id: str, start: tuple[float, float], coverage: Path, cruise_kmh: float
    ) -> GatewayProcess:
        gw = GatewayProcess(
            vehicle_id,
            broker_url=str(self.broker_url),
            db=self.work / f"{vehicle_id}.db",
            log=self.work / f"{vehicle_id}.log",
            period_s=0.5,
            extra=[
                "--fast-sync",
                "--speed",
                repr(self.clock.speed),
                "--sim-start",
                repr(self.clock()),
                "--start",
                f"{start[0]},{start[1]}",
                "--coverage",
                str(coverage),
                "--cruise-kmh",
                str(cruise_kmh),
            ],
        )
        self.gateways[vehicle_id] = gw
        return gw

    def power_up(self, gw: GatewayProcess, at: tuple[float, float] | None = None) -> None:
        """(Re)start a gateway with its clock set to now, parked where the van stands.

        The gateway's clock starts when its process has imported its code, a second or
        two after the spawn: ``--sim-start`` leads by the last power-up's time, so the
        van's clock and the world's agree to a fraction of that."""
        lead = self.clock.speed * self.startup_s * STARTUP_SHARE
        _set_flag(gw.args, "--sim-start", repr(self.clock() + lead))
        if at is not None:
            _set_flag(gw.args, "--start", f"{at[0]},{at[1]}")
        t0 = time.monotonic()
        gw.start(START_TIMEOUT_S)
        self.startup_s = time.monotonic() - t0

    def stop(self) -> None:
        for gw in self.gateways.values():
            try:
                gw.terminate()
            except OSError:
                gw.power_cut()
        for proc in (self.depot, self.cloud):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with (self.work / f"{name}.log").open("ab") as log:
            # The demo's coordinator runs on loopback with development secrets; a real
            # deployment sets WAYLINE_ENV and its own secrets (see docs/operations.md).
            env = {**os.environ, "WAYLINE_ENV": os.environ.get("WAYLINE_ENV", "development")}
            return subprocess.Popen(
                [sys.executable, *argv],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )


def _set_flag(args: list[str], flag: str, value: str) -> None:
    i = args.index(flag)
    args[i + 1] = value


def _wait_port(proc: subprocess.Popen[bytes], port: int, name: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not port_accepts("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise OSError(f"{name} did not start; its log ends:\n{tail}")
        time.sleep(0.05)
