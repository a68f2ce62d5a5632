"""Facts from the field: stop events, parcel scans and exception reports.

Facts are final (DESIGN rule 4): once the cloud applies a delivered or failed stop event,
no plan moves that stop again.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from protocol.base import DeviceId, EpochMs, Id, Lat, Lon, ShortText, WireModel

__all__ = [
    "ExceptionReport",
    "FailReason",
    "ParcelScan",
    "ProofOfDelivery",
    "ScanResult",
    "StopEvent",
    "StopEventType",
]

StopEventType = Literal["arrived", "delivered", "failed", "picked_up", "skipped"]
FailReason = Literal["absent", "address_problem", "refused", "damaged", "no_access", "other"]
ScanResult = Literal[
    "ok", "wrong_container", "unknown", "cancelled", "duplicate", "other_depot", "loaded"
]
_Barcode = Annotated[str, Field(min_length=1, max_length=64)]


class ProofOfDelivery(WireModel):
    """What shows a hand-over happened: who took it, their signature, a photo, the barcodes.

    The photo stays on the gateway; the wire carries its SHA-256 and size.
    """

    recipient_name: Annotated[str, Field(max_length=120)] | None = None
    signature_svg: Annotated[str, Field(max_length=32_000)] | None = None
    photo_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    photo_bytes: Annotated[int, Field(ge=0)] | None = None
    barcodes: Annotated[tuple[_Barcode, ...], Field(max_length=200)] = ()


class StopEvent(WireModel):
    """Something that happened at a stop. ``event_id`` is unique on the device."""

    event_id: Id
    route_id: Id
    plan_version: Annotated[int, Field(ge=1)]
    stop_id: Id
    type: StopEventType
    at: EpochMs
    reason: FailReason | None = None
    note: ShortText | None = None
    proof: ProofOfDelivery | None = None
    lat: Lat | None = None
    lon: Lon | None = None

    @model_validator(mode="after")
    def _reason_fits_type(self) -> StopEvent:
        if self.type == "failed" and self.reason is None:
            raise ValueError("a failed stop needs a reason")
        if self.type not in ("failed", "skipped") and self.reason is not None:
            raise ValueError(f"a {self.type} stop takes no failure reason")
        if self.proof is not None and self.type not in ("delivered", "picked_up"):
            raise ValueError("proof of delivery belongs to delivered or picked_up")
        return self


class ParcelScan(WireModel):
    """A barcode read at a depot or in a van, and what it was found to be."""

    scan_id: Id
    barcode: _Barcode
    at: EpochMs
    result: ScanResult
    parcel_id: Id | None = None
    depot_id: DeviceId | None = None
    vehicle_id: DeviceId | None = None
    container: Annotated[str, Field(max_length=64)] | None = None
    position: Annotated[int, Field(ge=1)] | None = None


_Scalar = str | int | Annotated[float, Field(allow_inf_nan=False)] | bool | None


class ExceptionReport(WireModel):
    """Something a device could not settle alone: a dead parcel, a missing one, a breakdown."""

    exception_id: Id
    category: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    severity: Literal["info", "warning", "critical"]
    at: EpochMs
    detail: ShortText
    stop_id: Id | None = None
    parcel_id: Id | None = None
    vehicle_id: DeviceId | None = None
    data: Annotated[dict[Annotated[str, Field(max_length=64)], _Scalar], Field(max_length=32)] = (
        Field(default_factory=dict)
    )
