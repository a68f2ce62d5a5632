"""The synthetic city of a scenario: districts, customers, orders and the fleets' vehicles.

Everything is drawn from the scenario's seed, so a seed is a world: the same customers,
the same orders, the same outcome for every delivery attempt. Outcomes and travel noise are
drawn from a hash of (seed, what, when), never from a shared stream, so the order in which
a strategy asks does not change the answers: Wayline and both baselines face the same day.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Any

from firmware_sim.world.scenario import Event, Scenario

__all__ = ["Customer", "Order", "Vehicle", "World", "hashed_rng", "offset_km"]

FAIL_REASONS = ("absent", "refused", "address_problem", "no_access")


def hashed_rng(seed: int, *key: object) -> random.Random:
    """A generator that depends only on ``seed`` and ``key``."""
    digest = hashlib.sha256(repr((seed, *key)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def offset_km(origin: tuple[float, float], north_km: float, east_km: float) -> tuple[float, float]:
    lat = origin[0] + north_km / 111.32
    lon = origin[1] + east_km / (111.32 * math.cos(math.radians(origin[0])))
    return (lat, lon)


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    lat: float
    lon: float
    district: int
    service_median_s: float
    fail_prob: float


@dataclass(frozen=True, slots=True)
class Order:
    """One stop to make: a delivery or a return to pick up, with its time window."""

    order_id: str
    customer_id: str
    kind: str
    """``delivery`` or ``pickup``."""
    lat: float
    lon: float
    district: int
    window_start: int
    window_end: int
    """Seconds after midnight."""
    service_s: int
    """The true service time of this stop (the planner does not know it)."""
    released_at: int
    """When the order becomes known: the start of the day, or later for mid-day orders."""
    reschedule_at: int | None = None
    new_window: tuple[int, int] | None = None
    """A reschedule: at ``reschedule_at`` the customer moves the window to ``new_window``."""
    spike: bool = False


@dataclass(frozen=True, slots=True)
class Vehicle:
    vehicle_id: str
    fleet_id: str
    kind: str
    depot: tuple[float, float]
    capacity: int
    cruise_kmh: float
    cost_per_km: float
    cost_per_hour: float
    cost_per_stop: float


class World:
    """The city, its order book and the fleets' vehicles for one scenario and seed."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.seed = scenario.seed
        rng = random.Random(scenario.seed)
        self.district_centers = self._districts(rng)
        self.customers = self._customers(rng)
        self.vehicles = self._vehicles()
        self.orders = self._orders(rng)

    # -- building ------------------------------------------------------------------------

    def _districts(self, rng: random.Random) -> list[tuple[float, float]]:
        s = self.scenario
        centers = []
        for d in range(s.districts):
            angle = 2 * math.pi * d / s.districts + rng.uniform(-0.2, 0.2)
            r = s.radius_km * (0.55 if s.districts > 1 else 0.0)
            centers.append(offset_km(s.center, r * math.cos(angle), r * math.sin(angle)))
        return centers

    def _customers(self, rng: random.Random) -> list[Customer]:
        s, o = self.scenario, self.scenario.orders
        spread = s.radius_km / max(2.0, math.sqrt(s.districts))
        out = []
        for i in range(s.customers):
            district = rng.randrange(s.districts)
            lat, lon = offset_km(
                self.district_centers[district], rng.gauss(0, spread), rng.gauss(0, spread)
            )
            fail_mean = max(1e-3, min(0.95, o["fail_rate"]))
            k = 8.0  # concentration: most customers near the mean, a few often absent
            out.append(
                Customer(
                    customer_id=f"c{i:05d}",
                    lat=round(lat, 6),
                    lon=round(lon, 6),
                    district=district,
                    service_median_s=round(o["service_median_s"] * rng.lognormvariate(0, 0.3), 1),
                    fail_prob=round(rng.betavariate(fail_mean * k, (1 - fail_mean) * k), 4),
                )
            )
        return out

    def _vehicles(self) -> list[Vehicle]:
        depots = {d.depot_id: (d.lat, d.lon) for d in self.scenario.depots}
        return [
            Vehicle(
                vehicle_id=f"{f.fleet_id}-{n + 1}",
                fleet_id=f.fleet_id,
                kind=f.kind,
                depot=depots[f.depot],
                capacity=f.capacity,
                cruise_kmh=f.cruise_kmh,
                cost_per_km=f.cost_per_km,
                cost_per_hour=f.cost_per_hour,
                cost_per_stop=f.cost_per_stop,
            )
            for f in self.scenario.fleets
            for n in range(f.vehicles)
        ]

    def _orders(self, rng: random.Random) -> list[Order]:
        s, o = self.scenario, self.scenario.orders
        out = [self._order(rng, f"o{i:05d}", s.start, False) for i in range(o["count"])]
        n_mid = round(o["count"] * o["midday_share"])
        for i in range(n_mid):
            t = rng.randrange(s.start + 1800, max(s.start + 1801, s.end - 3 * 3600))
            out.append(self._order(rng, f"m{i:05d}", t, False))
        for event in s.events:
            if event.kind != "order_spike":
                continue
            extra = round(o["count"] * float(event.params.get("extra_share", 0.0)))
            for i in range(extra):
                t = rng.randrange(event.at, max(event.at + 1, event.until))
                out.append(self._order(rng, f"x{event.at // 60:04d}-{i:05d}", t, True))
        return sorted(out, key=lambda x: (x.released_at, x.order_id))

    def _order(self, rng: random.Random, order_id: str, released: int, spike: bool) -> Order:
        s, o = self.scenario, self.scenario.orders
        c = rng.choice(self.customers)
        width = 60 * int(rng.choice(o["window_minutes"]))
        earliest = released if released > s.start else s.start
        latest_start = max(earliest, s.end - width)
        start = (
            earliest + rng.randrange(0, latest_start - earliest + 1, 900)
            if (latest_start > earliest)
            else earliest
        )
        if released > s.start:
            start = max(start, released + 1800)
        end = min(start + width, s.end + 3600)
        service = max(30, round(c.service_median_s * rng.lognormvariate(0, o["service_sigma"])))
        kind = "pickup" if rng.random() < o["pickup_share"] else "delivery"
        reschedule_at = new_window = None
        if rng.random() < o["reschedule_share"] and end + 1800 < s.end:
            reschedule_at = max(released, start - 3600)
            shift = 60 * rng.choice((60, 90, 120))
            new_window = (min(start + shift, s.end - 1800), min(end + shift, s.end + 3600))
        return Order(
            order_id=order_id,
            customer_id=c.customer_id,
            kind=kind,
            lat=c.lat,
            lon=c.lon,
            district=c.district,
            window_start=start,
            window_end=end,
            service_s=service,
            released_at=released,
            reschedule_at=reschedule_at,
            new_window=new_window,
            spike=spike,
        )

    # -- asking the world ------------------------------------------------------------------

    def customer(self, customer_id: str) -> Customer:
        return self._by_id()[customer_id]

    def _by_id(self) -> dict[str, Customer]:
        cache: dict[str, Customer] | None = getattr(self, "_cache", None)
        if cache is None:
            cache = {c.customer_id: c for c in self.customers}
            self._cache = cache
        return cache

    def district_of(self, lat: float, lon: float) -> int:
        return min(
            range(len(self.district_centers)),
            key=lambda d: (
                (self.district_centers[d][0] - lat) ** 2
                + ((self.district_centers[d][1] - lon) * math.cos(math.radians(lat))) ** 2
            ),
        )

    def attempt(self, order: Order, attempt: int = 1) -> tuple[bool, str | None]:
        """Whether delivery attempt ``attempt`` succeeds, and the failure reason if not."""
        if order.kind == "pickup":
            p = self.customer(order.customer_id).fail_prob / 2
        else:
            p = self.customer(order.customer_id).fail_prob
        rng = hashed_rng(self.seed, "attempt", order.order_id, attempt)
        if rng.random() >= p:
            return True, None
        return False, rng.choice(FAIL_REASONS)

    def events_at(self, t_of_day: float, kind: str | None = None) -> list[Event]:
        return [
            e
            for e in self.scenario.events
            if e.active(t_of_day) and (kind is None or e.kind == kind)
        ]

    def area_of(self, event: Event) -> tuple[float, float, float] | None:
        """(lat, lon, radius_km) of a dead zone or jam."""
        p = event.params
        if "district" in p:
            lat, lon = self.district_centers[int(p["district"])]
            spread = self.scenario.radius_km / max(2.0, math.sqrt(self.scenario.districts))
            return (lat, lon, float(p.get("radius_km", 1.6 * spread)))
        if "radius_km" in p:
            return (float(p["lat"]), float(p["lon"]), float(p["radius_km"]))
        return None

    def vehicle_down(self, vehicle: Vehicle, t_of_day: float) -> Event | None:
        """The outage or breakdown keeping ``vehicle`` off the road at ``t_of_day``."""
        for e in self.events_at(t_of_day):
            if e.kind == "carrier_outage" and e.params.get("fleet") == vehicle.fleet_id:
                return e
            if e.kind == "breakdown" and e.params.get("vehicle") == vehicle.vehicle_id:
                return e
        return None

    def dead_zones(self) -> list[dict[str, Any]]:
        """The timeline's dead zones in epoch seconds, as ``DeadZone`` keyword arguments."""
        out = []
        for i, e in enumerate(self.scenario.events):
            if e.kind != "dead_zone":
                continue
            area = self.area_of(e)
            assert area is not None
            out.append(
                {
                    "name": f"dead-zone-{i + 1}",
                    "kind": "hole",
                    "lat": area[0],
                    "lon": area[1],
                    "radius_km": area[2],
                    "start_s": self.scenario.epoch(e.at),
                    "end_s": self.scenario.epoch(e.until),
                }
            )
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "customers": len(self.customers),
            "orders": len(self.orders),
            "pickups": sum(o.kind == "pickup" for o in self.orders),
            "midday": sum(o.released_at > self.scenario.start for o in self.orders),
            "spike": sum(o.spike for o in self.orders),
            "reschedules": sum(o.reschedule_at is not None for o in self.orders),
            "vehicles": {f.fleet_id: f.vehicles for f in self.scenario.fleets},
        }
