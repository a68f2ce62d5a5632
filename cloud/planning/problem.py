"""The planning problem: locations with travel matrices, orders, a mixed fleet, a current plan.

Units are the caller's, as long as they are consistent integers: the reference is **time in
seconds, distance in metres, money in cents**. ``durations[a][b]`` and ``distances[a][b]``
are the travel time and distance from location ``a`` to location ``b`` (not necessarily
symmetric). Costs per km apply per 1,000 distance units, costs per hour per 3,600 time units,
each leg rounded to the nearest unit. Times (windows, shifts, ``now``) are on one clock.

Three kinds of vehicles, each with a ``fleet`` name for reporting:

* :class:`OwnVan` - our van: fixed cost when used, cost per km and per hour (charged on
  driving and service time, not on waiting), a shift, a capacity, skills; starts at ``start``
  (its depot unless it is already out) and ends at its depot.
* :class:`Carrier` - a 3PL: takes parcels at its hand-over depot, charges per stop, takes at
  most ``daily_stops`` stops and no *new* order once ``now`` is past ``cutoff`` (orders it
  already has in the current plan stay possible). It sequences its own route, so no times.
* :class:`GigCourier` - a crowd courier: price per drop, small capacity, available in a
  window, starts where it is (with the parcels), does not come back; deliveries only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from cloud.planning.errors import InvalidProblem

__all__ = [
    "Carrier",
    "FleetKind",
    "GigCourier",
    "Order",
    "OrderKind",
    "OwnVan",
    "PlanningProblem",
    "Vehicle",
]


class OrderKind(StrEnum):
    """A delivery leaves the depot on the vehicle; a pickup (return) comes back on it."""

    DELIVERY = "delivery"
    PICKUP = "pickup"


class FleetKind(StrEnum):
    OWN = "own"
    CARRIER = "carrier"
    GIG = "gig"


@dataclass(frozen=True, slots=True)
class Order:
    """One stop to serve. Service must start inside ``[ready, due]`` (``due=None``: open)."""

    id: str
    location: int
    demand: int = 0
    kind: OrderKind = OrderKind.DELIVERY
    ready: int = 0
    due: int | None = None
    service: int = 0
    optional: bool = False
    postponement_cost: int = 0
    skills: frozenset[str] = frozenset()
    pinned_vehicle: str | None = None


@dataclass(frozen=True, slots=True)
class OwnVan:
    """A van of our own fleet."""

    kind: ClassVar[FleetKind] = FleetKind.OWN
    id: str
    depot: int
    capacity: int
    shift_start: int
    shift_end: int
    fixed_cost: int = 0
    cost_per_km: int = 0
    cost_per_hour: int = 0
    skills: frozenset[str] = frozenset()
    start: int | None = None
    fleet: str = "own"


@dataclass(frozen=True, slots=True)
class Carrier:
    """A 3PL carrier: per-stop price, a daily stop capacity and a cut-off for new orders."""

    kind: ClassVar[FleetKind] = FleetKind.CARRIER
    id: str
    depot: int
    price_per_stop: int
    daily_stops: int
    cutoff: int
    skills: frozenset[str] = frozenset()
    fleet: str = "3pl"


@dataclass(frozen=True, slots=True)
class GigCourier:
    """A gig courier: per-drop price, small capacity, an availability window, no return."""

    kind: ClassVar[FleetKind] = FleetKind.GIG
    id: str
    start: int
    capacity: int
    available_from: int
    available_until: int
    price_per_drop: int
    skills: frozenset[str] = frozenset()
    fleet: str = "gig"


Vehicle = OwnVan | Carrier | GigCourier


@dataclass(frozen=True, slots=True)
class PlanningProblem:
    """Everything a planner needs. Validated on construction (raises :class:`InvalidProblem`).

    ``coordinates`` (optional, one ``(x, y)`` per location) are only a search hint for PyVRP's
    geometric moves; costs always come from the matrices.

    ``current_plan`` maps a vehicle id to its current sequence of order ids (the warm start);
    orders no longer in ``orders`` are ignored there. ``stability_cost`` is charged for each
    order planned on a vehicle other than the one it is on in ``current_plan``.
    """

    durations: Sequence[Sequence[int]]
    distances: Sequence[Sequence[int]]
    orders: tuple[Order, ...]
    vehicles: tuple[Vehicle, ...]
    now: int = 0
    coordinates: Sequence[tuple[float, float]] | None = None
    current_plan: Mapping[str, Sequence[str]] = field(default_factory=dict)
    stability_cost: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "orders", tuple(self.orders))
        object.__setattr__(self, "vehicles", tuple(self.vehicles))
        _validate(self)

    @property
    def num_locations(self) -> int:
        return len(self.durations)

    def current_vehicle_of(self) -> dict[str, str]:
        """Order id → the vehicle id it is on in the current plan."""
        return {o: v for v, seq in self.current_plan.items() for o in seq}


def _validate(p: PlanningProblem) -> None:
    n = len(p.durations)
    if n == 0:
        raise InvalidProblem("durations matrix is empty")
    for name, matrix in (("durations", p.durations), ("distances", p.distances)):
        if len(matrix) != n or any(len(row) != n for row in matrix):
            raise InvalidProblem(f"{name} must be a square {n}x{n} matrix")
        if min(min(row) for row in matrix) < 0:
            raise InvalidProblem(f"{name} has a negative entry")
    if p.coordinates is not None and len(p.coordinates) != n:
        raise InvalidProblem(f"coordinates must have one (x, y) per location ({n})")
    if p.stability_cost < 0:
        raise InvalidProblem("stability_cost must be >= 0")

    def loc(what: str, index: int) -> None:
        if not isinstance(index, int) or not 0 <= index < n:
            raise InvalidProblem(f"{what}: unknown location index {index!r} (have {n})")

    vehicle_ids: set[str] = set()
    for v in p.vehicles:
        if v.id in vehicle_ids:
            raise InvalidProblem(f"duplicate vehicle id {v.id!r}")
        vehicle_ids.add(v.id)
        _validate_vehicle(v, loc)
    order_ids: set[str] = set()
    for o in p.orders:
        if o.id in order_ids:
            raise InvalidProblem(f"duplicate order id {o.id!r}")
        order_ids.add(o.id)
        loc(f"order {o.id!r}", o.location)
        for attr in ("demand", "ready", "service", "postponement_cost"):
            if getattr(o, attr) < 0:
                raise InvalidProblem(f"order {o.id!r}: negative {attr}")
        if o.due is not None and o.due < 0:
            raise InvalidProblem(f"order {o.id!r}: negative due")
        if o.pinned_vehicle is not None and o.pinned_vehicle not in vehicle_ids:
            raise InvalidProblem(f"order {o.id!r}: pinned to unknown vehicle {o.pinned_vehicle!r}")
        OrderKind(o.kind)
    seen: set[str] = set()
    for vid, seq in p.current_plan.items():
        if vid not in vehicle_ids:
            raise InvalidProblem(f"current plan names unknown vehicle {vid!r}")
        for oid in seq:
            if oid in seen:
                raise InvalidProblem(f"current plan has order {oid!r} twice")
            seen.add(oid)


def _validate_vehicle(v: Vehicle, check: Callable[[str, int], None]) -> None:
    what = f"vehicle {v.id!r}"
    if isinstance(v, OwnVan):
        check(what, v.depot)
        if v.start is not None:
            check(what, v.start)
        numbers = {
            "capacity": v.capacity,
            "shift_start": v.shift_start,
            "fixed_cost": v.fixed_cost,
            "cost_per_km": v.cost_per_km,
            "cost_per_hour": v.cost_per_hour,
        }
        if v.shift_end < v.shift_start:
            raise InvalidProblem(f"{what}: shift ends before it starts")
    elif isinstance(v, Carrier):
        check(what, v.depot)
        numbers = {"price_per_stop": v.price_per_stop, "daily_stops": v.daily_stops}
    elif isinstance(v, GigCourier):
        check(what, v.start)
        numbers = {
            "capacity": v.capacity,
            "available_from": v.available_from,
            "price_per_drop": v.price_per_drop,
        }
        if v.available_until < v.available_from:
            raise InvalidProblem(f"{what}: availability ends before it starts")
    else:
        raise InvalidProblem(f"unknown vehicle type {type(v).__name__}")
    for name, value in numbers.items():
        if value < 0:
            raise InvalidProblem(f"{what}: negative {name}")
