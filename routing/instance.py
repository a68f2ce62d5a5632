"""Solomon and Homberger VRPTW instances: reading, distances, and checking solutions.

The routing core shared by the edge re-sequencer and the cloud planner. It knows nothing
of MQTT, SQLite or solvers: an instance is data, a route is a list of customer numbers.

Conventions (the literature's, and data/README.md's): distance is the Euclidean
distance in double precision, travel time equals distance, service must *start* inside
``[ready, due]`` (waiting allowed), and every route ends at the depot by the depot's due time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Customer",
    "Instance",
    "InstanceError",
    "RouteCheck",
    "check_route",
    "read_instance",
    "route_distance",
]


class InstanceError(ValueError):
    """An instance file that cannot be read as Solomon format."""


@dataclass(frozen=True, slots=True)
class Customer:
    """One row of the CUSTOMER table; number 0 is the depot."""

    number: int
    x: float
    y: float
    demand: int
    ready: int
    due: int
    service: int


@dataclass(frozen=True, slots=True)
class Instance:
    """A VRPTW instance: a depot (``customers[0]``), customers, a fleet limit and capacity."""

    name: str
    vehicles: int
    capacity: int
    customers: tuple[Customer, ...]

    @property
    def depot(self) -> Customer:
        return self.customers[0]

    @property
    def size(self) -> int:
        """Number of customers, the depot excluded."""
        return len(self.customers) - 1

    def distance(self, a: int, b: int) -> float:
        """Euclidean distance between customers ``a`` and ``b`` (double precision)."""
        ca, cb = self.customers[a], self.customers[b]
        return math.hypot(ca.x - cb.x, ca.y - cb.y)

    def distance_matrix(self) -> list[list[float]]:
        n = len(self.customers)
        return [[self.distance(i, j) for j in range(n)] for i in range(n)]


_NUMBERS = re.compile(r"^\s*\d+(\s+-?\d+(\.\d+)?)+\s*$")


def read_instance(path: str | Path) -> Instance:
    """Read a Solomon-format file (also used by Homberger).

    Raises :class:`InstanceError` with the reason when the file is not in that format.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise InstanceError(f"{p}: cannot read ({exc})") from exc
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InstanceError(f"{p}: empty file")
    name = lines[0].strip()
    try:
        vi = next(i for i, ln in enumerate(lines) if ln.strip().upper().startswith("VEHICLE"))
        ci = next(i for i, ln in enumerate(lines) if ln.strip().upper().startswith("CUSTOMER"))
        number, capacity = (int(v) for v in lines[vi + 2].split()[:2])
    except (StopIteration, ValueError, IndexError) as exc:
        raise InstanceError(f"{p}: no VEHICLE/CUSTOMER sections in Solomon format") from exc
    customers: list[Customer] = []
    for ln in lines[ci + 1 :]:
        if not _NUMBERS.match(ln):
            continue  # the column header line
        f = ln.split()
        if len(f) != 7:
            raise InstanceError(f"{p}: customer row needs 7 numbers: {ln.strip()!r}")
        try:
            no, x, y, demand, ready, due, service = (float(v) for v in f)
        except ValueError as exc:
            raise InstanceError(f"{p}: bad number in {ln.strip()!r}") from exc
        if int(no) != len(customers):
            raise InstanceError(f"{p}: customer {int(no)} out of order")
        customers.append(Customer(int(no), x, y, int(demand), int(ready), int(due), int(service)))
    if len(customers) < 2:
        raise InstanceError(f"{p}: needs a depot and at least one customer")
    return Instance(name=name, vehicles=number, capacity=capacity, customers=tuple(customers))


def route_distance(inst: Instance, route: Sequence[int]) -> float:
    """Length of depot → route → depot in double precision."""
    total, prev = 0.0, 0
    for c in route:
        total += inst.distance(prev, c)
        prev = c
    return total + inst.distance(prev, 0)


@dataclass(frozen=True, slots=True)
class RouteCheck:
    """What one route costs and breaks: distance, lateness past due dates, load."""

    distance: float
    lateness: float
    load: int
    late_stops: int
    returns_late: bool


def check_route(inst: Instance, route: Sequence[int], start: float | None = None) -> RouteCheck:
    """Simulate a route from the depot at ``start`` (default: the depot's ready time).

    Service starts at ``max(arrival, ready)``; lateness is the sum of ``start - due`` over
    customers served after their due time (soft windows). Raises :class:`InstanceError` for
    an unknown customer number or the depot inside the route.
    """
    n = len(inst.customers)
    t = float(inst.depot.ready if start is None else start)
    dist = late = 0.0
    load = late_stops = 0
    prev = 0
    for c in route:
        if not 0 < c < n:
            raise InstanceError(f"customer {c} is not in {inst.name}")
        d = inst.distance(prev, c)
        dist += d
        cust = inst.customers[c]
        t = max(t + d, float(cust.ready))
        if t > cust.due + 1e-9:
            late += t - cust.due
            late_stops += 1
        t += cust.service
        load += cust.demand
        prev = c
    d = inst.distance(prev, 0)
    dist += d
    t += d
    return RouteCheck(dist, late, load, late_stops, t > inst.depot.due + 1e-9)
