"""The GNSS receiver: NMEA 0183 sentences in, position fixes out.

A gateway reads NMEA from a serial device (``/dev/ttyACM0``, configured with ``stty``
beforehand), from a TCP feed (``tcp://127.0.0.1:2947``-style raw NMEA, as gpsd relays or a
simulator serves) or, in tests, from any iterable of lines. Sentences are parsed with
pynmea2 and checksums are required. GGA gives position, fix quality, satellites and time;
RMC gives position, speed, course, date and validity; VTG, when present, speed and course.
A bad sentence (checksum, garbage, a field that does not parse) is counted and skipped.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pynmea2

from edge.hardware.errors import GnssSourceError

__all__ = ["Fix", "GnssReceiver", "NmeaParser", "open_line_source"]

log = logging.getLogger(__name__)

KNOTS_TO_KMH = 1.852
MAX_LINE = 512
"""Longest line kept (NMEA allows 82 characters); anything longer is garbage."""
READ_POLL_S = 0.2
"""How often a blocked read checks whether the receiver is stopping."""
RECONNECT_S = 1.0


@dataclass(frozen=True, slots=True)
class Fix:
    """Where the receiver says the vehicle is, and how it moves."""

    lat: float
    lon: float
    quality: int
    """GGA fix quality: 0 invalid, 1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, 6 estimated."""
    speed_kmh: float | None = None
    heading_deg: float | None = None
    satellites: int | None = None
    utc: dt.datetime | None = None
    received_at: float = 0.0
    """``time.monotonic()`` when the sentence that completed this fix arrived."""


class NmeaParser:
    """Turns NMEA lines into fixes; keeps counts of everything it saw."""

    def __init__(self) -> None:
        self.fix: Fix | None = None
        self._date: dt.date | None = None
        self.stats: dict[str, int] = {
            "sentences": 0,
            "fixes": 0,
            "bad_checksum": 0,
            "garbage": 0,
            "no_fix": 0,
            "ignored": 0,
        }

    def feed(self, line: str | bytes) -> Fix | None:
        """Parse one line; return the updated fix when it moved the position, else None."""
        if isinstance(line, bytes):
            line = line.decode("ascii", errors="replace")
        line = line.strip()
        if not line:
            return None
        try:
            msg = pynmea2.parse(line, check=True)
        except pynmea2.ChecksumError:
            self.stats["bad_checksum"] += 1
            return None
        except (pynmea2.ParseError, ValueError, AttributeError, TypeError):
            self.stats["garbage"] += 1
            log.debug("garbage NMEA line %r", line[:40])
            return None
        self.stats["sentences"] += 1
        try:
            return self._apply(msg)
        except (ValueError, TypeError, AttributeError, IndexError):
            self.stats["garbage"] += 1
            log.debug("NMEA sentence with bad fields %r", line[:40])
            return None

    def _apply(self, msg: pynmea2.NMEASentence) -> Fix | None:
        now = time.monotonic()
        if isinstance(msg, pynmea2.GGA):
            quality = int(msg.gps_qual or 0)
            if quality == 0 or not msg.lat:
                self.stats["no_fix"] += 1
                return None
            sats = int(msg.num_sats) if msg.num_sats else None
            utc = self._utc(msg.timestamp)
            base = self.fix or Fix(lat=0.0, lon=0.0, quality=quality)
            return self._set(
                replace(
                    base,
                    lat=msg.latitude,
                    lon=msg.longitude,
                    quality=quality,
                    satellites=sats,
                    utc=utc or base.utc,
                    received_at=now,
                )
            )
        if isinstance(msg, pynmea2.RMC):
            if msg.status != "A" or not msg.lat:
                self.stats["no_fix"] += 1
                return None
            if msg.datestamp:
                self._date = msg.datestamp
            base = self.fix or Fix(lat=0.0, lon=0.0, quality=1)
            return self._set(
                replace(
                    base,
                    lat=msg.latitude,
                    lon=msg.longitude,
                    speed_kmh=_knots(msg.spd_over_grnd, base.speed_kmh),
                    heading_deg=_course(msg.true_course, base.heading_deg),
                    utc=self._utc(msg.timestamp) or base.utc,
                    received_at=now,
                )
            )
        if isinstance(msg, pynmea2.VTG):
            if self.fix is not None:
                kmh = float(msg.spd_over_grnd_kmph) if msg.spd_over_grnd_kmph else None
                self.fix = replace(
                    self.fix,
                    speed_kmh=kmh if kmh is not None else self.fix.speed_kmh,
                    heading_deg=_course(msg.true_track, self.fix.heading_deg),
                )
            return None
        self.stats["ignored"] += 1
        return None

    def _set(self, fix: Fix) -> Fix:
        self.fix = fix
        self.stats["fixes"] += 1
        return fix

    def _utc(self, t: dt.time | None) -> dt.datetime | None:
        if t is None or self._date is None:
            return None
        return dt.datetime.combine(self._date, t.replace(tzinfo=None), tzinfo=dt.UTC)


def _knots(value: object, default: float | None) -> float | None:
    return round(float(value) * KNOTS_TO_KMH, 3) if value not in (None, "") else default


def _course(value: object, default: float | None) -> float | None:
    return float(value) % 360.0 if value not in (None, "") else default


# -- line sources ----------------------------------------------------------------------


LineSource = Callable[[threading.Event], Iterator[bytes]]
"""Yields lines until the source ends or the event is set."""


def open_line_source(spec: str | Path | Iterable[str | bytes]) -> tuple[LineSource, bool]:
    """A line source from a spec; returns ``(source, endless)``.

    ``tcp://host:port`` or ``host:port``: a TCP feed (reconnected when it drops);
    a path: a serial device, pipe or file; anything else iterable: its lines.
    """
    if isinstance(spec, Path) or (isinstance(spec, str) and spec.startswith("/")):
        path = Path(spec)
        if not path.exists():
            raise GnssSourceError(f"no NMEA device or file at {path}")
        return (lambda stop: _fd_lines(path, stop)), not path.is_file()
    if isinstance(spec, str):
        hostport = spec.removeprefix("tcp://")
        host, sep, port = hostport.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise GnssSourceError(f"NMEA source must be a path or tcp://host:port, got {spec!r}")
        return (lambda stop: _socket_lines(host, int(port), stop)), True
    lines = spec
    return (lambda stop: _iter_lines(lines, stop)), False


def _split(buffer: bytearray) -> Iterator[bytes]:
    while (cut := buffer.find(b"\n")) >= 0:
        line = bytes(buffer[:cut])
        del buffer[: cut + 1]
        yield line
    if len(buffer) > MAX_LINE:
        buffer.clear()
        yield b"<overlong>"


def _socket_lines(host: str, port: int, stop: threading.Event) -> Iterator[bytes]:
    try:
        sock = socket.create_connection((host, port), timeout=2.0)
    except OSError as exc:
        raise GnssSourceError(f"NMEA feed {host}:{port} refused: {exc}") from exc
    buffer = bytearray()
    with sock:
        sock.settimeout(READ_POLL_S)
        while not stop.is_set():
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError as exc:
                raise GnssSourceError(f"NMEA feed {host}:{port} dropped: {exc}") from exc
            if not chunk:
                return
            buffer += chunk
            yield from _split(buffer)


def _fd_lines(path: Path, stop: threading.Event) -> Iterator[bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        raise GnssSourceError(f"cannot open NMEA source {path}: {exc}") from exc
    buffer = bytearray()
    try:
        while not stop.is_set():
            ready, _, _ = select.select([fd], [], [], READ_POLL_S)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                continue
            if not chunk:
                if buffer:
                    yield bytes(buffer)
                return
            buffer += chunk
            yield from _split(buffer)
    finally:
        os.close(fd)


def _iter_lines(lines: Iterable[str | bytes], stop: threading.Event) -> Iterator[bytes]:
    for line in lines:
        if stop.is_set():
            return
        yield line.encode("ascii", errors="replace") if isinstance(line, str) else line


# -- the receiver ------------------------------------------------------------------------


class GnssReceiver:
    """Reads a line source in a thread and keeps the latest fix."""

    def __init__(
        self,
        source: str | Path | Iterable[str | bytes],
        *,
        on_fix: Callable[[Fix], None] | None = None,
        reconnect_s: float = RECONNECT_S,
    ) -> None:
        self._source, self._endless = open_line_source(source)
        self.parser = NmeaParser()
        self.on_fix = on_fix
        self.reconnect_s = reconnect_s
        self.reconnects = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gnss", daemon=True)

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self.parser.stats, "reconnects": self.reconnects}

    def latest(self, max_age_s: float | None = None) -> Fix | None:
        """The last fix, or None when there is none or it is older than ``max_age_s``."""
        with self._lock:
            fix = self.parser.fix
        if fix is None:
            return None
        if max_age_s is not None and time.monotonic() - fix.received_at > max_age_s:
            return None
        return fix

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def __enter__(self) -> GnssReceiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    for line in self._source(self._stop):
                        with self._lock:
                            fix = self.parser.feed(line)
                        if fix is not None and self.on_fix is not None:
                            try:
                                self.on_fix(fix)
                            except Exception:
                                log.warning("GNSS fix callback failed", exc_info=True)
                except GnssSourceError as exc:
                    log.warning("GNSS: %s", exc)
                if not self._endless:
                    return
                self.reconnects += 1
                self._stop.wait(self.reconnect_s)
        finally:
            self.ended.set()
