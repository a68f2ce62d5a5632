"""What a strategy did with the day, and the figures every strategy is judged by.

A :class:`Visit` is one stop served (start of service, end, success); a :class:`VehicleDay`
is one vehicle's visits in order with the road kilometres it drove. :func:`figures` turns
them into the report's fields the same way for Wayline and both baselines:

* ``on_time_rate``: orders whose service started inside their window (the window the
  customer last chose), over all orders of the day; an order never served is not on time;
* ``cost`` (EUR): own vans ``cost_per_km x km + cost_per_hour x hours`` from the start of
  the day to the return to the depot; 3PL ``cost_per_stop`` per attempt; gig couriers
  ``cost_per_stop`` per attempt plus ``cost_per_km x km``;
* ``km``: road kilometres, the return to the depot included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from firmware_sim.world import Order, TravelModel, Vehicle, World

__all__ = ["VehicleDay", "Visit", "figures", "window_of"]


@dataclass(frozen=True, slots=True)
class Visit:
    order_id: str
    vehicle_id: str
    start: float
    """Service start, seconds after midnight."""
    done: float
    ok: bool
    reason: str | None = None


@dataclass
class VehicleDay:
    vehicle: Vehicle
    visits: list[Visit] = field(default_factory=list)
    km: float = 0.0
    back_at: float | None = None
    """When it was back at the depot (s of day); None: it never left."""


def window_of(order: Order) -> tuple[int, int]:
    """The window the customer last chose: a reschedule moves it."""
    return (
        order.new_window
        if order.new_window is not None
        else (
            order.window_start,
            order.window_end,
        )
    )


def figures(world: World, days: list[VehicleDay]) -> dict[str, Any]:
    orders = {o.order_id: o for o in world.orders}
    first: dict[str, Visit] = {}
    attempts = delivered = failed = 0
    for d in days:
        for v in d.visits:
            attempts += 1
            first.setdefault(v.order_id, v)
    served = {}
    for d in days:
        for v in d.visits:
            if v.ok and v.order_id not in served:
                served[v.order_id] = v
    delivered = len(served)
    failed = sum(1 for oid in first if oid not in served)
    on_time = sum(
        1
        for oid, v in served.items()
        if oid in orders and window_of(orders[oid])[0] <= v.start <= window_of(orders[oid])[1]
    )
    start = world.scenario.start
    cost = km = 0.0
    for d in days:
        veh, n = d.vehicle, len(d.visits)
        km += d.km
        if veh.kind == "own":
            if n:
                hours = max(0.0, (d.back_at or d.visits[-1].done) - start) / 3600
                cost += veh.cost_per_km * d.km + veh.cost_per_hour * hours
        else:
            cost += veh.cost_per_stop * n + veh.cost_per_km * d.km
    n_orders = len(orders)
    return {
        "orders": n_orders,
        "delivered": delivered,
        "failed": failed,
        "unserved": n_orders - delivered - failed,
        "attempts": attempts,
        "on_time": on_time,
        "on_time_rate": round(on_time / n_orders, 4) if n_orders else 0.0,
        "cost": round(cost, 2),
        "cost_per_delivered": round(cost / delivered, 2) if delivered else None,
        "km": round(km, 1),
    }


def return_leg(travel: TravelModel, d: VehicleDay, here: tuple[float, float], t: float) -> None:
    """Drive back to the depot from ``here`` at ``t``; add the kilometres and the time."""
    if not d.visits:
        return
    secs, _ = travel.actual_s(here, d.vehicle.depot, t, cruise_kmh=d.vehicle.cruise_kmh)
    d.km += travel.road_km(here, d.vehicle.depot)
    d.back_at = t + secs
