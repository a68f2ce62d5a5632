"""Travel times and distances between points, as the re-sequencer's integer matrices.

A :class:`TravelTimes` source answers: for these lat/lon points, leaving at this time, how
many seconds and metres from each to each. Two sources:

* :class:`GreatCircleTravelTimes` (the default, works offline): haversine distance times a
  circuity factor (roads are not straight), divided by a speed that depends on the hour of
  departure through a :class:`SpeedProfile` whose factors can be learned from completed work;
* :class:`OsrmTableTravelTimes`: an OSRM-compatible ``/table/v1/driving/`` service over HTTP.

Errors::

    TravelTimeError   (Exception) a source that cannot answer (bad input, service down, bad reply)
"""

from __future__ import annotations

import json
import logging
import math
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "GreatCircleTravelTimes",
    "OsrmTableTravelTimes",
    "SpeedProfile",
    "TravelMatrix",
    "TravelTimeError",
    "TravelTimes",
    "haversine_m",
]

log = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_371_008.8
DEFAULT_CIRCUITY = 1.3
DEFAULT_SPEED_MPS = 8.33  # 30 km/h, urban delivery average before the hour's factor
OSRM_TIMEOUT_S = 5.0

Point = tuple[float, float]  # (lat, lon) in degrees


class TravelTimeError(Exception):
    """A travel-time source that cannot answer."""


@dataclass(frozen=True, slots=True)
class TravelMatrix:
    """Seconds and metres from each point (row) to each point (column)."""

    seconds: tuple[tuple[int, ...], ...]
    metres: tuple[tuple[int, ...], ...]


@runtime_checkable
class TravelTimes(Protocol):
    """Where travel times come from."""

    def matrix(self, points: Sequence[Point], departure: datetime) -> TravelMatrix: ...


def haversine_m(a: Point, b: Point) -> float:
    """Great-circle distance in metres between two (lat, lon) points."""
    la1, lo1, la2, lo2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _haversine_all_m(points: Sequence[Point]) -> np.ndarray:
    """Great-circle distances in metres from each point to each, as :func:`haversine_m`
    computes them one pair at a time (200 points: 40,000 pairs in about a millisecond).
    numpy is imported here, at the first matrix, so that a van's agent starts without it."""
    import numpy as np

    rad = np.radians(np.asarray(points, dtype=np.float64).reshape(-1, 2))
    lat, lon = rad[:, 0], rad[:, 1]
    dlat = (lat[None, :] - lat[:, None]) / 2
    dlon = (lon[None, :] - lon[:, None]) / 2
    cos_lat = np.cos(lat)
    h = np.sin(dlat) ** 2 + cos_lat[:, None] * cos_lat[None, :] * np.sin(dlon) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(1.0, h))))


def _rows(values: np.ndarray) -> tuple[tuple[int, ...], ...]:
    return tuple(map(tuple, values.astype("int64").tolist()))


# Rush hours slow the van down; nights are quick. Factors multiply the base speed.
DEFAULT_HOURLY_FACTORS: tuple[float, ...] = (
    1.3,
    1.3,
    1.3,
    1.3,
    1.3,
    1.2,  # 00-05
    1.0,
    0.75,
    0.7,
    0.85,
    0.95,
    0.95,  # 06-11
    0.9,
    0.9,
    0.95,
    0.9,
    0.75,
    0.7,  # 12-17
    0.8,
    0.95,
    1.05,
    1.15,
    1.2,
    1.25,  # 18-23
)


@dataclass(frozen=True, slots=True)
class SpeedProfile:
    """A base speed and one factor per hour of the day (local time of departure)."""

    base_mps: float = DEFAULT_SPEED_MPS
    factors: tuple[float, ...] = DEFAULT_HOURLY_FACTORS

    def __post_init__(self) -> None:
        if len(self.factors) != 24 or any(f <= 0 for f in self.factors):
            raise TravelTimeError("a speed profile needs 24 positive hourly factors")
        if self.base_mps <= 0:
            raise TravelTimeError("base speed must be positive")

    def speed(self, departure: datetime) -> float:
        """Metres per second when leaving at ``departure``."""
        return self.base_mps * self.factors[departure.hour]

    def with_factor(self, hour: int, factor: float) -> SpeedProfile:
        """A copy with one hour's factor replaced (what learning from completed work does)."""
        f = list(self.factors)
        f[hour] = factor
        return replace(self, factors=tuple(f))


class GreatCircleTravelTimes:
    """Haversine distance x circuity, at the profile's speed for the hour of departure."""

    def __init__(
        self, circuity: float = DEFAULT_CIRCUITY, profile: SpeedProfile | None = None
    ) -> None:
        if circuity < 1.0:
            raise TravelTimeError("circuity below 1 would make roads shorter than straight lines")
        self.circuity = circuity
        self.profile = profile if profile is not None else SpeedProfile()

    def matrix(self, points: Sequence[Point], departure: datetime) -> TravelMatrix:
        _check_points(points)
        speed = self.profile.speed(departure)
        import numpy as np  # at the first matrix, not at the agent's start

        metres = np.rint(_haversine_all_m(points) * self.circuity)
        seconds = np.ceil(metres / speed)
        return TravelMatrix(_rows(seconds), _rows(metres))


class OsrmTableTravelTimes:
    """An OSRM-compatible table service (``GET /table/v1/driving/lon,lat;...``).

    OSRM has no departure-time model, so ``departure`` is not sent.
    """

    def __init__(self, base_url: str, timeout_s: float = OSRM_TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def matrix(self, points: Sequence[Point], departure: datetime) -> TravelMatrix:
        _check_points(points)
        coords = ";".join(f"{lon:.6f},{lat:.6f}" for lat, lon in points)
        url = f"{self.base_url}/table/v1/driving/{coords}?annotations=duration,distance"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:
                body = json.loads(resp.read().decode("utf-8"))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TravelTimeError(f"OSRM table request failed: {exc}") from exc
        if not isinstance(body, dict) or body.get("code") != "Ok":
            code = body.get("code") if isinstance(body, dict) else None
            raise TravelTimeError(f"OSRM table answered {code!r}")
        n = len(points)
        seconds = _table(body.get("durations"), n, "durations")
        metres = _table(body.get("distances"), n, "distances")
        return TravelMatrix(seconds, metres)


def _check_points(points: Sequence[Point]) -> None:
    if not points:
        raise TravelTimeError("no points")
    for lat, lon in points:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise TravelTimeError(f"not a lat/lon point: ({lat}, {lon})")


def _table(rows: object, n: int, name: str) -> tuple[tuple[int, ...], ...]:
    if not isinstance(rows, list) or len(rows) != n:
        raise TravelTimeError(f"OSRM table: {name} missing or not {n}x{n}")
    out = []
    for row in rows:
        if not isinstance(row, list) or len(row) != n:
            raise TravelTimeError(f"OSRM table: {name} row is not {n} long")
        if any(not isinstance(v, int | float) for v in row):
            raise TravelTimeError(f"OSRM table: {name} has an unreachable pair")
        out.append(tuple(math.ceil(v) for v in row))
    return tuple(out)
