"""The envelope ``{v, id, src, seq, lc, ts, kind, body}`` and the kinds it can carry.

One envelope class per kind, joined in a union discriminated by ``kind``, so decoding tries
exactly one body model. ``seq`` numbers the sender's stream to one receiver, from 1, never
reused; control messages (``state``, ``ack``, ``resend_request``) are outside any stream and
carry ``seq = 0``. ``lc`` is the sender's Lamport clock; ``ts`` its wall time in ms. ``seq``
and ``lc`` are below :data:`protocol.sync.COUNTER_LIMIT` (2^53): a larger one is no honest
sender's, and a receiver that merged it would overflow its store.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, ClassVar, Literal, TypeAlias

from pydantic import Field, TypeAdapter, model_validator

from protocol.base import DeviceId, EpochMs, WireModel
from protocol.device import DeviceState, Telemetry
from protocol.facts import ExceptionReport, ParcelScan, StopEvent
from protocol.routes import RoutePlan, RouteSequenceReport
from protocol.sync import Ack, ResendRequest, StreamCounter
from protocol.version import SCHEMA_VERSION

__all__ = [
    "CONTROL_KINDS",
    "ENVELOPE_ADAPTER",
    "KINDS",
    "AckEnvelope",
    "Body",
    "DeviceStateEnvelope",
    "Envelope",
    "ExceptionEnvelope",
    "ParcelScanEnvelope",
    "ResendRequestEnvelope",
    "RoutePlanEnvelope",
    "RouteSequenceEnvelope",
    "StopEventEnvelope",
    "TelemetryEnvelope",
    "envelope_class",
    "make_envelope",
    "new_message_id",
]

MessageId = Annotated[str, Field(pattern=r"^[0-9A-Za-z_-]{8,64}$")]


class _EnvelopeBase(WireModel):
    sequenced: ClassVar[bool] = True

    v: Annotated[str, Field(pattern=r"^\d{1,4}\.\d{1,4}$")] = SCHEMA_VERSION
    id: MessageId
    src: DeviceId
    seq: StreamCounter
    lc: StreamCounter
    ts: EpochMs

    @model_validator(mode="after")
    def _seq_fits_kind(self) -> _EnvelopeBase:
        if self.sequenced and self.seq < 1:
            raise ValueError(f"a {self.kind_name()} message needs a sequence number from 1")
        if not self.sequenced and self.seq != 0:
            raise ValueError(f"a {self.kind_name()} message is outside any stream: seq must be 0")
        return self

    @classmethod
    def kind_name(cls) -> str:
        return str(cls.model_fields["kind"].default)


class DeviceStateEnvelope(_EnvelopeBase):
    sequenced: ClassVar[bool] = False
    kind: Literal["state"] = "state"
    body: DeviceState


class TelemetryEnvelope(_EnvelopeBase):
    kind: Literal["telemetry"] = "telemetry"
    body: Telemetry


class StopEventEnvelope(_EnvelopeBase):
    kind: Literal["stop_event"] = "stop_event"
    body: StopEvent


class RoutePlanEnvelope(_EnvelopeBase):
    kind: Literal["route_plan"] = "route_plan"
    body: RoutePlan


class RouteSequenceEnvelope(_EnvelopeBase):
    kind: Literal["route_sequence"] = "route_sequence"
    body: RouteSequenceReport


class ExceptionEnvelope(_EnvelopeBase):
    kind: Literal["exception"] = "exception"
    body: ExceptionReport


class ParcelScanEnvelope(_EnvelopeBase):
    kind: Literal["parcel_scan"] = "parcel_scan"
    body: ParcelScan


class AckEnvelope(_EnvelopeBase):
    sequenced: ClassVar[bool] = False
    kind: Literal["ack"] = "ack"
    body: Ack


class ResendRequestEnvelope(_EnvelopeBase):
    sequenced: ClassVar[bool] = False
    kind: Literal["resend_request"] = "resend_request"
    body: ResendRequest


Envelope: TypeAlias = Annotated[
    DeviceStateEnvelope
    | TelemetryEnvelope
    | StopEventEnvelope
    | RoutePlanEnvelope
    | RouteSequenceEnvelope
    | ExceptionEnvelope
    | ParcelScanEnvelope
    | AckEnvelope
    | ResendRequestEnvelope,
    Field(discriminator="kind"),
]
"""Any envelope; ``kind`` says which."""

Body: TypeAlias = (
    DeviceState
    | Telemetry
    | StopEvent
    | RoutePlan
    | RouteSequenceReport
    | ExceptionReport
    | ParcelScan
    | Ack
    | ResendRequest
)

ENVELOPE_ADAPTER: TypeAdapter[Envelope] = TypeAdapter(Envelope)

_CLASSES: tuple[type[_EnvelopeBase], ...] = (
    DeviceStateEnvelope,
    TelemetryEnvelope,
    StopEventEnvelope,
    RoutePlanEnvelope,
    RouteSequenceEnvelope,
    ExceptionEnvelope,
    ParcelScanEnvelope,
    AckEnvelope,
    ResendRequestEnvelope,
)
_BY_KIND: dict[str, type[_EnvelopeBase]] = {c.kind_name(): c for c in _CLASSES}
_BY_BODY: dict[type[WireModel], type[_EnvelopeBase]] = {
    c.model_fields["body"].annotation: c  # type: ignore[misc]
    for c in _CLASSES
}

KINDS: tuple[str, ...] = tuple(_BY_KIND)
"""Every message kind, in the order ``docs/protocol.md`` describes them."""
CONTROL_KINDS: frozenset[str] = frozenset(k for k, c in _BY_KIND.items() if not c.sequenced)
"""Kinds outside any stream (``seq = 0``)."""


def envelope_class(kind: str) -> type[_EnvelopeBase] | None:
    """The envelope class of ``kind``, or None for a kind this receiver does not know."""
    return _BY_KIND.get(kind)


def new_message_id() -> str:
    """A fresh message id: 32 hex digits of a random UUID."""
    return uuid.uuid4().hex


def make_envelope(
    *, src: str, seq: int, lc: int, body: Body, ts: int | None = None, msg_id: str | None = None
) -> Envelope:
    """Wrap ``body`` in the envelope of its kind, with a new id and the current time."""
    cls = _BY_BODY[type(body)]
    fields: dict[str, Any] = {
        "id": msg_id or new_message_id(),
        "src": src,
        "seq": seq,
        "lc": lc,
        "ts": int(time.time() * 1000) if ts is None else ts,
        "body": body,
    }
    return cls(**fields)  # type: ignore[return-value]
