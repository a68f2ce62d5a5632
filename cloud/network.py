"""The network: depots, and fleets of three kinds with their cost models and limits.

* ``own`` vans: terms ``cost_per_km``, ``cost_per_hour``, ``fixed_cost`` (cents); each van's
  spec has ``capacity``, ``shift_start_s``/``shift_end_s`` (seconds of the day) and
  ``skills`` (``refrigerated``, ``two_person``, ...). Planned as :class:`OwnVan`.
* ``3pl`` carriers: terms ``price_per_stop``, ``daily_stops``, ``cutoff_s`` (no new orders
  after it), ``on_time_rate`` and ``late_cost``: the planner sees
  ``price_per_stop + (1 - on_time_rate) * late_cost`` per stop, so a carrier with a worse
  record must be cheaper to win. The fleet itself is planned as one :class:`Carrier` (its id
  is the fleet id) that hands over at the depot; it sequences its own route.
* ``gig`` couriers: terms ``price_per_drop``; each courier's spec has ``capacity``,
  ``available_from_s``/``available_until_s`` and where it is (``lat``, ``lon``). Planned as
  :class:`GigCourier`.

A depot plans in its own IANA ``timezone`` and has a ``cutoff`` (local ``HH:MM``) at which its
day's morning plan runs by itself (:mod:`cloud.morning`); either may be left out to follow the
coordinator's defaults (:class:`cloud.morning.MorningSettings`). Its planning days are its
local days (:mod:`cloud.local_days`).

A fleet (a carrier, say) or a single vehicle can go down mid-day: it then plans nothing new
and its open orders move (:mod:`cloud.dispatch`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cloud.errors import InvalidError
from cloud.local_days import check_cutoff, check_zone

__all__ = [
    "CarrierTerms",
    "CourierSpec",
    "DepotIn",
    "FleetIn",
    "GigTerms",
    "OwnTerms",
    "VanSpec",
    "VehicleIn",
    "first_error",
    "parse_depot",
    "validate_spec",
    "validate_terms",
]

_NonNeg = Annotated[int, Field(ge=0)]
_DaySeconds = Annotated[int, Field(ge=0, le=2 * 86_400)]
_Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DepotIn(_Strict):
    depot_id: _Name
    name: Annotated[str, Field(max_length=200)] = ""
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    address: Annotated[str, Field(max_length=500)] | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None
    """IANA zone of the depot's planning days (None: the coordinator's default)."""
    cutoff: Annotated[str, Field(max_length=5)] | None = None
    """Local ``HH:MM`` at which the day's morning plan runs (None: the coordinator's default)."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        return None if v is None else check_zone(v)

    @field_validator("cutoff")
    @classmethod
    def _cutoff(cls, v: str | None) -> str | None:
        return None if v is None else check_cutoff(v)


class OwnTerms(_Strict):
    cost_per_km: _NonNeg = 0
    cost_per_hour: _NonNeg = 0
    fixed_cost: _NonNeg = 0


class CarrierTerms(_Strict):
    price_per_stop: _NonNeg
    daily_stops: _NonNeg
    cutoff_s: _DaySeconds = 86_400
    on_time_rate: Annotated[float, Field(ge=0, le=1)] = 1.0
    late_cost: _NonNeg = 0

    def effective_price(self) -> int:
        return self.price_per_stop + round((1 - self.on_time_rate) * self.late_cost)


class GigTerms(_Strict):
    price_per_drop: _NonNeg


class VanSpec(_Strict):
    capacity: _NonNeg
    shift_start_s: _DaySeconds
    shift_end_s: _DaySeconds
    skills: tuple[Annotated[str, Field(max_length=64)], ...] = ()


class CourierSpec(_Strict):
    capacity: _NonNeg
    available_from_s: _DaySeconds
    available_until_s: _DaySeconds
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    skills: tuple[Annotated[str, Field(max_length=64)], ...] = ()


class FleetIn(_Strict):
    fleet_id: _Name
    kind: Literal["own", "3pl", "gig"]
    depot_id: _Name
    terms: dict[str, Any]


class VehicleIn(_Strict):
    vehicle_id: _Name
    spec: dict[str, Any]


_TERMS: dict[str, type[_Strict]] = {"own": OwnTerms, "3pl": CarrierTerms, "gig": GigTerms}
_SPECS: dict[str, type[_Strict]] = {"own": VanSpec, "gig": CourierSpec}


def first_error(exc: ValidationError, what: str) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    msg = str(err["msg"]).removeprefix("Value error, ")
    where = ".".join(str(p) for p in err["loc"])
    return f"{what}: {where}: {msg}" if where else f"{what}: {msg}"


def parse_depot(raw: Any) -> DepotIn:
    """A depot as a caller sends it; one line naming the field when it does not hold."""
    try:
        return DepotIn.model_validate(raw)
    except ValidationError as exc:
        did = raw.get("depot_id") if isinstance(raw, dict) else None
        raise InvalidError(first_error(exc, f"depot {did!r}" if did else "depot")) from None


def validate_terms(kind: str, terms: dict[str, Any]) -> dict[str, Any]:
    """The fleet's terms, validated for its kind and with defaults filled in."""
    try:
        return _TERMS[kind].model_validate(terms).model_dump(mode="json")
    except ValidationError as exc:
        raise InvalidError(first_error(exc, f"{kind} fleet terms")) from None


def validate_spec(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A vehicle's spec for its fleet's kind (a 3PL fleet has no vehicles of its own)."""
    if kind not in _SPECS:
        raise InvalidError("a 3PL fleet is planned as a whole; it takes no vehicles")
    try:
        model = _SPECS[kind].model_validate(spec)
    except ValidationError as exc:
        raise InvalidError(first_error(exc, f"{kind} vehicle spec")) from None
    data = model.model_dump(mode="json")
    start, end = (
        ("shift_start_s", "shift_end_s")
        if kind == "own"
        else ("available_from_s", "available_until_s")
    )
    if data[end] < data[start]:
        raise InvalidError(f"{kind} vehicle spec: {end} is before {start}")
    return data
