"""A simulated gateway as a real process, with its power supply in the caller's hands.

:class:`GatewayProcess` starts ``python -m firmware_sim.gateway`` with its own store and
tablet port, and can take its power away: :meth:`power_cut` is a SIGKILL (no flush, no
goodbye, possibly in the middle of a SQLite write), :meth:`power_cut_during` cuts it while
an action (a delivery tap) is in flight, :meth:`ignition_off` turns the key (the bus says
so, the van stops) and after a grace period powers the gateway down cleanly (SIGTERM), as a
gateway on switched power does. :meth:`start` again is the next power-up.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware_sim.broker import free_port
from firmware_sim.hardware.errors import GatewayProcessError

__all__ = ["GatewayProcess"]

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0


class GatewayProcess:
    """One van's gateway process; ``extra`` are further ``firmware_sim.gateway`` options."""

    def __init__(
        self,
        vehicle_id: str,
        *,
        broker_url: str,
        db: Path,
        log: Path,
        period_s: float = 0.5,
        extra: list[str] | None = None,
        port: int | None = None,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.args = [
            sys.executable,
            "-m",
            "firmware_sim.gateway",
            "--id",
            vehicle_id,
            "--broker",
            broker_url,
            "--db",
            str(db),
            "--http",
            f"127.0.0.1:{self.port}",
            "--period",
            str(period_s),
            *(extra or []),
        ]
        self.pairing_code = secrets.token_hex(8)
        """The gateway's pairing code (``--pairing-code``): the driver bot pairs with it."""
        self.args += ["--pairing-code", self.pairing_code]
        self.auth: dict[str, str] = {}
        """The paired tablet's session header; it survives the gateway's restarts."""
        self.popen: subprocess.Popen[bytes] | None = None
        self.power_cuts = 0

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Power up and wait until the tablet API answers."""
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.args, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise GatewayProcessError(f"gateway {self.vehicle_id} exited:\n{tail}")
            try:
                self.get("/healthz")
                if not self.auth:
                    token = self.post("/api/pair", {"code": self.pairing_code})["token"]
                    self.auth = {"Authorization": f"Bearer {token}"}
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise GatewayProcessError(
                        f"gateway {self.vehicle_id} did not answer in {timeout:.0f} s"
                    ) from None
                time.sleep(0.1)

    def power_cut(self) -> None:
        """The power goes: SIGKILL, whatever the gateway was doing."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.power_cuts += 1
        self.popen.wait()

    def power_cut_during(self, action: Callable[[], Any], delay_s: float) -> list[Any]:
        """Run ``action`` in a thread, cut the power ``delay_s`` later; its result or error."""
        out: list[Any] = []

        def run() -> None:
            try:
                out.append(action())
            except Exception as exc:  # the answer that never came
                out.append(exc)

        worker = threading.Thread(target=run, name="in-flight")
        worker.start()
        time.sleep(delay_s)
        self.power_cut()
        worker.join(30)
        return out

    def ignition_off(self, grace_s: float = 0.5) -> None:
        """Key off: the bus reports it, then the gateway powers down cleanly."""
        if not self.running:
            return
        with contextlib.suppress(OSError):
            self.post("/sim/van", {"ignition": False})
        time.sleep(grace_s)
        self.terminate()

    def terminate(self, timeout: float = 15.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    # -- HTTP to the tablet API and the simulator's control API ----------------------------

    def get(self, path: str) -> Any:
        try:
            req = urllib.request.Request(self.url + path, headers=self.auth)
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            raise GatewayProcessError(f"GET {path}: {exc.code} {exc.read()[:200]!r}") from None

    def post(self, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json", **self.auth},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            raise GatewayProcessError(f"POST {path}: {exc.code} {exc.read()[:200]!r}") from None

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = self.get("/api/status")
        return out

    def sim_state(self) -> dict[str, Any]:
        out: dict[str, Any] = self.get("/sim/state")
        return out

    def set_van(self, **fields: Any) -> dict[str, Any]:
        out: dict[str, Any] = self.post("/sim/van", fields)
        return out

    def set_modem(self, online: bool | None) -> dict[str, Any]:
        out: dict[str, Any] = self.post("/sim/modem", {"online": online})
        return out
