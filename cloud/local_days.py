"""Planning days are a depot's local days: dates, midnights and cut-offs in its IANA zone.

A region is a depot and a day, and that day is the date on the depot's wall clock, not in UTC:
an order received at 23:30 in New York (04:30 UTC the next day) belongs to New York's day.
Seconds of the day (a van's ``shift_start_s``, an order's ``ready``) count from the depot's
local midnight, so on the day clocks change they are elapsed seconds, not wall-clock readings.
A depot without a zone of its own is planned in the coordinator's default zone (UTC unless set),
which keeps UTC days exactly as they were.

Wall times that do not exist or happen twice are resolved one way everywhere
(:func:`local_instant`): a time in the hour skipped when clocks go forward is the first instant
that does exist (the moment of the change); a time in the hour that repeats when clocks go
back is its first occurrence.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "UTC_ZONE",
    "check_cutoff",
    "check_zone",
    "day_of",
    "day_start",
    "local_instant",
    "zone",
]

UTC_ZONE = "UTC"
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,3}$")
_CUTOFF = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ``ValueError`` naming it when there is no such zone."""
    if len(name) > 64 or not _ZONE_NAME.match(name):
        raise ValueError(f"{name!r} is not an IANA time zone name (like Europe/Amsterdam)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None


def check_zone(name: str) -> str:
    """``name`` if it is an IANA zone this machine knows (``ValueError`` otherwise)."""
    zone(name)
    return name


def check_cutoff(text: str) -> str:
    """A cut-off as ``HH:MM`` on the 24-hour clock (``ValueError`` otherwise)."""
    if not _CUTOFF.match(text):
        raise ValueError(f"cut-off {text!r} is not a local time HH:MM (00:00 to 23:59)")
    return text


def day_of(epoch_s: float, zone_name: str = UTC_ZONE) -> str:
    """The date (YYYY-MM-DD) on the wall clock of ``zone_name`` at ``epoch_s``."""
    return dt.datetime.fromtimestamp(epoch_s, tz=zone(zone_name)).date().isoformat()


@lru_cache(maxsize=4096)
def day_start(day: str, zone_name: str = UTC_ZONE) -> int:
    """Epoch seconds of the first instant of ``day`` (YYYY-MM-DD) in ``zone_name``."""
    d = dt.date.fromisoformat(day)
    if zone_name == UTC_ZONE:
        return calendar.timegm((d.year, d.month, d.day, 0, 0, 0))
    return local_instant(d, dt.time(0, 0), zone_name)


def local_instant(day: dt.date | str, at: dt.time | str, zone_name: str) -> int:
    """Epoch seconds at which the wall clock of ``zone_name`` first reads ``at`` on ``day``.

    A wall time skipped by a change to summer time gives the instant of the change (the
    first one that exists after it); a wall time that happens twice gives its first occurrence.
    """
    d = dt.date.fromisoformat(day) if isinstance(day, str) else day
    t = dt.time.fromisoformat(at) if isinstance(at, str) else at
    tz = zone(zone_name)
    wall = dt.datetime.combine(d, t)
    early = int(wall.replace(tzinfo=tz, fold=0).timestamp())
    late = int(wall.replace(tzinfo=tz, fold=1).timestamp())
    if early <= late:  # exists once (equal), or twice (fold=0 is the first occurrence)
        return early
    # skipped: fold=1 reads the wall time with the offset after the change (before the gap),
    # fold=0 with the offset before it (after the gap); the change lies between the two
    lo, hi = late, early
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if dt.datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return hi
