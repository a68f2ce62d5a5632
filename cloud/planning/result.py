"""What a planner returns: routes with times, unplanned orders with reasons, costs, status."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cloud.planning.problem import FleetKind

__all__ = [
    "CostBreakdown",
    "PlanResult",
    "PlanStatus",
    "PlannedRoute",
    "PlannedStop",
    "UnplannedOrder",
    "UnplannedReason",
]


class PlanStatus(StrEnum):
    """``complete``: every required order planned. ``partial``: some required order could
    not be planned (each listed with its reason). ``no_solution``: nothing usable was found
    in time; the result then has no routes at all."""

    COMPLETE = "complete"
    PARTIAL = "partial"
    NO_SOLUTION = "no_solution"


class UnplannedReason(StrEnum):
    IMPOSSIBLE_WINDOW = "impossible window"
    NO_CAPACITY = "no capacity"
    NO_SKILLED_VEHICLE = "no vehicle with the required skills"
    PINNED_VEHICLE_CANNOT_SERVE = "pinned vehicle cannot serve it"
    POSTPONED = "postponed: serving costs more than postponing"
    NO_FEASIBLE_ROUTE = "no feasible route found"
    NO_SOLUTION = "no solution found in time"


@dataclass(frozen=True, slots=True)
class PlannedStop:
    """An order on a route. Times are ``None`` on a carrier's route (it sequences itself)."""

    order_id: str
    location: int
    arrival: int | None
    service_start: int | None
    departure: int | None


@dataclass(frozen=True, slots=True)
class PlannedRoute:
    vehicle_id: str
    fleet: str
    kind: FleetKind
    stops: tuple[PlannedStop, ...]
    start_time: int | None
    end_time: int | None
    distance: int
    cost: int

    @property
    def order_ids(self) -> tuple[str, ...]:
        return tuple(s.order_id for s in self.stops)


@dataclass(frozen=True, slots=True)
class UnplannedOrder:
    order_id: str
    reason: UnplannedReason


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """The plan's operational cost in money units, by kind. ``total`` is their sum."""

    fixed: int = 0
    distance: int = 0
    time: int = 0
    stops: int = 0
    stability: int = 0
    postponement: int = 0

    @property
    def total(self) -> int:
        return (
            self.fixed + self.distance + self.time + self.stops + self.stability + self.postponement
        )


@dataclass(frozen=True, slots=True)
class PlanResult:
    """A whole plan, or a clear ``no_solution``. ``objective`` is what the search minimised:
    ``cost.total`` plus the hierarchical vehicle cost and required-drop penalties."""

    status: PlanStatus
    routes: tuple[PlannedRoute, ...]
    unplanned: tuple[UnplannedOrder, ...]
    cost: CostBreakdown
    objective: int
    solver: str
    seconds: float
    message: str = ""

    @property
    def vehicles_used(self) -> int:
        return len(self.routes)

    def route_of(self, vehicle_id: str) -> PlannedRoute | None:
        return next((r for r in self.routes if r.vehicle_id == vehicle_id), None)

    def vehicle_of(self) -> dict[str, str]:
        """Order id → vehicle id for every planned order."""
        return {s.order_id: r.vehicle_id for r in self.routes for s in r.stops}
