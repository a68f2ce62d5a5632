"""The two baselines, played by simulation on the same seeded world as Wayline's day.

Both use the world's own answers — :meth:`World.attempt` for every doorstep and
:meth:`TravelModel.actual_s` for every leg (hour of day, noise, jams) — and the same
disruptions: a vehicle whose carrier is down stops for good (its remaining orders are not
served), a broken-down van stands still until it is repaired, then goes on. Service takes
the order's true time (90 s at most when nobody answers), and a vehicle early at a door
waits for the window. Nothing is re-planned in either:

* **static**: Wayline's own morning plan (the cloud's assignments right after ``/plan``,
  the 3PL's share dealt to its vans in contiguous runs) driven in that order all day. Each
  order known later (mid-day orders, the flash sale, anything the morning plan left out) is
  appended to the route of the vehicle with the fewest orders, as a dispatcher without a
  planner would; reschedules move the customer's window, not the sequence.
* **zones**: each fleet serves the districts the scenario gives it (``districts``), orders
  dealt round robin to the fleet's vehicles as they become known, and each vehicle goes to
  its nearest released order next (waiting at a door for the window).
"""

from __future__ import annotations

from typing import Any

from firmware_sim.day.outcomes import VehicleDay, Visit, figures, return_leg, window_of
from firmware_sim.world import Order, TravelModel, Vehicle, World

__all__ = ["static_baseline", "zones_baseline"]

MAX_STEPS = 10_000
NO_ANSWER_SERVICE_S = 90


def static_baseline(
    world: World, morning: dict[str, list[str]]
) -> tuple[dict[str, Any], list[VehicleDay]]:
    """``morning``: the cloud's morning assignments, vehicle (or 3PL fleet) id → order ids."""
    orders = {o.order_id: o for o in world.orders}
    routes: dict[str, list[Order]] = {v.vehicle_id: [] for v in world.vehicles}
    fleets = {
        v.fleet_id: [x for x in world.vehicles if x.fleet_id == v.fleet_id] for v in world.vehicles
    }
    for vid, oids in morning.items():
        known = [orders[o] for o in oids if o in orders]
        if vid in routes:
            routes[vid].extend(known)
        elif vid in fleets:  # a carrier planned as a whole: contiguous runs per van
            vans = fleets[vid]
            size = -(-len(known) // len(vans)) if known else 0
            for k, van in enumerate(vans):
                routes[van.vehicle_id].extend(known[k * size : (k + 1) * size])
    placed = {o.order_id for r in routes.values() for o in r}
    for o in world.orders:
        if o.order_id not in placed:
            vid = min(routes, key=lambda v: (len(routes[v]), v))
            routes[vid].append(o)
    days = [_drive_in_order(world, v, routes[v.vehicle_id]) for v in world.vehicles]
    return figures(world, days), days


def zones_baseline(world: World) -> tuple[dict[str, Any], list[VehicleDay]]:
    owner = {d: f.fleet_id for f in world.scenario.fleets for d in f.districts}
    default = world.scenario.fleets[0].fleet_id
    by_fleet: dict[str, list[Vehicle]] = {}
    for v in world.vehicles:
        by_fleet.setdefault(v.fleet_id, []).append(v)
    mine: dict[str, list[Order]] = {v.vehicle_id: [] for v in world.vehicles}
    dealt: dict[str, int] = {}
    for o in world.orders:
        fleet = owner.get(o.district, default)
        n = dealt.get(fleet, 0)
        dealt[fleet] = n + 1
        mine[by_fleet[fleet][n % len(by_fleet[fleet])].vehicle_id].append(o)
    days = [_drive_nearest(world, v, mine[v.vehicle_id]) for v in world.vehicles]
    return figures(world, days), days


def _down_until(world: World, v: Vehicle, t: float) -> float | None:
    """If ``v`` cannot work at ``t``: when it can again (inf: not today)."""
    e = world.vehicle_down(v, t)
    if e is None:
        return None
    return float("inf") if e.kind == "carrier_outage" else float(e.until)


def _serve(
    world: World, travel: TravelModel, d: VehicleDay, here: tuple[float, float], t: float, o: Order
) -> float | None:
    """Drive to ``o`` and serve it; the time it is done, or None if the vehicle stopped."""
    v = d.vehicle
    secs, _ = travel.actual_s(here, (o.lat, o.lon), t, cruise_kmh=v.cruise_kmh)
    for e in world.scenario.events:  # a breakdown on the way: stand still until repaired
        if (
            e.kind == "breakdown"
            and e.params.get("vehicle") == v.vehicle_id
            and t <= e.at < t + secs
        ):
            secs += e.until - e.at
    d.km += travel.road_km(here, (o.lat, o.lon))
    t += secs
    t = max(t, float(window_of(o)[0]), float(o.released_at))
    if _down_until(world, v, t) == float("inf"):
        return None
    ok, reason = world.attempt(o)
    done = t + (o.service_s if ok else min(o.service_s, NO_ANSWER_SERVICE_S))
    d.visits.append(Visit(o.order_id, v.vehicle_id, t, done, ok, reason))
    return done


def _drive_in_order(world: World, v: Vehicle, route: list[Order]) -> VehicleDay:
    travel = TravelModel(world)
    d = VehicleDay(v)
    t, here = float(world.scenario.start), v.depot
    for o in route:
        if t >= world.scenario.end + 3600:
            break
        up = _down_until(world, v, t)
        if up is not None:
            if up == float("inf"):
                break
            t = up
        t = max(t, float(o.released_at))
        done = _serve(world, travel, d, here, t, o)
        if done is None:
            break
        t, here = done, (o.lat, o.lon)
    return_leg(travel, d, here, t)
    return d


def _drive_nearest(world: World, v: Vehicle, orders: list[Order]) -> VehicleDay:
    travel = TravelModel(world)
    d = VehicleDay(v)
    t, here = float(world.scenario.start), v.depot
    todo = list(orders)
    for _ in range(MAX_STEPS):
        if not todo or t >= world.scenario.end + 3600:
            break
        up = _down_until(world, v, t)
        if up is not None:
            if up == float("inf"):
                break
            t = up
            continue
        released = [o for o in todo if o.released_at <= t]
        if not released:
            t = float(min(o.released_at for o in todo))
            continue
        o = min(released, key=lambda x: travel.road_km(here, (x.lat, x.lon)))
        todo.remove(o)
        done = _serve(world, travel, d, here, t, o)
        if done is None:
            break
        t, here = done, (o.lat, o.lon)
    return_leg(travel, d, here, t)
    return d
