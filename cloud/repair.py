"""Conflict repair at ingest: field facts win, by rule, in the transaction that applies them.

Called by the coordinator's sync handler for each fact it applies, inside the ingest
transaction, so the fact, the repair (a new plan version for a van) and its decision record
commit together, exactly once. Only orders the coordinator knows (taken in through intake)
are repaired; plans sent directly through ``/v1/routes`` are left as they are. The rules
themselves are pure (:mod:`cloud.rules`) so each decision replays.

A final stop event for a stop its vehicle never held (not assigned to it, in none of its plan
versions, none of its parcels loaded onto it) is not a fact: :meth:`Repairs.on_foreign_stop`
raises a ``foreign_stop_event`` exception for a person, with what the vehicle claims and who
holds the order, and the order, its stop facts and its assignment stay as they are.

Also queued here: a ``late`` trigger when a van's sequence report predicts a stop late by
``late_threshold_s`` or more, and a ``breakdown`` when a vehicle reports one (an exception of
category ``breakdown``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from cloud.decisions import record
from cloud.ops import ExceptionClass, Incident
from cloud.route_plans import emit_plan, without_stop
from cloud.rules import RULES
from cloud.store import FINAL
from protocol import ExceptionReport, ParcelScan, RouteSequenceReport, StopEvent
from sync import Tx

if TYPE_CHECKING:
    from cloud.coordinator import Coordinator

__all__ = ["Repairs"]

log = logging.getLogger(__name__)

AUTO = "policy:field-facts-win"


class Repairs:
    """The rules that keep the order book true to what happened in the field."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.c = coordinator
        self.db = coordinator.db

    def on_stop_event(self, tx: Tx, peer: str, e: StopEvent, new: bool) -> None:
        if e.type not in FINAL:
            return
        conn, now = tx.conn, self.c.now_ms()
        order = self.db.order(e.stop_id, conn)
        if order is None:
            return
        trigger = {"kind": "stop_event", "src": peer, "event_id": e.event_id, "type": e.type}
        if not new:
            first = self.db.stop_fact(e.stop_id, conn)
            if first is None or first["event_id"] == e.event_id:
                return
            inputs = {
                "stop_id": e.stop_id,
                "first": {"type": first["status"], "vehicle": first["vehicle_id"]},
                "second": {"type": e.type, "vehicle": peer},
            }
            out = RULES["second_fact"](inputs)
            kind = "escalation" if out["escalate"] else "repair"
            self._record(tx, kind, "second_fact", trigger, inputs, out, {})
            return
        self.db.set_order_status(conn, order["order_id"], e.type, None, now, done_by=peer)
        a = self.db.assignment(order["order_id"], conn)
        if a is None or a["vehicle_id"] == peer:
            return
        plan = self.db.latest_plan(a["route_id"], conn) if a["route_id"] else None
        inputs = {
            "stop_id": e.stop_id,
            "fact": {"type": e.type, "vehicle": peer},
            "assigned_to": a["vehicle_id"],
            "route_id": a["route_id"],
            "plan_version": plan.version if plan else None,
            "plan_stops": [s.stop_id for s in plan.stops] if plan else [],
        }
        out = RULES["fact_elsewhere"](inputs)
        applied: dict[str, Any] = {}
        if out["new_version"] is not None and plan is not None:
            emit_plan(self.db, tx, without_stop(plan, e.stop_id), now)
            applied["versions"] = {a["vehicle_id"]: out["new_version"]}
        peer_vehicle = self.db.vehicle(peer, conn)
        did = self._record(tx, "repair", "fact_elsewhere", trigger, inputs, out, applied)
        self.db.set_assignment(
            conn, order["order_id"], peer, peer_vehicle["kind"] if peer_vehicle else "own",
            e.route_id, e.plan_version, 0, None, did, now,
        )  # fmt: skip
        log.info("%s: %s by %s while planned on %s", e.stop_id, e.type, peer, a["vehicle_id"])

    def on_foreign_stop(self, tx: Tx, peer: str, e: StopEvent) -> bool:
        """True when ``peer`` never held the stop it reports final: the claim then becomes
        an exception for a person and nothing of the order changes. A stop the coordinator
        knows nothing of (no order, in no plan) is not judged here."""
        if e.type not in FINAL:
            return False
        conn = tx.conn
        if self.db.ever_held(peer, e.stop_id, conn):
            return False
        order = self.db.order(e.stop_id, conn)
        planned = self.db.planned_on(e.stop_id, conn)
        if order is None and not planned:
            return False
        a = self.db.assignment(e.stop_id, conn) if order is not None else None
        holder = a["vehicle_id"] if a else (planned[0]["vehicle_id"] if planned else None)
        fact = self.db.stop_fact(e.stop_id, conn)
        claim = {
            "claimed_type": e.type, "claimed_event_id": e.event_id, "claimed_at": e.at,
            "claimed_route_id": e.route_id, "claimed_plan_version": e.plan_version,
            "claimed_reason": e.reason, "claimed_recipient": e.proof.recipient_name
            if e.proof else None, "claimed_lat": e.lat, "claimed_lon": e.lon,
        }  # fmt: skip
        held = {
            "held_by": holder,
            "held_route_id": a["route_id"] if a else (planned[0]["route_id"] if planned else None),
            "held_since_version": a["since_version"] if a else None,
            "order_status": order["status"] if order else None,
            "fact_status": fact["status"] if fact else None,
            "fact_by": fact["vehicle_id"] if fact else None,
        }
        who = f"held by {holder}" if holder else "held by no vehicle"
        incident = Incident(
            incident_id=f"foreign-{peer}-{e.event_id}",
            cls=ExceptionClass.FOREIGN_STOP_EVENT,
            at_ms=self.c.now_ms(),
            category=ExceptionClass.FOREIGN_STOP_EVENT.value,
            severity="critical",
            detail=f"{peer} reports stop {e.stop_id} {e.type}, but never held it ({who}); "
            "not applied",
            order_id=e.stop_id if order is not None else None,
            stop_id=e.stop_id,
            vehicle_id=peer,
            depot_id=order["depot_id"] if order is not None else None,
            data={k: v for k, v in {**claim, **held}.items() if v is not None},
        )
        self.c.operations.exceptions.raise_incident(conn, incident, source=f"device:{peer}")
        log.warning(
            "%s reports %s %s but never held it (%s): not applied, raised for a person",
            peer, e.stop_id, e.type, who,
        )  # fmt: skip
        return True

    def on_exception(self, tx: Tx, peer: str, x: ExceptionReport) -> None:
        if x.category == "breakdown":
            vid = x.vehicle_id or peer
            v = self.db.vehicle(vid, tx.conn)
            plan = self.db.latest_plan_of(vid, tx.conn)
            if v is not None and plan is not None:
                self.c.dispatch.set_vehicle_status(tx.conn, v, "broken", plan.day, x.detail)
            return
        if x.category != "plan_conflict" or x.stop_id is None:
            return
        conn = tx.conn
        if self.db.order(x.stop_id, conn) is None:
            return
        fact = self.db.stop_fact(x.stop_id, conn)
        plan = self.db.latest_plan_of(peer, conn)
        inputs = {
            "stop_id": x.stop_id,
            "vehicle": peer,
            "fact": {"type": fact["status"], "vehicle": fact["vehicle_id"]} if fact else None,
            "route_id": plan.route_id if plan else None,
            "plan_version": plan.version if plan else None,
            "plan_stops": [s.stop_id for s in plan.stops] if plan else [],
        }
        out = RULES["plan_conflict"](inputs)
        applied: dict[str, Any] = {}
        if out["action"] == "remove_stop" and plan is not None:
            emit_plan(self.db, tx, without_stop(plan, x.stop_id), self.c.now_ms())
            applied["versions"] = {peer: out["new_version"]}
        trigger = {"kind": "exception", "src": peer, "exception_id": x.exception_id}
        kind = "escalation" if out["action"] == "escalate" else "repair"
        self._record(tx, kind, "plan_conflict", trigger, inputs, out, applied)

    def on_scan(self, tx: Tx, peer: str, s: ParcelScan) -> None:
        """Before the scan is stored: a repeat is ignored, a wrong van escalated."""
        conn = tx.conn
        parcel = self.db.parcel(s.parcel_id, s.barcode, conn)
        if parcel is None:
            return
        earlier = self.db.earlier_scans(conn, parcel["parcel_id"], s.scan_id)
        a = self.db.assignment(parcel["order_id"], conn)
        inputs = {
            "scan": {
                "scan_id": s.scan_id, "result": s.result, "parcel_id": parcel["parcel_id"],
                "vehicle_id": s.vehicle_id, "depot_id": s.depot_id,
            },
            "earlier": earlier,
            "assigned_to": a["vehicle_id"] if a and a["kind"] == "own" else None,
        }  # fmt: skip
        out = RULES["duplicate_scan"](inputs)
        if out["action"] == "none":
            return
        trigger = {"kind": "parcel_scan", "src": peer, "scan_id": s.scan_id}
        kind = "escalation" if out["action"] == "escalate" else "repair"
        self._record(tx, kind, "duplicate_scan", trigger, inputs, out, {})

    def on_sequence(self, tx: Tx, peer: str, r: RouteSequenceReport) -> None:
        late = max((s.late_s for s in r.order), default=0)
        if late < self.c.dispatch.settings.late_threshold_s:
            return
        v = self.db.vehicle(peer, tx.conn)
        plan = self.db.latest_plan(r.route_id, tx.conn)
        if v is None or plan is None:
            return
        worst = max(r.order, key=lambda s: s.late_s)
        detail = {"late_s": late, "stop_id": worst.stop_id, "revision": r.revision}
        self.db.add_trigger(tx.conn, "late", v["depot_id"], plan.day, peer, detail, self.c.now_ms())

    def _record(
        self,
        tx: Tx,
        kind: str,
        rule: str,
        trigger: dict[str, Any],
        inputs: dict[str, Any],
        output: dict[str, Any],
        applied: dict[str, Any],
    ) -> str:
        return record(
            self.db, tx.conn, kind=kind, rule=rule, trigger=trigger, inputs=inputs,
            output=output, applied=applied, approved_by=AUTO, now_ms=self.c.now_ms(),
        )  # fmt: skip
