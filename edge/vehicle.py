"""The vehicle agent: the composition root of the edge on a van's gateway.

It owns the local store, the sync node to the cloud, and the route book; it applies plans
from the cloud (newer versions only, field facts kept), records what the driver does as
facts, re-sequences the remaining stops when reality drifts, and reports each change to the
cloud through the outbox. Everything works with no network: the outbox keeps it.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge.errors import (
    InputError,
    NoRouteError,
    ProofError,
    SettingsError,
    StopFinalError,
    UnknownStopError,
)
from edge.hardware.inputs import HardwareInputs
from edge.hardware.settings import HardwareSettings
from edge.resequencing import Resequencer, SequenceOutcome
from edge.route_book import FINAL, PlanMerge, RouteBook, StopRow
from protocol import (
    DeviceStateEnvelope,
    Envelope,
    ExceptionReport,
    ProofOfDelivery,
    RoutePlanEnvelope,
    RouteSequenceReport,
    SequencedStop,
    SequenceReason,
    StopEvent,
    Telemetry,
)
from sync import BrokerAddress, Rejected, SyncNode, SyncSettings, Tx, open_store

__all__ = ["VehicleAgent", "VehicleSettings"]

log = logging.getLogger(__name__)

HUB = "cloud"
_IMAGE_MAGIC = {
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


@dataclass(frozen=True, slots=True)
class VehicleSettings:
    """Everything a vehicle agent needs; built once by the entry point."""

    vehicle_id: str
    db_path: Path
    broker: BrokerAddress | None
    sync: SyncSettings = field(default_factory=SyncSettings)
    resequence_budget_s: float = 0.2
    seed: int = 1
    max_photo_bytes: int = 2 * 1024 * 1024
    delay_threshold_s: int = 300
    """Re-sequence when the van runs this much behind the ETA of its next stop."""
    hardware: HardwareSettings = field(default_factory=HardwareSettings)
    """GNSS and CAN sources the agent reads its telemetry from (none: no telemetry)."""
    pairing_code: str | None = None
    """The code a tablet gives once to be paired with this gateway (:mod:`edge.pairing`);
    None: one made at the first start, kept in the store and logged when the tablet app
    starts."""
    http_max_body_bytes: int = 1024 * 1024
    """The largest request body the tablet app takes (413, unread); a delivery may be
    ``max_photo_bytes`` larger, for its photo."""

    def __post_init__(self) -> None:
        from edge.pairing import check_code
        from protocol.topics import up_topic

        try:
            up_topic(self.vehicle_id)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        if self.pairing_code is not None:
            check_code(self.pairing_code)
        if self.http_max_body_bytes < 1024:
            raise SettingsError("http_max_body_bytes must be at least 1024")
        if not 0 < self.resequence_budget_s <= 30:
            raise SettingsError("resequence budget must be between 0 and 30 s")


class VehicleAgent:
    """A van's edge agent. Thread-safe: web handlers and the sync worker share its store."""

    def __init__(
        self, settings: VehicleSettings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.store = open_store(settings.db_path)
        try:
            self.book = RouteBook(self.store)  # brings the store to this code's schema
        except Exception:
            self.store.close()  # a newer store, or a step that failed: nothing left open
            raise
        self.resequencer = Resequencer(budget_s=settings.resequence_budget_s, seed=settings.seed)
        self.node = SyncNode(
            node_id=settings.vehicle_id,
            role="device",
            store=self.store,
            handler=self,
            broker=settings.broker,
            settings=settings.sync,
            hub_id=HUB,
            device_role="vehicle",
        )
        self.cloud_online: bool | None = None
        self.hardware = HardwareInputs(settings.hardware, self.telemetry, clock=clock)
        """The GNSS and CAN inputs ``settings.hardware`` names, feeding :meth:`telemetry`."""

    @property
    def vehicle_id(self) -> str:
        return self.settings.vehicle_id

    def start(self) -> None:
        self.node.start()
        self.hardware.start()

    def stop(self) -> None:
        self.hardware.stop()
        self.node.stop()
        self.store.close()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- from the cloud (sync handler) ---------------------------------------------------

    def apply(self, tx: Tx, peer: str, envelope: Envelope) -> None:
        if not isinstance(envelope, RoutePlanEnvelope):
            raise Rejected(f"a vehicle does not take {envelope.kind} messages")
        plan = envelope.body
        if plan.vehicle_id != self.vehicle_id:
            raise Rejected(f"plan {plan.route_id} is for {plan.vehicle_id}, not {self.vehicle_id}")
        merge = self.book.merge_plan(tx.conn, plan, self.now_ms())
        self._report_conflicts(tx, merge)
        self._resequence(tx, "plan", note=f"plan v{plan.version}")

    def on_state(self, tx: Tx, peer: str, envelope: DeviceStateEnvelope) -> None:
        self.cloud_online = envelope.body.status == "online"

    def _report_conflicts(self, tx: Tx, merge: PlanMerge) -> None:
        for stop_id, detail in merge.conflicts:
            tx.emit(
                HUB,
                ExceptionReport(
                    exception_id=uuid.uuid4().hex,
                    category="plan_conflict",
                    severity="warning",
                    at=self.now_ms(),
                    detail=detail,
                    stop_id=stop_id,
                    vehicle_id=self.vehicle_id,
                    data={"plan_version": merge.version},
                ),
            )

    # -- what the driver does ----------------------------------------------------------------

    def arrive(self, stop_id: str, *, event_id: str | None = None) -> dict[str, Any]:
        return self._event(stop_id, "arrived", event_id=event_id)

    def deliver(
        self,
        stop_id: str,
        *,
        event_id: str | None = None,
        recipient: str | None = None,
        signature_svg: str | None = None,
        photo: bytes | None = None,
        barcodes: tuple[str, ...] = (),
        note: str | None = None,
    ) -> dict[str, Any]:
        kind = self._stop_or_raise(stop_id).kind
        return self._event(
            stop_id,
            "picked_up" if kind == "pickup" else "delivered",
            event_id=event_id,
            recipient=recipient,
            signature_svg=signature_svg,
            photo=photo,
            barcodes=barcodes,
            note=note,
        )

    def fail(
        self, stop_id: str, reason: str, *, event_id: str | None = None, note: str | None = None
    ) -> dict[str, Any]:
        return self._event(stop_id, "failed", event_id=event_id, reason=reason, note=note)

    def skip(
        self, stop_id: str, *, event_id: str | None = None, note: str | None = None
    ) -> dict[str, Any]:
        return self._event(stop_id, "skipped", event_id=event_id, note=note)

    def do_next(self, stop_id: str) -> dict[str, Any]:
        """The driver commits to ``stop_id`` as the next stop; the sequencer keeps it first."""
        self._open_stop(stop_id)
        with self.node.transaction() as tx:
            self.book.set_committed_next(tx.conn, stop_id)
            self.book.set_manual_reason(tx.conn, stop_id, "driver chose it as next")
            self._resequence(tx, "manual", note=f"driver chose {stop_id} next")
        return self.status()

    def move(self, stop_id: str, position: int, reason: str) -> dict[str, Any]:
        """The driver moves a stop by hand; the order is kept as the driver set it."""
        self._open_stop(stop_id)
        if not reason.strip():
            raise InputError("moving a stop by hand needs a reason")
        with self.node.transaction() as tx:
            order = [s.stop_id for s in self.book.remaining() if s.stop_id != stop_id]
            position = max(1, min(position, len(order) + 1))
            order.insert(position - 1, stop_id)
            self.book.set_manual_reason(tx.conn, stop_id, reason[:200])
            self._store_order(
                tx, self.resequencer.keep(order, self._context()), "manual", note=reason[:200]
            )
        return self.status()

    def take_break(self) -> dict[str, Any]:
        with self.node.transaction() as tx:
            if self.book.route() is None:
                raise NoRouteError("no route yet")
            self.book.take_break(tx.conn, int(self.clock()))
            self._resequence(tx, "break", note="driver took the break")
        return self.status()

    def change_window(self, stop_id: str, start: int | None, end: int | None) -> dict[str, Any]:
        """A customer's new time window, applied locally (the cloud sends it in a plan too)."""
        self._open_stop(stop_id)
        if start is not None and end is not None and end < start:
            raise InputError("window ends before it starts")
        with self.node.transaction() as tx:
            self.book.set_window(tx.conn, stop_id, start, end)
            self._resequence(tx, "window_changed", note=f"new window for {stop_id}")
        return self.status()

    def telemetry(self, sample: Telemetry) -> None:
        """A sample from the hardware: stored, reported, and checked against the ETAs."""
        with self.node.transaction() as tx:
            self.book.set_position(tx.conn, sample.at, sample.model_dump())
            tx.emit(HUB, sample)
            remaining = self.book.remaining()
            if not remaining or self.book.route() is None:
                return
            outcome = self.resequencer.keep([s.stop_id for s in remaining], self._context())
            first = remaining[0]
            late_by = (outcome.etas[0][1] - first.eta) if first.eta and outcome.etas else 0
            if late_by > self.settings.delay_threshold_s:
                self._resequence(tx, "delay", note=f"running {late_by // 60} min behind")
            else:
                self.book.set_etas(tx.conn, list(outcome.etas))

    # -- views -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        route = self.book.route()
        stops = self.book.stops()
        remaining = [s for s in stops if not s.final]
        return {
            "vehicle_id": self.vehicle_id,
            "route": route,
            "next": _stop_view(remaining[0], self.book) if remaining else None,
            "remaining": [_stop_view(s, self.book) for s in remaining],
            "done": [_stop_view(s, self.book) for s in stops if s.final],
            "counts": self.book.counts(),
            "connected": self.node.connected,
            "pending_sync": self.node.pending(),
        }

    # -- internals -----------------------------------------------------------------------

    def _stop_or_raise(self, stop_id: str) -> StopRow:
        stop = self.book.stop(stop_id)
        if stop is None or stop.removed:
            raise UnknownStopError(f"stop {stop_id!r} is not on this route")
        return stop

    def _open_stop(self, stop_id: str) -> StopRow:
        stop = self._stop_or_raise(stop_id)
        if stop.final:
            raise StopFinalError(f"stop {stop_id!r} is already {stop.status}")
        return stop

    def _event(
        self,
        stop_id: str,
        type: str,
        *,
        event_id: str | None,
        reason: str | None = None,
        note: str | None = None,
        recipient: str | None = None,
        signature_svg: str | None = None,
        photo: bytes | None = None,
        barcodes: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        event_id = event_id or uuid.uuid4().hex
        with self.node.transaction() as tx:
            seen = self.book.event(event_id)
            if seen is not None:
                if seen != (stop_id, type):
                    raise StopFinalError(f"event {event_id} was already used for another action")
                return {"event_id": event_id, "duplicate": True, **self.status()}
            stop = self._open_stop(stop_id)
            if type == "arrived" and stop.status == "arrived":
                return {"event_id": event_id, "duplicate": True, **self.status()}
            route = self.book.route()
            if route is None:
                raise NoRouteError("no route yet")
            photo_sha = self._save_photo(tx, photo) if photo is not None else None
            at = self.now_ms()
            proof = None
            if type in ("delivered", "picked_up"):
                try:
                    proof = ProofOfDelivery(
                        recipient_name=recipient,
                        signature_svg=signature_svg,
                        photo_sha256=photo_sha,
                        photo_bytes=len(photo) if photo is not None else None,
                        barcodes=barcodes,
                    )
                except ValidationError as exc:
                    raise InputError(_first_error(exc)) from None
            try:
                body = self._stop_event(route, stop_id, type, event_id, at, reason, note, proof)
            except ValidationError as exc:
                raise InputError(_first_error(exc)) from None
            self.book.record_event(
                tx.conn,
                event_id=event_id,
                stop_id=stop_id,
                type=type,
                at_ms=at,
                reason=reason,
                note=note,
                recipient=recipient,
                photo_sha256=photo_sha,
                barcodes=barcodes,
                signature_svg=signature_svg,
                lat=body.lat,
                lon=body.lon,
            )
            tx.emit(HUB, body)
            if type in FINAL:
                self._resequence(tx, type)  # type: ignore[arg-type]
        return {"event_id": event_id, "duplicate": False, **self.status()}

    def _stop_event(
        self,
        route: dict[str, Any],
        stop_id: str,
        type: str,
        event_id: str,
        at: int,
        reason: str | None,
        note: str | None,
        proof: ProofOfDelivery | None,
    ) -> StopEvent:
        pos = self.book.position()
        return StopEvent(
            event_id=event_id,
            route_id=route["route_id"],
            plan_version=route["version"],
            stop_id=stop_id,
            type=type,  # type: ignore[arg-type]
            at=at,
            reason=reason,  # type: ignore[arg-type]
            note=note,
            proof=proof,
            lat=pos["lat"] if pos else None,
            lon=pos["lon"] if pos else None,
        )

    def _save_photo(self, tx: Tx, photo: bytes) -> str:
        if len(photo) > self.settings.max_photo_bytes:
            limit = self.settings.max_photo_bytes
            raise ProofError(f"photo of {len(photo)} bytes is over the {limit}-byte limit")
        content_type = next((t for m, t in _IMAGE_MAGIC.items() if photo.startswith(m)), None)
        if content_type is None and photo[:4] == b"RIFF" and photo[8:12] == b"WEBP":
            content_type = "image/webp"
        if content_type is None:
            raise ProofError("photo is not a JPEG, PNG, GIF or WebP image")
        sha = hashlib.sha256(photo).hexdigest()
        self.book.save_photo(tx.conn, sha, content_type, photo)
        return sha

    def _context(self) -> dict[str, Any]:
        return {
            "now": int(self.clock()),
            "position": self.book.position(),
            "route": self.book.route(),
            "stops": self.book.remaining(),
        }

    def _resequence(self, tx: Tx, reason: SequenceReason, note: str | None = None) -> None:
        outcome = self.resequencer.resequence(self._context(), self.book)
        self._store_order(tx, outcome, reason, note)

    def _store_order(
        self, tx: Tx, outcome: SequenceOutcome, reason: SequenceReason, note: str | None = None
    ) -> None:
        route = self.book.route()
        if route is None:
            return
        revision = self.book.set_order(tx.conn, list(outcome.etas))
        tx.emit(
            HUB,
            RouteSequenceReport(
                route_id=route["route_id"],
                plan_version=route["version"],
                revision=revision,
                reason=reason,
                order=tuple(
                    SequencedStop(stop_id=sid, eta=eta, late_s=late)
                    for (sid, eta), late in zip(outcome.etas, outcome.late_s, strict=True)
                ),
                solver=outcome.solver,
                seconds=round(outcome.seconds, 4),
                note=note,
            ),
        )


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "request"
    return f"{where}: {err['msg']}"


def _stop_view(s: StopRow, book: RouteBook) -> dict[str, Any]:
    return {
        "stop_id": s.stop_id,
        "order_id": s.order_id,
        "kind": s.kind,
        "address": s.address,
        "customer": s.customer,
        "lat": s.lat,
        "lon": s.lon,
        "window_start": s.window_start,
        "window_end": s.window_end,
        "service_s": s.service_s,
        "status": s.status,
        "eta": s.eta,
        "committed_next": s.committed_next,
        "manual_reason": s.manual_reason,
        "parcels": book.parcels(s.stop_id),
        "note": s.note,
    }
