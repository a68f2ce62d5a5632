"""Travel times in the simulated city: what the planner estimates, and what really happens.

The planner's estimate is distance (times a detour factor) at a base speed. The truth adds
the hour's traffic, a lognormal noise per leg, and the timeline's jams (a factor inside the
jam's area while it lasts). Noise is drawn from a hash of the leg and its quarter hour, so
every strategy driving the same leg at the same time meets the same traffic.
"""

from __future__ import annotations

import math

from firmware_sim.hardware.modem import distance_km
from firmware_sim.world.city import World, hashed_rng

__all__ = ["TravelModel"]

Point = tuple[float, float]


class TravelModel:
    """Planner estimates and simulated truth for legs between two points."""

    def __init__(self, world: World) -> None:
        self.world = world
        t = world.scenario.travel
        self.base_kmh: float = t["base_kmh"]
        self.detour: float = t["detour"]
        self.noise_sigma: float = t["noise_sigma"]
        self.traffic: list[float] = t["traffic_by_hour"]

    def road_km(self, a: Point, b: Point) -> float:
        return distance_km(a, b) * self.detour

    def estimate_s(self, a: Point, b: Point, cruise_kmh: float | None = None) -> float:
        """The planner's estimate: road distance at the base (or vehicle's) speed."""
        return self.road_km(a, b) / min(self.base_kmh, cruise_kmh or self.base_kmh) * 3600

    def hour_factor(self, t_of_day: float) -> float:
        return self.traffic[int(t_of_day // 3600) % 24]

    def jam_factor(self, t_of_day: float, points: tuple[Point, ...]) -> float:
        factor = 1.0
        for e in self.world.events_at(t_of_day, "jam"):
            area = self.world.area_of(e)
            if area is None:
                continue
            if any(distance_km(p, area[:2]) <= area[2] for p in points):
                factor = max(factor, float(e.params.get("factor", 2.0)))
        return factor

    def traffic_factor(self, t_of_day: float, position: Point) -> float:
        """How much slower than the base speed a van at ``position`` moves now."""
        return self.hour_factor(t_of_day) * self.jam_factor(t_of_day, (position,))

    def actual_s(
        self, a: Point, b: Point, depart: float, *, cruise_kmh: float | None = None
    ) -> tuple[float, tuple[str, ...]]:
        """The true travel time of a leg leaving at ``depart`` (s of day), and its tags."""
        mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
        jam = self.jam_factor(depart, (a, mid, b))
        quarter = int(depart // 900)
        key = (round(a[0], 5), round(a[1], 5), round(b[0], 5), round(b[1], 5), quarter)
        noise = hashed_rng(self.world.seed, "leg", key).lognormvariate(
            -(self.noise_sigma**2) / 2, self.noise_sigma
        )
        seconds = self.estimate_s(a, b, cruise_kmh) * self.hour_factor(depart) * noise * jam
        return max(30.0, seconds) if a != b else 0.0, (("jam",) if jam > 1.0 else ())

    @staticmethod
    def log_ratio(actual: float, estimate: float) -> float:
        return math.log(max(actual, 1.0) / max(estimate, 1.0))
