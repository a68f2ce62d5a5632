"""The cloud coordinator: the hub every vehicle and depot syncs with.

It applies what devices report (exactly once, in order, each write committed with the
stream cursor), keeps the fleet's state, and sends route plans down as new versions.
Planning, rebalancing and exceptions build on this.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloud.errors import ConflictError
from cloud.store import CloudStore
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


class Coordinator:
    """The hub: sync handler, fleet state, and the way plans go down."""

    def __init__(self, settings: CloudSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.store = open_store(settings.db_path)
        self.db = CloudStore(self.store)
        self.node = SyncNode(
            node_id=HUB_ID,
            role="hub",
            store=self.store,
            handler=self,
            broker=settings.broker,
            settings=settings.sync,
        )

    def start(self) -> None:
        self.node.start()

    def stop(self) -> None:
        self.node.stop()
        self.store.close()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- sync handler --------------------------------------------------------------------

    def apply(self, tx: Tx, peer: str, envelope: Envelope) -> None:
        conn = tx.conn
        if isinstance(envelope, TelemetryEnvelope):
            self.db.set_position(conn, peer, envelope.body)
        elif isinstance(envelope, StopEventEnvelope):
            self.db.record_stop_event(conn, peer, envelope.body)
        elif isinstance(envelope, RouteSequenceEnvelope):
            self.db.record_sequence(conn, peer, envelope.body, envelope.ts)
        elif isinstance(envelope, ExceptionEnvelope):
            self.db.record_exception(conn, peer, envelope.body)
        elif isinstance(envelope, ParcelScanEnvelope):
            self.db.record_scan(conn, peer, envelope.body)
        else:
            raise Rejected(f"the coordinator does not take {envelope.kind} from devices")
        self.db.log_event(conn, peer, envelope.seq, envelope, tx.payload)

    def on_state(self, tx: Tx, peer: str, envelope: DeviceStateEnvelope) -> None:
        self.db.set_state(tx.conn, peer, envelope.body)

    # -- actions -----------------------------------------------------------------------------

    def send_plan(self, plan: RoutePlan) -> dict[str, Any]:
        """Store a plan version and send it to its vehicle; only a newer version is taken."""
        with self.node.transaction() as tx:
            have = tx.conn.execute(
                "SELECT max(version) FROM routes WHERE route_id = ?", (plan.route_id,)
            ).fetchone()[0]
            if have is not None and plan.version <= have:
                raise ConflictError(
                    f"route {plan.route_id} already has version {have}; send a newer one"
                )
            self.db.save_plan(tx.conn, plan, self.now_ms())
            env = tx.emit(plan.vehicle_id, plan)
        return {"route_id": plan.route_id, "version": plan.version, "seq": env.seq}

    def sync_status(self) -> dict[str, Any]:
        return {
            "connected": self.node.connected,
            "pending_down": self.node.pending(),
            "stats": dict(self.node.stats),
            "events": self.db.counts(),
        }
