"""Routes: the plan the cloud sends down and the sequence the vehicle reports back."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from protocol.base import DeviceId, EpochS, Id, Location, ShortText, TimeWindow, WireModel

__all__ = [
    "BreakRule",
    "Parcel",
    "PlannedStop",
    "RoutePlan",
    "RouteSequenceReport",
    "SequenceReason",
    "SequencedStop",
]

_Kg = Annotated[float, Field(ge=0.0, le=10_000.0, allow_inf_nan=False)]


class Parcel(WireModel):
    """A parcel to hand over or collect at a stop; ``load_position`` 1 is nearest the door."""

    parcel_id: Id
    barcode: Annotated[str, Field(min_length=1, max_length=64)]
    weight_kg: _Kg = 0.0
    volume_l: _Kg = 0.0
    load_position: Annotated[int, Field(ge=1)] | None = None
    cold_chain: bool = False


class PlannedStop(WireModel):
    """One stop of a plan: where, when, how long, and which parcels."""

    stop_id: Id
    order_id: Id
    kind: Literal["delivery", "pickup"] = "delivery"
    location: Location
    window: TimeWindow | None = None
    service_s: Annotated[int, Field(ge=0, le=86_400)] = 0
    parcels: tuple[Parcel, ...] = ()
    customer: ShortText | None = None
    note: ShortText | None = None


class BreakRule(WireModel):
    """The driver's break: it starts between two times and lasts ``duration_s``."""

    earliest: EpochS
    latest: EpochS
    duration_s: Annotated[int, Field(ge=0, le=14_400)]

    @model_validator(mode="after")
    def _ordered(self) -> BreakRule:
        if self.latest < self.earliest:
            raise ValueError("break's latest start is before its earliest")
        return self


class RoutePlan(WireModel):
    """The cloud's plan for one vehicle's day. Only a newer ``version`` replaces the stop set."""

    route_id: Id
    vehicle_id: DeviceId
    version: Annotated[int, Field(ge=1)]
    day: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    depot: Location
    start_at: EpochS
    end_at: EpochS | None = None
    capacity_kg: _Kg | None = None
    stops: Annotated[tuple[PlannedStop, ...], Field(max_length=2000)]
    break_rule: BreakRule | None = None

    @model_validator(mode="after")
    def _unique_stops(self) -> RoutePlan:
        ids = [s.stop_id for s in self.stops]
        if len(set(ids)) != len(ids):
            raise ValueError("a stop id appears twice in the plan")
        return self


SequenceReason = Literal[
    "plan",
    "delivered",
    "failed",
    "skipped",
    "picked_up",
    "stop_added",
    "stop_removed",
    "window_changed",
    "delay",
    "manual",
    "break",
]


class SequencedStop(WireModel):
    """A remaining stop in the vehicle's own order, with its operational ETA."""

    stop_id: Id
    eta: EpochS
    late_s: Annotated[int, Field(ge=0)] = 0


class RouteSequenceReport(WireModel):
    """The vehicle's current order of remaining stops, why it changed, and how it was found."""

    route_id: Id
    plan_version: Annotated[int, Field(ge=1)]
    revision: Annotated[int, Field(ge=0)]
    reason: SequenceReason
    order: tuple[SequencedStop, ...]
    solver: Annotated[str, Field(max_length=32)]
    seconds: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    note: ShortText | None = None
