"""What a device says about itself: its connection state and its telemetry."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from protocol.base import EpochMs, Lat, Lon, ShortText, WireModel

__all__ = ["DeviceState", "Telemetry"]


class DeviceState(WireModel):
    """Online or offline. Retained on ``…/state``; the offline one is the device's last will."""

    status: Literal["online", "offline"]
    role: Literal["vehicle", "depot", "cloud"]
    at: EpochMs
    reason: ShortText | None = None
    agent: Annotated[str, Field(max_length=64)] | None = None


class Telemetry(WireModel):
    """A sample of the vehicle: where it is, how it moves, and its signals from the CAN bus."""

    at: EpochMs
    lat: Lat
    lon: Lon
    speed_kmh: Annotated[float, Field(ge=0.0, le=400.0, allow_inf_nan=False)]
    heading_deg: Annotated[float, Field(ge=0.0, lt=360.0, allow_inf_nan=False)]
    odometer_km: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    fuel_pct: Annotated[float, Field(ge=0.0, le=100.0, allow_inf_nan=False)] | None = None
    charge_pct: Annotated[float, Field(ge=0.0, le=100.0, allow_inf_nan=False)] | None = None
    door_open: bool
    ignition: bool
    temperature_c: Annotated[float, Field(ge=-60.0, le=90.0, allow_inf_nan=False)] | None = None
