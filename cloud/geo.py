"""Where things are and how long it takes between them: the coordinator's travel model.

Distances are great-circle (haversine) metres times a road factor; travel time is that
distance at a constant speed. Both are rounded to whole metres and seconds, so a plan's
inputs are integers that a replay rebuilds bit for bit from the same points and model
(:func:`matrices_sha` pins them). Solomon/Homberger coordinates map onto the map around a
depot with :func:`solomon_point`. Days (:func:`day_of`, :func:`day_start`) are a depot's
local days, from :mod:`cloud.local_days`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cloud.local_days import day_of, day_start

__all__ = [
    "TravelModel",
    "day_of",
    "day_start",
    "haversine_m",
    "matrices",
    "matrices_sha",
    "project_xy",
    "solomon_point",
]

EARTH_RADIUS_M = 6_371_000.0
METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True, slots=True)
class TravelModel:
    """Road distance = great-circle distance x ``road_factor``; time at ``speed_kmh``."""

    speed_kmh: float = 30.0
    road_factor: float = 1.3

    @property
    def name(self) -> str:
        return f"haversine-v1(speed_kmh={self.speed_kmh},road_factor={self.road_factor})"

    def seconds_per_metre(self) -> float:
        return 3.6 / self.speed_kmh


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


def matrices(
    points: Sequence[tuple[float, float]], model: TravelModel
) -> tuple[list[list[int]], list[list[int]]]:
    """``(durations s, distances m)`` between every pair of ``(lat, lon)`` points."""
    p = np.radians(np.asarray(points, dtype=np.float64).reshape(-1, 2))
    lat, lon = p[:, 0], p[:, 1]
    dlat = lat[None, :] - lat[:, None]
    dlon = lon[None, :] - lon[:, None]
    h = np.sin(dlat / 2) ** 2 + np.cos(lat)[:, None] * np.cos(lat)[None, :] * np.sin(dlon / 2) ** 2
    metres = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))) * model.road_factor
    dist = np.rint(metres).astype(np.int64)
    dur = np.rint(metres * model.seconds_per_metre()).astype(np.int64)
    return dur.tolist(), dist.tolist()


def matrices_sha(durations: list[list[int]], distances: list[list[int]]) -> str:
    h = hashlib.sha256()
    for m in (durations, distances):
        h.update(np.asarray(m, dtype=np.int64).tobytes())
    return h.hexdigest()


def project_xy(
    points: Sequence[tuple[float, float]], origin: tuple[float, float]
) -> list[tuple[float, float]]:
    """Local flat ``(x, y)`` metres around ``origin`` (a search hint only, never a cost)."""
    k = math.cos(math.radians(origin[0]))
    return [
        (
            round((lon - origin[1]) * METRES_PER_DEGREE * k, 1),
            round((lat - origin[0]) * METRES_PER_DEGREE, 1),
        )
        for lat, lon in points
    ]


def solomon_point(
    x: float, y: float, origin_xy: tuple[float, float], depot: tuple[float, float], unit_m: float
) -> tuple[float, float]:
    """A Solomon ``(x, y)`` as ``(lat, lon)``: the file's depot on ``depot``, 1 unit = ``unit_m``.

    Deterministic (rounded to 7 decimals, about 1 cm)."""
    dx, dy = (x - origin_xy[0]) * unit_m, (y - origin_xy[1]) * unit_m
    lat = depot[0] + dy / METRES_PER_DEGREE
    lon = depot[1] + dx / (METRES_PER_DEGREE * math.cos(math.radians(depot[0])))
    return round(lat, 7), round(lon, 7)
