"""gpsd's JSON reports in, position fixes out.

After ``?WATCH={"enable":true,"json":true}`` gpsd sends one JSON object per line: a
``VERSION`` banner, ``DEVICES`` and ``WATCH`` answers, then a ``TPV`` (time, position,
velocity) report per fix and ``SKY`` reports on the satellites. A TPV with ``mode`` 2 or 3
is a fix; ``speed`` is in m/s and ``track`` in degrees true. Every line is hostile: one
that is not a JSON object, or a TPV with a field of the wrong type or out of range, is
counted and skipped, exactly as :class:`edge.hardware.gnss.NmeaParser` does for NMEA.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from dataclasses import replace
from typing import Any

from edge.hardware.fix import Fix

__all__ = ["GpsdParser"]

log = logging.getLogger(__name__)

MS_TO_KMH = 3.6
_DGPS_STATUS = 2


class GpsdParser:
    """Turns gpsd report lines into fixes; keeps counts of everything it saw."""

    def __init__(self) -> None:
        self.fix: Fix | None = None
        self._satellites: int | None = None
        self.stats: dict[str, int] = {
            "sentences": 0,
            "fixes": 0,
            "bad_checksum": 0,
            "garbage": 0,
            "no_fix": 0,
            "ignored": 0,
        }

    def feed(self, line: str | bytes) -> Fix | None:
        """Parse one report; return the new fix when it is a TPV with a position, else None."""
        if isinstance(line, bytes):
            line = line.decode("utf-8", errors="replace")
        line = line.strip()
        if not line:
            return None
        try:
            report = json.loads(line)
        except ValueError:
            self._garbage(line)
            return None
        if not isinstance(report, dict) or not isinstance(report.get("class"), str):
            self._garbage(line)
            return None
        self.stats["sentences"] += 1
        kind = report["class"]
        if kind == "TPV":
            try:
                return self._tpv(report)
            except (TypeError, ValueError):
                self._garbage(line)
                return None
        if kind == "SKY":
            used = report.get("uSat")
            if isinstance(used, int) and not isinstance(used, bool) and 0 <= used <= 255:
                self._satellites = used
            return None
        self.stats["ignored"] += 1  # VERSION, DEVICES, WATCH, ERROR, ...
        return None

    def _garbage(self, line: str) -> None:
        self.stats["garbage"] += 1
        log.debug("garbage gpsd line %r", line[:60])

    def _tpv(self, tpv: dict[str, Any]) -> Fix | None:
        mode = tpv.get("mode", 0)
        if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 3:
            raise ValueError(f"TPV mode {mode!r}")
        lat, lon = tpv.get("lat"), tpv.get("lon")
        if mode < 2 or lat is None or lon is None:
            self.stats["no_fix"] += 1
            return None
        lat, lon = _number(lat, -90.0, 90.0), _number(lon, -180.0, 180.0)
        speed = tpv.get("speed")
        track = tpv.get("track")
        base = self.fix or Fix(lat=lat, lon=lon, quality=1)
        fix = replace(
            base,
            lat=lat,
            lon=lon,
            quality=2 if tpv.get("status") == _DGPS_STATUS else 1,
            speed_kmh=None if speed is None else round(_number(speed, 0.0, 1000.0) * MS_TO_KMH, 3),
            heading_deg=None if track is None else _number(track, 0.0, 360.0) % 360.0,
            satellites=self._satellites,
            utc=_time(tpv.get("time")) or base.utc,
            received_at=time.monotonic(),
        )
        self.fix = fix
        self.stats["fixes"] += 1
        return fix


def _number(value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"{number} is outside {low}..{high}")
    return number


def _time(value: object) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise TypeError(f"TPV time {value!r}")
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"TPV time without a zone: {value!r}")
    return parsed.astimezone(dt.UTC)
