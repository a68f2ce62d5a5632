"""A simulated gpsd: the van's fixes as gpsd's JSON protocol on 127.0.0.1.

It speaks the part of gpsd's protocol a client watching for fixes uses: a ``VERSION``
banner on connect; after ``?WATCH={"enable":true,"json":true}`` a ``DEVICES`` and a
``WATCH`` answer, then every period a ``TPV`` report (``mode`` 3 with a fix, 1 without;
speed in m/s, track in degrees) and a ``SKY`` report. A client that never sends
``?WATCH`` gets only the banner, as from gpsd itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import selectors
import socket
import threading
from collections.abc import Callable
from typing import Any

from firmware_sim.hardware.gnss_sim import GnssState
from firmware_sim.hardware.loopback import listen_loopback

__all__ = ["GpsdSimulator", "tpv_report"]

log = logging.getLogger(__name__)

DEVICE = "/dev/ttyACM0"
VERSION = {
    "class": "VERSION",
    "release": "3.25",
    "rev": "3.25",
    "proto_major": 3,
    "proto_minor": 15,
}


def tpv_report(state: GnssState) -> dict[str, Any]:
    """gpsd's TPV report for ``state``."""
    utc = state.utc or dt.datetime.now(dt.UTC)
    time = utc.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if state.lat is None or state.lon is None:
        return {"class": "TPV", "device": DEVICE, "mode": 1, "time": time}
    return {
        "class": "TPV",
        "device": DEVICE,
        "mode": 3,
        "status": 1,
        "time": time,
        "lat": round(state.lat, 9),
        "lon": round(state.lon, 9),
        "altHAE": 45.0,
        "track": round(state.heading_deg % 360.0, 2),
        "speed": round(state.speed_kmh / 3.6, 3),
        "eph": 4.2,
    }


class GpsdSimulator:
    """Answers gpsd clients on 127.0.0.1 with ``state()`` every ``period_s``."""

    def __init__(
        self, state: Callable[[], GnssState], *, period_s: float = 1.0, port: int = 0
    ) -> None:
        self.state = state
        self.period_s = period_s
        self.sent = 0
        self._server = listen_loopback(port, "gpsd simulator")
        self.port: int = self._server.getsockname()[1]
        self._clients: dict[socket.socket, bytearray] = {}
        self._watching: set[socket.socket] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpsd-sim", daemon=True)

    @property
    def address(self) -> str:
        """The gateway's GNSS spec for this gpsd."""
        return f"gpsd://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for conn in self._clients:
            conn.close()
        self._clients.clear()
        self._watching.clear()
        self._server.close()

    def __enter__(self) -> GpsdSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._server, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=self.period_s):
                    if key.fileobj is self._server:
                        self._accept(sel)
                    else:
                        self._read(sel, key.fileobj)  # type: ignore[arg-type]
                self._broadcast()
        finally:
            sel.close()

    def _accept(self, sel: selectors.BaseSelector) -> None:
        try:
            conn, _ = self._server.accept()
        except OSError:
            return
        conn.setblocking(False)
        self._clients[conn] = bytearray()
        sel.register(conn, selectors.EVENT_READ)
        self._send(conn, [VERSION])

    def _read(self, sel: selectors.BaseSelector, conn: socket.socket) -> None:
        try:
            chunk = conn.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(conn, sel)
            return
        buffer = self._clients[conn]
        buffer += chunk
        while (cut := buffer.find(b"\n")) >= 0:
            command = bytes(buffer[:cut]).strip()
            del buffer[: cut + 1]
            if command.startswith(b"?WATCH="):
                self._watching.add(conn)
                devices = {"class": "DEVICES", "devices": [{"class": "DEVICE", "path": DEVICE}]}
                watch = {"class": "WATCH", "enable": True, "json": True, "nmea": False}
                self._send(conn, [devices, watch])
        if len(buffer) > 4096:
            self._drop(conn, sel)

    def _drop(self, conn: socket.socket, sel: selectors.BaseSelector | None = None) -> None:
        if sel is not None:
            sel.unregister(conn)
        self._clients.pop(conn, None)
        self._watching.discard(conn)
        conn.close()

    def _send(self, conn: socket.socket, reports: list[dict[str, Any]]) -> None:
        payload = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in reports).encode()
        try:
            conn.sendall(payload)
        except OSError:
            self._watching.discard(conn)

    def _broadcast(self) -> None:
        try:
            state = self.state()
            reports = [
                tpv_report(state),
                {"class": "SKY", "device": DEVICE, "nSat": 12, "uSat": state.satellites},
            ]
        except Exception:
            log.warning("gpsd simulator could not build a report", exc_info=True)
            return
        for conn in list(self._watching):
            self._send(conn, reports)
        self.sent += 1
