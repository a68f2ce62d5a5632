"""Completed work of a simulated day: every leg driven and every stop served, tagged.

:func:`simulate_work` plays a plain day in the world — each fleet works the orders of its
districts, each vehicle goes to its nearest released order next — and records what a
telematics log would hold: for each leg the planner's estimate and the observed time, for
each stop the observed service time. Records made during a disruption carry its tags:
``jam`` (the leg crossed a jam), ``breakdown`` (the van stood still mid-leg), ``outage``
(the carrier's scans arrived late, so its times are stale). Learning keeps them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware_sim.world.city import Order, Vehicle, World, hashed_rng
from firmware_sim.world.travel import TravelModel

__all__ = ["CompletedWork", "LegRecord", "ServiceRecord", "simulate_work"]

MAX_STEPS = 100_000


@dataclass(frozen=True, slots=True)
class LegRecord:
    vehicle_id: str
    depart: float
    """Seconds after midnight."""
    estimate_s: float
    observed_s: float
    tags: tuple[str, ...] = ()

    @property
    def hour(self) -> int:
        return int(self.depart // 3600) % 24


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    vehicle_id: str
    order_id: str
    customer_id: str
    start: float
    observed_s: float
    delivered: bool
    tags: tuple[str, ...] = ()


@dataclass
class CompletedWork:
    scenario: str
    seed: int
    legs: list[LegRecord] = field(default_factory=list)
    services: list[ServiceRecord] = field(default_factory=list)

    @property
    def disrupted_legs(self) -> int:
        return sum(1 for leg in self.legs if leg.tags)


def _assign(world: World) -> dict[str, list[Order]]:
    """Orders per vehicle: by the fleets' districts, round robin inside a fleet."""
    by_fleet: dict[str, list[Vehicle]] = {}
    for v in world.vehicles:
        by_fleet.setdefault(v.fleet_id, []).append(v)
    owner = {d: f.fleet_id for f in world.scenario.fleets for d in f.districts}
    default = world.scenario.fleets[0].fleet_id
    out: dict[str, list[Order]] = {v.vehicle_id: [] for v in world.vehicles}
    counters: dict[str, int] = {}
    for order in world.orders:
        fleet = owner.get(order.district, default)
        vans = by_fleet[fleet]
        n = counters.get(fleet, 0)
        counters[fleet] = n + 1
        out[vans[n % len(vans)].vehicle_id].append(order)
    return out


def simulate_work(world: World) -> CompletedWork:
    """Play the day with nearest-released-order routing and record the completed work."""
    travel = TravelModel(world)
    work = CompletedWork(world.scenario.name, world.seed)
    for vehicle in world.vehicles:
        _drive(world, travel, vehicle, _assign(world)[vehicle.vehicle_id], work)
    return work


def _drive(
    world: World, travel: TravelModel, v: Vehicle, orders: list[Order], work: CompletedWork
) -> None:
    s = world.scenario
    t = float(s.start)
    here = v.depot
    todo = list(orders)
    for _ in range(MAX_STEPS):
        if not todo or t >= s.end + 3600:
            return
        released = [o for o in todo if o.released_at <= t]
        if not released:
            t = float(min(o.released_at for o in todo))
            continue
        nxt = min(released, key=lambda o: travel.road_km(here, (o.lat, o.lon)))
        todo.remove(nxt)
        there = (nxt.lat, nxt.lon)
        estimate = travel.estimate_s(here, there, v.cruise_kmh)
        actual, tags = travel.actual_s(here, there, t, cruise_kmh=v.cruise_kmh)
        observed = actual
        breakdown = next(
            (
                e
                for e in world.scenario.events
                if e.kind == "breakdown"
                and e.params.get("vehicle") == v.vehicle_id
                and e.at < t + actual
                and e.until > t
            ),
            None,
        )
        down = world.vehicle_down(v, t + actual / 2)
        if breakdown is not None:
            observed += max(0.0, breakdown.until - max(t, breakdown.at))
            tags = (*tags, "breakdown")
        elif down is not None and down.kind == "carrier_outage":
            rng = hashed_rng(world.seed, "stale", v.vehicle_id, nxt.order_id)
            observed = actual * rng.uniform(2.0, 6.0)
            tags = (*tags, "outage")
        work.legs.append(LegRecord(v.vehicle_id, t, estimate, observed, tags))
        t += actual if "outage" in tags else observed
        window_start = nxt.new_window[0] if nxt.new_window else nxt.window_start
        t = max(t, float(window_start))
        ok, _ = world.attempt(nxt)
        service = float(nxt.service_s if ok else min(nxt.service_s, 90))
        work.services.append(
            ServiceRecord(
                v.vehicle_id,
                nxt.order_id,
                nxt.customer_id,
                t,
                service,
                ok,
                tuple(tag for tag in tags if tag != "jam"),
            )
        )
        t += service
        here = there
