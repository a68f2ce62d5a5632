"""A simulated GNSS receiver: NMEA 0183 sentences for a van's position.

Sentences are built with pynmea2 (valid checksums): GGA, RMC and VTG once per period, as a
receiver at 1 Hz would send them. They go out on a serial line (a pseudo-terminal behind a
device path, :class:`PtySerialPort`), to TCP clients on 127.0.0.1 (a receiver's network
port), and optionally to a pipe. ``garbage_every`` slips in a line with a bad checksum and
a line of noise now and then, as a noisy serial line does, so the gateway's robustness is
exercised in every run.
"""

from __future__ import annotations

import datetime as dt
import logging
import selectors
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pynmea2

from firmware_sim.hardware.errors import SimSocketError
from firmware_sim.hardware.loopback import listen_loopback
from firmware_sim.hardware.serial_port import PtySerialPort

__all__ = ["GnssSimulator", "GnssState", "nmea_sentences"]

log = logging.getLogger(__name__)

KMH_PER_KNOT = 1.852


@dataclass(frozen=True, slots=True)
class GnssState:
    """What the simulated receiver reports; ``lat is None`` means no fix (in a garage)."""

    lat: float | None
    lon: float | None
    speed_kmh: float = 0.0
    heading_deg: float = 0.0
    utc: dt.datetime | None = None
    satellites: int = 9


def _angle(value: float, hemis: str, width: int) -> tuple[str, str]:
    h = hemis[0] if value >= 0 else hemis[1]
    value = abs(value)
    deg = int(value)
    minutes = (value - deg) * 60
    return f"{deg:0{width}d}{minutes:07.4f}", h


def nmea_sentences(state: GnssState, talker: str = "GP") -> list[str]:
    """GGA, RMC and VTG for ``state``, each with its checksum (no line ending)."""
    utc = state.utc or dt.datetime.now(dt.UTC)
    hms = utc.strftime("%H%M%S.") + f"{utc.microsecond // 10000:02d}"
    dmy = utc.strftime("%d%m%y")
    if state.lat is None or state.lon is None:
        gga = pynmea2.GGA(
            talker, "GGA", (hms, "", "", "", "", "0", "00", "", "", "M", "", "M", "", "")
        )
        rmc = pynmea2.RMC(talker, "RMC", (hms, "V", "", "", "", "", "", "", dmy, "", ""))
        return [str(gga), str(rmc)]
    lat, ns = _angle(state.lat, "NS", 2)
    lon, ew = _angle(state.lon, "EW", 3)
    knots = f"{state.speed_kmh / KMH_PER_KNOT:.2f}"
    course = f"{state.heading_deg % 360:.1f}"
    sats = f"{state.satellites:02d}"
    gga = pynmea2.GGA(
        talker, "GGA", (hms, lat, ns, lon, ew, "1", sats, "0.9", "45.0", "M", "0.0", "M", "", "")
    )
    rmc = pynmea2.RMC(talker, "RMC", (hms, "A", lat, ns, lon, ew, knots, course, dmy, "", ""))
    vtg = pynmea2.VTG(
        talker, "VTG", (course, "T", "", "M", knots, "N", f"{state.speed_kmh:.2f}", "K", "A")
    )
    return [str(gga), str(rmc), str(vtg)]


class GnssSimulator:
    """Serves NMEA for ``state()`` every ``period_s`` on a pty, to TCP clients, to a pipe.

    ``port=0`` picks a free port (:attr:`address` is the gateway's ``tcp://`` spec).
    ``serial_link``: a path where a pseudo-terminal appears as the receiver's device
    (:attr:`serial_address` is the gateway's ``serial://`` spec; :attr:`serial` can unplug
    and plug it). ``pipe``: a binary file (the write end of ``os.pipe()``) that receives
    the same lines.
    """

    def __init__(
        self,
        state: Callable[[], GnssState],
        *,
        period_s: float = 1.0,
        port: int = 0,
        pipe: BinaryIO | None = None,
        serial_link: Path | None = None,
        garbage_every: int = 0,
    ) -> None:
        self.state = state
        self.serial = PtySerialPort(serial_link) if serial_link is not None else None
        self.period_s = period_s
        self.pipe = pipe
        self.garbage_every = garbage_every
        self.sent = 0
        self._server = listen_loopback(port, "GNSS simulator")
        self.port: int = self._server.getsockname()[1]
        self._clients: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gnss-sim", daemon=True)

    @property
    def address(self) -> str:
        """The gateway's GNSS spec for the TCP feed."""
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def serial_address(self) -> str:
        """The gateway's GNSS spec for the serial line."""
        if self.serial is None:
            raise SimSocketError("this GNSS simulator has no serial line")
        return f"serial://{self.serial.link}?baud=9600"

    def start(self) -> None:
        if self.serial is not None:
            self.serial.plug()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for c in self._clients:
            c.close()
        self._clients.clear()
        self._server.close()
        if self.serial is not None:
            self.serial.close()

    def __enter__(self) -> GnssSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._server, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                for _ in sel.select(timeout=self.period_s):
                    self._accept()
                self._broadcast()
        finally:
            sel.close()

    def _accept(self) -> None:
        try:
            conn, _ = self._server.accept()
        except OSError:
            return
        conn.settimeout(1.0)
        self._clients.append(conn)

    def _broadcast(self) -> None:
        try:
            lines = nmea_sentences(self.state())
        except Exception:
            log.warning("GNSS simulator could not build sentences", exc_info=True)
            return
        if self.garbage_every and (self.sent // len(lines)) % self.garbage_every == 1:
            bad = lines[0][:-2] + ("00" if lines[0][-2:] != "00" else "11")
            lines = [bad, "\x00\xff#garbage~", *lines]
        payload = "".join(f"{line}\r\n" for line in lines).encode("ascii", errors="replace")
        self.sent += len(lines)
        if self.serial is not None:
            self.serial.write(payload)
        for conn in list(self._clients):
            try:
                conn.sendall(payload)
            except OSError:
                conn.close()
                self._clients.remove(conn)
        if self.pipe is not None:
            try:
                self.pipe.write(payload)
                self.pipe.flush()
            except (OSError, ValueError):
                self.pipe = None
