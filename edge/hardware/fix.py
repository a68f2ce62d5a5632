"""A position fix: where the GNSS receiver says the vehicle is, and how it moves."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["Fix"]


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
