"""The GNSS receiver: NMEA 0183 sentences (or gpsd reports) in, position fixes out.

:class:`GnssReceiver` reads one source (:mod:`edge.hardware.gnss_sources`: a serial
device, a TCP feed, gpsd) in its own thread and keeps the latest fix. A source that cannot
be opened, or goes away mid-shift, is retried with a backoff; each change between working
and not working is logged once, naming the source. No GNSS is never a crash: the receiver
simply has no fix, and the telemetry that needs one waits.

NMEA is parsed with pynmea2 and checksums are required. GGA gives position, fix quality,
satellites and time; RMC gives position, speed, course, date and validity; VTG, when
present, speed and course. A bad sentence (checksum, garbage, a field that does not parse)
is counted and skipped; the first one of each kind is logged once, naming the source.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import pynmea2

from edge.hardware.errors import GnssSourceError
from edge.hardware.fix import Fix
from edge.hardware.gnss_sources import GnssSource, parse_gnss_spec
from edge.hardware.link import InputLink

__all__ = ["Fix", "FixParser", "GnssReceiver", "NmeaParser"]

log = logging.getLogger(__name__)

KNOTS_TO_KMH = 1.852
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30.0


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


def _knots(value: str | float | None, default: float | None) -> float | None:
    return round(float(value) * KNOTS_TO_KMH, 3) if value not in (None, "") else default


def _course(value: str | float | None, default: float | None) -> float | None:
    return float(value) % 360.0 if value not in (None, "") else default


# -- the receiver ------------------------------------------------------------------------


class FixParser(Protocol):
    """Lines in, fixes out, with counts: :class:`NmeaParser` or ``GpsdParser``."""

    fix: Fix | None
    stats: dict[str, int]

    def feed(self, line: str | bytes) -> Fix | None: ...


_FIRST_OF = {
    "bad_checksum": "a sentence with a bad checksum",
    "garbage": "a line that is not a sentence",
}


class GnssReceiver:
    """Reads a GNSS source in a thread, keeps the latest fix, and survives the source.

    ``source`` is a spec (see :func:`edge.hardware.gnss_sources.parse_gnss_spec`), a
    source, or lines in memory. A spec that does not parse raises
    :class:`GnssSourceError` here; everything after (no device, refused, dropped) is
    retried in the thread with a backoff from ``reconnect_min_s`` to ``reconnect_max_s``.
    """

    def __init__(
        self,
        source: str | Path | Iterable[str | bytes] | GnssSource,
        *,
        on_fix: Callable[[Fix], None] | None = None,
        reconnect_min_s: float = RECONNECT_MIN_S,
        reconnect_max_s: float = RECONNECT_MAX_S,
    ) -> None:
        self.source = parse_gnss_spec(source)
        self.parser: FixParser
        if self.source.protocol == "gpsd":
            from edge.hardware.gpsd import GpsdParser

            self.parser = GpsdParser()
        else:
            self.parser = NmeaParser()
        self.on_fix = on_fix
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.link = InputLink(
            f"GNSS {self.source.label}",
            min_s=reconnect_min_s,
            max_s=max(reconnect_min_s, reconnect_max_s),
            stop=self._stop,
        )
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gnss", daemon=True)

    @property
    def label(self) -> str:
        return self.link.label

    @property
    def stats(self) -> dict[str, int | str]:
        with self._lock:
            counts: dict[str, int | str] = dict(self.parser.stats)
        return {
            **counts,
            "state": self.link.state,
            "reconnects": max(0, self.link.ups - 1),
            "failures": self.link.failures,
        }

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
                if not self._read_once():
                    return
                if self.link.wait():
                    return
        except Exception:
            log.exception("%s: the receiver stopped on an unexpected error", self.label)
        finally:
            self.ended.set()

    def _read_once(self) -> bool:
        """One connection, read until it ends; False when the source is finished for good."""
        try:
            connection = self.source.open()
        except GnssSourceError as exc:
            self.link.down(str(exc))
            return True
        try:
            self.link.up(
                "reading " + ("gpsd reports" if self.source.protocol == "gpsd" else "NMEA")
            )
            for line in connection.lines(self._stop):
                self._feed(line)
            if not connection.endless:
                return False
            if not self._stop.is_set():
                self.link.down("the source ended")
        except GnssSourceError as exc:
            self.link.down(str(exc))
        finally:
            connection.close()
        return True

    def _feed(self, line: bytes) -> None:
        with self._lock:
            before = {k: self.parser.stats[k] for k in _FIRST_OF}
            fix = self.parser.feed(line)
            firsts = [k for k in _FIRST_OF if before[k] == 0 and self.parser.stats[k] > 0]
        for kind in firsts:
            log.warning(
                "%s: %s skipped (%r); such lines are counted in the hardware stats "
                "and not logged again",
                self.label,
                _FIRST_OF[kind],
                line[:40],
            )
        if fix is not None and self.on_fix is not None:
            try:
                self.on_fix(fix)
            except Exception:
                log.warning("%s: the fix callback failed", self.label, exc_info=True)
