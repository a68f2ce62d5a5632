"""The base of every wire model and the small value types they share.

Wire models are frozen, strict and refuse unknown fields: a receiver never guesses.
Times on the wire are integers: ``*_ms`` fields and ``at``/``ts`` are milliseconds since the
Unix epoch on the sender's clock; time-window bounds and ETAs are whole seconds since the epoch.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "DeviceId",
    "EpochMs",
    "EpochS",
    "Id",
    "Lat",
    "Location",
    "Lon",
    "ShortText",
    "TimeWindow",
    "WireModel",
]


class WireModel(BaseModel):
    """Frozen, strict, ``extra="forbid"``: the shape every message body takes."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")


DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
"""A device id: letters, digits, ``_ . -``; at most 64; never ``/ + #`` (it is a topic level)."""

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]
"""An identifier chosen by a caller (order, stop, parcel, route): printable, at most 128."""

ShortText = Annotated[str, Field(max_length=2000)]
EpochMs = Annotated[int, Field(ge=0, lt=2**53)]
EpochS = Annotated[int, Field(ge=0, lt=2**40)]
Lat = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Lon = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]


class Location(WireModel):
    """A point on the map, with the address a driver reads."""

    lat: Lat
    lon: Lon
    address: ShortText | None = None


class TimeWindow(WireModel):
    """When service may start: ``[start, end]`` in epoch seconds."""

    start: EpochS
    end: EpochS

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.end < self.start:
            raise ValueError("time window ends before it starts")
        return self
