"""The cloud coordinator: the hub every vehicle and depot syncs with.

It applies what devices report (exactly once, in order, each write committed with the
stream cursor), keeps the fleet's state, and sends route plans down as new versions.
Planning and rebalancing (:mod:`cloud.dispatch`), the morning plan at each depot's cut-off
(:mod:`cloud.morning`), conflict repair at ingest (:mod:`cloud.repair`) and the decision
record (:mod:`cloud.decisions`) hang off it. Every message passes the device registry first
(:mod:`cloud.device_registry`): an unknown device, a role the registry does not give, or a
kind the sender's role never sends is refused before anything is stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloud.device_clock import DeviceClocks
from cloud.device_registry import DevicePolicy, DeviceRegistry
from cloud.dispatch import Dispatcher, DispatchSettings
from cloud.errors import ConflictError
from cloud.metrics import CloudMetrics
from cloud.morning import MorningSchedule, MorningSettings
from cloud.operations import Operations, OperationsSettings
from cloud.repair import Repairs
from cloud.route_plans import emit_plan, with_load_positions
from cloud.store import CloudStore
from cloud.store.ingest import TelemetryBuffer
from protocol import (
    DeviceStateEnvelope,
    Envelope,
    ExceptionEnvelope,
    ParcelScanEnvelope,
    RoutePlan,
    RouteSequenceEnvelope,
    StopEventEnvelope,
    TelemetryEnvelope,
)
from sync import BrokerAddress, Rejected, SyncNode, SyncSettings, Tx, open_store

__all__ = ["HUB_ID", "CloudSettings", "Coordinator"]

log = logging.getLogger(__name__)

HUB_ID = "cloud"


@dataclass(frozen=True, slots=True)
class CloudSettings:
    """Everything the coordinator needs; built once by the entry point."""

    db_path: Path
    broker: BrokerAddress | None
    sync: SyncSettings = field(default_factory=SyncSettings)
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    rebalance_interval_s: float | None = None
    """Handle queued rebalance triggers this often in a worker thread (None: on request)."""
    operations: OperationsSettings = field(default_factory=OperationsSettings)
    """Exceptions, customer ETAs, notifications, webhooks and access (:mod:`cloud.operations`)."""
    morning: MorningSettings = field(default_factory=MorningSettings)
    """Depots' default zone and cut-off, and how often the morning schedule looks
    (:mod:`cloud.morning`)."""
    device_policy: DevicePolicy = "open"
    """``registered``: only devices in the registry (``wayline admin add-device``) or the
    network model may sync; ``open``: any other device is taken as what it first announces.
    ``wayline cloud`` defaults to ``registered`` (``open`` with ``WAYLINE_ENV=development``);
    ``open`` is for development and tests that start devices no one declared
    (:mod:`cloud.device_registry`)."""


class Coordinator:
    """The hub: sync handler, fleet state, and the way plans go down."""

    def __init__(self, settings: CloudSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.store = open_store(settings.db_path)
        self.db = CloudStore(self.store)
        self.db.set_depot_defaults(
            settings.morning.default_timezone, settings.morning.default_cutoff
        )
        self.registry = DeviceRegistry(
            self.db, policy=settings.device_policy, hub_id=HUB_ID, on_state=self.on_state
        )
        self.node = SyncNode(
            node_id=HUB_ID,
            role="hub",
            store=self.store,
            handler=self,
            broker=settings.broker,
            settings=settings.sync,
            admit=self.registry.admit,
        )
        self.metrics = CloudMetrics(self.node)
        self.device_clocks = DeviceClocks()
        """Device times are advisory: status and positions go by receive time where a
        device's clock is implausible (:mod:`cloud.device_clock`)."""
        self.dispatch = Dispatcher(self, settings.dispatch)
        self.repairs = Repairs(self)
        self.operations = Operations(self, settings.operations)
        self.morning = MorningSchedule(self, settings.morning)
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None

    def start(self) -> None:
        self.node.start()
        self.registry.start(self.node.transaction)
        self.operations.start()
        if self.settings.rebalance_interval_s is not None:
            self._worker = threading.Thread(
                target=self._rebalance_loop, name="cloud-rebalance", daemon=True
            )
            self._worker.start()
        self.morning.start()

    def stop(self) -> None:
        self._stopping.set()
        self.morning.stop()
        if self._worker is not None:
            self._worker.join(timeout=120)
        self.operations.stop()
        self.registry.stop()
        self.node.stop()
        self.store.close()

    def _rebalance_loop(self) -> None:
        interval = self.settings.rebalance_interval_s or 1.0
        while not self._stopping.wait(interval):
            try:
                if self.db.open_triggers():
                    self.dispatch.rebalance_pending()
            except Exception:
                log.exception("rebalance failed; the triggers stay queued")

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- sync handler --------------------------------------------------------------------

    def apply(self, tx: Tx, peer: str, envelope: Envelope) -> None:
        self.registry.check_kind(tx, peer, envelope)
        if isinstance(envelope, TelemetryEnvelope):
            now = self.now_ms()
            at = self.device_clocks.taken(peer, envelope.body.at, now)
            tx.buffer(TelemetryBuffer).add(peer, envelope, tx.payload, at_ms=at, now_ms=now)
            return
        tx.flush()  # what follows may read positions and the log
        conn = tx.conn
        if isinstance(envelope, StopEventEnvelope):
            if self.repairs.on_foreign_stop(tx, peer, envelope.body):
                # Received and handled (acked), but not a fact: a person looks at it.
                self.db.log_event(conn, peer, envelope.seq, envelope, tx.payload)
                return
            new = self.db.record_stop_event(conn, peer, envelope.body)
            self.repairs.on_stop_event(tx, peer, envelope.body, new)
        elif isinstance(envelope, RouteSequenceEnvelope):
            self.db.record_sequence(conn, peer, envelope.body, envelope.ts)
            self.metrics.sequence_reported(envelope.body)
            self.repairs.on_sequence(tx, peer, envelope.body)
        elif isinstance(envelope, ExceptionEnvelope):
            self.db.record_exception(conn, peer, envelope.body)
            self.repairs.on_exception(tx, peer, envelope.body)
            if envelope.body.category == "ready_to_depart" and envelope.body.vehicle_id:
                self._send_load_positions(tx, envelope.body.vehicle_id)
        elif isinstance(envelope, ParcelScanEnvelope):
            self.repairs.on_scan(tx, peer, envelope.body)
            self.db.record_scan(conn, peer, envelope.body)
        else:
            raise Rejected(f"the coordinator does not take {envelope.kind} from devices")
        self._operations(tx, peer, envelope)
        self.db.log_event(conn, peer, envelope.seq, envelope, tx.payload)

    def _operations(self, tx: Tx, peer: str, envelope: Envelope) -> None:
        """Exceptions, customer ETAs and webhook events of one applied message.

        In a savepoint: a fault here is logged and undone, never holding up the fact. The
        operations worker is woken once per committed batch, not per message; telemetry,
        most of what arrives, never reaches here (it is buffered: :class:`TelemetryBuffer`).
        """
        ops = self.operations
        conn = tx.conn
        conn.execute("SAVEPOINT operations")
        try:
            if isinstance(envelope, ExceptionEnvelope):
                ops.exceptions.on_report(conn, peer, envelope.body)
            elif isinstance(envelope, StopEventEnvelope):
                ops.exceptions.on_failed_stop(conn, peer, envelope.body)
                ops.delivery_confirmed(conn, peer, envelope.body)
            elif isinstance(envelope, RouteSequenceEnvelope):
                ops.exceptions.on_sequence(conn, peer, envelope.body)
                ops.etas.on_sequence(conn, peer, envelope.body)
        except Exception:
            conn.execute("ROLLBACK TO operations")
            log.exception("operations on %s %s/%d failed", envelope.kind, peer, envelope.seq)
        finally:
            conn.execute("RELEASE operations")
        tx.on_commit(ops.wake)

    def _send_load_positions(self, tx: Tx, vehicle_id: str) -> None:
        """The depot released the van: its plan goes down again with each parcel's place."""
        plan = self.db.latest_plan_of(vehicle_id, tx.conn)
        if plan is None:
            return
        placed = with_load_positions(self.db, tx.conn, plan)
        if placed is not None:
            emit_plan(self.db, tx, placed, self.now_ms())

    def on_state(self, tx: Tx, peer: str, envelope: DeviceStateEnvelope) -> None:
        """A device's presence, stored with the registry's role for it (its own word only
        for a device first seen under the ``open`` policy)."""
        device = self.registry.lookup(peer, tx.conn)
        state = envelope.body
        if device is not None and state.role != device.role:
            state = state.model_copy(update={"role": device.role})
        first = not self.db.known_device(peer, tx.conn)
        now = self.now_ms()
        at = self.device_clocks.taken(peer, state.at, now)
        self.db.set_state(tx.conn, peer, state, at_ms=at, now_ms=now)
        if first and state.role == "depot" and state.status == "online":
            # A sorter seen for the first time gets today's plans; later ones come as sent.
            for plan in self.db.current_plans(tx.conn):
                tx.emit(peer, plan)

    # -- actions -----------------------------------------------------------------------------

    def send_plan(self, plan: RoutePlan) -> dict[str, Any]:
        """Store a plan version and send it to its vehicle; only a newer version is taken."""
        with self.node.transaction() as tx:
            have = self.db.latest_version(plan.route_id, tx.conn)
            if have and plan.version <= have:
                raise ConflictError(
                    f"route {plan.route_id} already has version {have}; send a newer one"
                )
            seq = emit_plan(self.db, tx, plan, self.now_ms())
        return {"route_id": plan.route_id, "version": plan.version, "seq": seq}

    def sync_status(self) -> dict[str, Any]:
        return {
            "connected": self.node.connected,
            "pending_down": self.node.pending(),
            "stats": dict(self.node.stats),
            "events": self.db.counts(),
        }
