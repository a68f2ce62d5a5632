"""A real Mosquitto broker started from ``deploy/mosquitto.conf`` on a loopback port.

Used by the one-machine demo (which starts its own broker), by the test fixtures and by the
benchmarks, so that all three run the broker configuration that ships in ``deploy/``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = [
    "BROKER_CONFIG",
    "BrokerError",
    "MosquittoBroker",
    "free_port",
    "mosquitto_executable",
    "port_accepts",
]

BROKER_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto.conf"

#: How long a broker may take to accept TCP after start (loading a large
#: persistence file takes a few seconds).
BROKER_START_TIMEOUT = 30.0
#: How long a broker may take to save its database and exit on SIGTERM.
BROKER_STOP_TIMEOUT = 30.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def mosquitto_executable() -> str:
    """Path of the mosquitto binary (``/usr/sbin`` is often not on a user's PATH)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise FileNotFoundError("mosquitto not found; `make test` installs it (apt-get)")
    return found


class BrokerError(RuntimeError):
    """The test broker could not be started or stopped."""


class MosquittoBroker:
    """A real Mosquitto on 127.0.0.1, configured from ``deploy/mosquitto.conf``.

    The port stays the same across ``stop()``/``start()``/``restart()`` so that clients
    can reconnect. ``restart(persistence=False)`` deletes the persistence file, so the
    broker forgets sessions, queued and retained messages, as a broker without
    persistence (or one whose disk was lost) would.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        config: Path = BROKER_CONFIG,
        extra_config: str = "",
    ) -> None:
        self.workdir = Path(workdir)
        self.port = port if port is not None else free_port(self.host)
        self.template = Path(config)
        self.extra_config = extra_config
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "broker.log"
        self.persistence_file = self.data_dir / "mosquitto.db"
        self.executable = mosquitto_executable()
        self._proc: subprocess.Popen[bytes] | None = None

    # --- public surface -------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the broker (no-op when running) and wait until it accepts TCP."""
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [self.executable, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a ^C to pytest must not reach it first
            )
        deadline = time.monotonic() + BROKER_START_TIMEOUT
        while not port_accepts(self.host, self.port):
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise BrokerError(
                    f"mosquitto exited with {code} on port {self.port}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerError(f"mosquitto did not listen on {self.port}:\n{self.log_tail()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM and wait: Mosquitto saves its persistence file on the way out."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(BROKER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL: the broker loses whatever it had not autosaved (autosave_interval)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._proc = None

    def restart(self, persistence: bool = True, kill: bool = False) -> None:
        """Stop (or kill) and start again on the same port.

        With ``persistence=False`` the persistence file is deleted before the start: the
        broker comes back with no sessions, no queued and no retained messages.
        """
        if kill:
            self.kill()
        else:
            self.stop()
        if not persistence:
            self.forget()
        self.start()

    def forget(self) -> None:
        """Delete the persistence file (only while stopped)."""
        if self.running:
            raise BrokerError("forget() needs a stopped broker")
        for path in self.data_dir.glob("mosquitto.db*"):
            path.unlink()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<MosquittoBroker {self.url} {state}>"

    # --- internals ------------------------------------------------------------------

    def _write_config(self) -> None:
        lines = [self.template.read_text(), "", "# --- added by firmware_sim/broker.py ---"]
        if self.extra_config:
            lines.append(self.extra_config)
        lines.append(f"persistence_location {self.data_dir}/")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # As root Mosquitto switches to the `mosquitto` user, which cannot write
            # the root-owned tmp dir. Stay root: the listener is loopback only.
            lines.append("user root")
        lines.append(f"listener {self.port} {self.host}")
        self.config_path.write_text("\n".join(lines) + "\n")
