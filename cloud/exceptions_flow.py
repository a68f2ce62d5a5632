"""Exceptions through the coordinator: classified by the policy, grouped, queued or resolved.

Every exception the cloud receives (a device's ``exception`` message, a failed stop) or
predicts (a van's sequence late past a threshold, a vehicle offline too long, a carrier
outage, a breakdown) becomes an :class:`~cloud.ops.Incident` and goes through
:meth:`ExceptionFlow.raise_incident`, inside the transaction that applied its cause:

- the policy (:func:`cloud.ops.classify`) decides ``auto``, ``auto_with_approval`` or
  ``escalate`` and recommends an option with its cost;
- repeats of the same cause (class, reason and vehicle/carrier/depot) within the class's
  group window join one queue item with a count;
- an ``auto`` item is resolved and recorded as a decision approved by ``policy:<class>``;
  the others wait in the queue (``awaiting_approval`` / ``escalated``) for a person, who
  approves, rejects or overrides (:meth:`ExceptionFlow.decide`), recorded with who and why;
- an ``exception.raised`` webhook event leaves through the ops outbox once committed.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cloud.decisions import record
from cloud.errors import NotFoundError
from cloud.exception_actions import ActionRunner
from cloud.exception_rules import (
    decision_from_inputs,
    exception_policy,
    incident_to_dict,
    policy_inputs,
)
from cloud.geo import day_start
from cloud.ops import (
    Action,
    AlreadyDecidedError,
    Approval,
    Context,
    ExceptionClass,
    Incident,
    PolicyTable,
    WebhookEvent,
    classify,
)
from cloud.store import DONE
from cloud.store.ops import NEEDS_PERSON
from protocol import ExceptionReport, RouteSequenceReport, StopEvent

if TYPE_CHECKING:
    from cloud.coordinator import Coordinator

__all__ = ["ExceptionFlow"]

log = logging.getLogger(__name__)

_STATUS = {
    Action.AUTO: "auto_resolved",
    Action.AUTO_WITH_APPROVAL: "awaiting_approval",
    Action.ESCALATE: "escalated",
}
_RANK = {Action.AUTO: 0, Action.AUTO_WITH_APPROVAL: 1, Action.ESCALATE: 2}
#: Trigger kinds (queued by dispatch) that are exceptions too.
TRIGGER_CLASSES = {
    "outage": ExceptionClass.CARRIER_OUTAGE,
    "breakdown": ExceptionClass.VEHICLE_BREAKDOWN,
}


class ExceptionFlow:
    """Classifies, groups, stores and resolves exceptions (see the module docstring)."""

    def __init__(
        self,
        coordinator: Coordinator,
        policy: PolicyTable,
        *,
        lateness_threshold_s: int = 900,
        offline_threshold_min: float = 30.0,
    ) -> None:
        self.c = coordinator
        self.db = coordinator.db
        self.policy = policy
        self.lateness_threshold_s = lateness_threshold_s
        self.offline_threshold_min = offline_threshold_min
        self.actions = ActionRunner(coordinator)

    # -- what comes in ---------------------------------------------------------------------

    def on_report(self, conn: sqlite3.Connection, peer: str, report: ExceptionReport) -> None:
        order_id = report.stop_id if report.stop_id else None
        if order_id is None and report.parcel_id:
            parcel = self.db.parcel(report.parcel_id, "", conn)
            order_id = parcel["order_id"] if parcel else None
        carrier = self.db.carrier_of(order_id, conn) if order_id else None
        incident = Incident.from_report(report, order_id=order_id, carrier_id=carrier)
        if incident.vehicle_id is None and self._is_vehicle(peer, conn):
            incident = _with(incident, vehicle_id=peer)
        self.raise_incident(conn, incident, source=f"device:{peer}")

    def on_failed_stop(self, conn: sqlite3.Connection, peer: str, event: StopEvent) -> None:
        if event.type != "failed" or event.reason is None:
            return
        known = self.db.order(event.stop_id, conn) is not None
        incident = Incident.from_failed_stop(
            event,
            vehicle_id=peer,
            order_id=event.stop_id if known else None,
            carrier_id=self.db.carrier_of(event.stop_id, conn) if known else None,
        )
        self.raise_incident(conn, incident, source=f"device:{peer}")

    def on_sequence(self, conn: sqlite3.Connection, peer: str, r: RouteSequenceReport) -> None:
        """A van's own sequence predicting a stop late past the threshold."""
        late = [s for s in r.order if s.late_s >= self.lateness_threshold_s]
        if not late:
            return
        worst = max(late, key=lambda s: s.late_s)
        order = self.db.order(worst.stop_id, conn)
        if order is not None and order["status"] in DONE:
            return
        past = self._past_shift(conn, peer, r, order)
        incident = Incident.forecast(
            f"late-{peer}-{r.route_id}-{r.revision}",
            ExceptionClass.PREDICTED_LATENESS,
            self.c.now_ms(),
            detail=f"{len(late)} stop(s) predicted late, worst {worst.stop_id} by "
            f"{worst.late_s // 60} min",
            vehicle_id=peer,
            stop_id=worst.stop_id,
            order_id=worst.stop_id if order else None,
            measures={
                "minutes_late": worst.late_s / 60,
                "stops_late": float(len(late)),
                "minutes_past_shift": past,
            },
            data=_compact(
                route_id=r.route_id,
                revision=r.revision,
                eta_s=worst.eta,
                stop_id=worst.stop_id,
                trigger_id=self.db.open_trigger_id(conn, "late", peer),
            ),
        )
        self.raise_incident(conn, incident, source=f"forecast:{peer}")

    def _past_shift(
        self,
        conn: sqlite3.Connection,
        peer: str,
        r: RouteSequenceReport,
        order: dict[str, Any] | None,
    ) -> float:
        """Minutes the van's last predicted stop falls after its shift ends (0: it can still
        serve every stop today, late or not; also 0 when the shift is not known)."""
        v = self.db.vehicle(peer, conn)
        end = (v or {}).get("spec", {}).get("shift_end_s")
        plan = self.db.latest_plan(r.route_id, conn)
        day = plan.day if plan is not None else (order or {}).get("day")
        if end is None or not day or not r.order:
            return 0.0
        last = max(s.eta for s in r.order)
        d0 = day_start(day, self.db.depot_zone((v or {}).get("depot_id", ""), conn))
        return round(max(0.0, (last - (d0 + int(end))) / 60), 1)

    def scan(self) -> int:
        """Carrier outages and breakdowns queued by dispatch, and vehicles offline too long.

        Run by the operations worker on a timer (and by tests directly). Returns how many
        new incidents were raised.
        """
        raised = 0
        now = self.c.now_ms()
        with self.c.store.transaction() as conn:
            for t in self.db.triggers_after(self.db.last_trigger_seen(), tuple(TRIGGER_CLASSES)):
                if t["detail"].get("exception"):
                    continue  # queued by an exception's own action: not a new exception
                cls = TRIGGER_CLASSES[t["kind"]]
                subject = t["subject"]
                fields: dict[str, Any] = {"depot_id": t["depot_id"]}
                if cls is ExceptionClass.CARRIER_OUTAGE:
                    fields["carrier_id"] = subject
                    open_orders = len(self.db.carrier_orders(subject))
                    fields["measures"] = {"orders": float(open_orders)}
                else:
                    fields["vehicle_id"] = subject
                why = t["detail"].get("why") or t["detail"].get("fleet") or ""
                incident = Incident.forecast(
                    f"trigger-{t['trigger_id']}",
                    cls,
                    t["at_ms"],
                    detail=f"{cls.value.replace('_', ' ')}: {subject} {why}".strip(),
                    data={"trigger": t["kind"], "day": t["day"], "trigger_id": t["trigger_id"]},
                    **fields,
                )
                if self.raise_incident(conn, incident, source=f"trigger:{t['kind']}"):
                    raised += 1
            limit = now - int(self.offline_threshold_min * 60_000)
            for d in self.db.offline_vehicles(limit):
                if self._offline(conn, d, now):
                    raised += 1
        self.actions.follow_up()
        return raised

    def _offline(self, conn: sqlite3.Connection, d: dict[str, Any], now: int) -> bool:
        """A vehicle silent past the threshold, with how many open orders it carries: a van
        in a dead zone keeps working offline; one silent for long with parcels on board is
        not, so while it carries some it is raised again each time the silence doubles
        (30, 60, 120... minutes). An empty van's silence is one incident."""
        minutes = (now - d["status_at_ms"]) / 60_000
        loaded = self.actions.loaded_count(conn, d["device_id"])
        stage = self.offline_threshold_min
        while loaded and stage * 2 <= minutes:
            stage *= 2
        incident = Incident.forecast(
            f"offline-{d['device_id']}-{d['status_at_ms']}-{stage:g}",
            ExceptionClass.VEHICLE_OFFLINE,
            now,
            detail=f"{d['device_id']} offline for {minutes:.0f} min, "
            f"{loaded} open order(s) on board",
            vehicle_id=d["device_id"],
            measures={
                "minutes": round(minutes, 1),
                "parcels_on_board": float(loaded),
                "minutes_loaded": round(minutes, 1) if loaded else 0.0,
            },
        )
        return self.raise_incident(conn, incident, source="forecast:offline") is not None

    # -- classify, group, store -----------------------------------------------------------

    def raise_incident(
        self, conn: sqlite3.Connection, incident: Incident, *, source: str
    ) -> dict[str, Any] | None:
        """Classify, group and store one incident (once); the queue item it is in."""
        if self.db.incident_known(conn, incident.incident_id):
            return None
        now = self.c.now_ms()
        context = self._context(conn, incident)
        decision = classify(self.policy, incident, context)
        inputs = policy_inputs(self.policy, incident, context)
        kind, value = incident.scope
        key = "|".join((incident.cls.value, incident.reason or "", kind, value))
        window = self.policy.group_window_ms(incident.cls)
        action = decision.action
        self.c.metrics.exception_raised(incident.cls.value, action.value)
        # an automatic resolution joins only resolved repeats; one needing a person joins
        # only the repeats waiting for a person (resolved ones stay resolved)
        statuses = ("auto_resolved",) if action is Action.AUTO else ("open", *NEEDS_PERSON)
        item = self.db.open_group(conn, key, incident.at_ms - window, statuses)
        if item is None:
            item = {
                "item_id": f"x-{incident.incident_id}",
                "cls": incident.cls.value,
                "reason": incident.reason,
                "scope_kind": kind,
                "scope_id": value,
                "group_key": key,
                "status": _STATUS[action],
                "action": action.value,
                "why": decision.reason,
                "recommended": decision.recommended.as_dict(),
                "options": [o.as_dict() for o in decision.options],
                "context": inputs,
                "decision": decision.as_dict(),
                "count": 1,
                "first_at_ms": incident.at_ms,
                "last_at_ms": incident.at_ms,
                "order_id": incident.order_id,
                "vehicle_id": incident.vehicle_id,
                "carrier_id": incident.carrier_id,
                "predicted": incident.predicted,
                "created_ms": now,
                "updated_ms": now,
            }
            if action is Action.AUTO:
                item["decision_id"] = self._record_auto(conn, item, inputs)
                item["decided_by"] = f"policy:{incident.cls.value}"
                item["decided_ms"] = now
                item["chosen"] = decision.recommended.as_dict()
            self.db.insert_item(conn, item)
            raised = True
        else:
            changes: dict[str, Any] = {
                "count": item["count"] + 1,
                "last_at_ms": max(item["last_at_ms"], incident.at_ms),
                "updated_ms": now,
            }
            raised = _RANK[action] > _RANK[Action(item["action"])]
            if raised:  # a graver repeat: the item now needs what the graver one needs
                changes.update(
                    status=_STATUS[action],
                    action=action.value,
                    why=decision.reason,
                    recommended=decision.recommended.as_dict(),
                    options=[o.as_dict() for o in decision.options],
                    context=inputs,
                    decision=decision.as_dict(),
                )
            self.db.update_item(conn, item["item_id"], **changes)
            item = {**item, **changes}
        subject = incident_to_dict(incident)
        self.db.add_incident(
            conn,
            incident.incident_id,
            item["item_id"],
            incident.cls.value,
            action.value,
            source,
            incident.detail,
            incident.at_ms,
            subject,
        )
        if action is Action.AUTO:  # each incident resolved by policy is carried out
            self.actions.queue(
                conn,
                item,
                decision.recommended.as_dict(),
                str(item["decided_by"]),
                str(item["decision_id"]),
                incident=subject,
            )
        if raised:
            event = WebhookEvent.exception_raised(
                {**decision.as_dict(), "item_id": item["item_id"], "status": item["status"]}
            )
            self.db.add_outbox(conn, "webhook", event.event_id, _event_dict(event), now)
        log.info(
            "exception %s (%s) -> %s in %s",
            incident.incident_id,
            incident.cls.value,
            action.value,
            item["item_id"],
        )
        return item

    def _record_auto(
        self, conn: sqlite3.Connection, item: dict[str, Any], inputs: dict[str, Any]
    ) -> str:
        output = exception_policy(inputs)
        return record(
            self.db,
            conn,
            kind="exception",
            rule="exception_policy",
            trigger={"kind": "exception", "item_id": item["item_id"], "class": item["cls"]},
            inputs=inputs,
            output=output,
            applied={"state": "auto_resolved", "chosen": output["recommended"]},
            approved_by=f"policy:{item['cls']}",
            now_ms=self.c.now_ms(),
        )

    def _context(self, conn: sqlite3.Connection, incident: Incident) -> Context:
        order: dict[str, Any] = {}
        if incident.order_id:
            row = self.db.order(incident.order_id, conn)
            if row is not None:
                order = {
                    k: row[k]
                    for k in (
                        "order_id",
                        "status",
                        "depot_id",
                        "day",
                        "window_start",
                        "window_end",
                        "customer",
                        "lat",
                        "lon",
                    )
                }
        vehicle: dict[str, Any] = {}
        if incident.vehicle_id:
            v = self.db.vehicle(incident.vehicle_id, conn)
            pos = self.db.position_of(incident.vehicle_id, conn)
            if v is not None:
                vehicle = {
                    "vehicle_id": v["vehicle_id"],
                    "fleet_id": v["fleet_id"],
                    "status": v["status"],
                    "fleet_kind": v["kind"],
                }
            if pos is not None:
                vehicle["position"] = pos
        kind, value = incident.scope
        history = tuple(
            f"{r['cls']} x{r['count']} ({r['status']})"
            for r in self.db.rows(
                conn,
                "SELECT cls, count, status FROM exception_items WHERE scope_kind = ? "
                "AND scope_id = ? ORDER BY last_at_ms DESC LIMIT 5",
                (kind, value),
            )
        )
        return Context(
            order=order,
            vehicle=vehicle,
            history=history,
            cost_impact=self._cost_impact(conn, incident),
        )

    def _cost_impact(self, conn: sqlite3.Connection, incident: Incident) -> float:
        """What resolving it by itself is estimated to cost (EUR): for a predicted lateness,
        the van's overtime past its shift at the van's hourly cost."""
        past = incident.measures.get("minutes_past_shift", 0.0)
        if incident.cls is not ExceptionClass.PREDICTED_LATENESS or not past:
            return 0.0
        v = self.db.vehicle(incident.vehicle_id, conn) if incident.vehicle_id else None
        per_hour_cents = float((v or {}).get("terms", {}).get("cost_per_hour") or 0)
        return round(past / 60 * per_hour_cents / 100, 2)

    def _is_vehicle(self, peer: str, conn: sqlite3.Connection) -> bool:
        if self.db.vehicle(peer, conn) is not None:
            return True
        row = self.db.one(conn, "SELECT role FROM devices WHERE device_id = ?", (peer,))
        return bool(row and row["role"] == "vehicle")

    # -- people ----------------------------------------------------------------------------

    def decide(
        self, item_id: str, verb: str, by: str, why: str = "", option: str | None = None
    ) -> dict[str, Any]:
        """A person approves, rejects or overrides a queue item; recorded as a decision."""
        now = self.c.now_ms()
        with self.c.store.transaction() as conn:
            item = self.db.exception_item(item_id, conn)
            if item is None:
                raise NotFoundError(f"no exception {item_id!r}")
            if item["status"] not in NEEDS_PERSON:
                who = item["decided_by"] or "nobody"
                raise AlreadyDecidedError(
                    f"exception {item_id} was already {item['status'].replace('_', ' ')} by "
                    f"{who} at {item['decided_ms']}; it cannot be {_past(verb)} now"
                )
            approval = Approval(
                item_id, decision_from_inputs(item["context"]), created_ms=item["created_ms"]
            )
            if verb == "approve":
                entry = approval.approve(by, why, at_ms=now)
            elif verb == "reject":
                entry = approval.reject(by, why, at_ms=now)
            else:
                entry = approval.override(by, option or "", why, at_ms=now)
            chosen = entry["chosen"]
            if chosen is not None:  # refused here, before anything is stored
                self.actions.check(conn, item, chosen["key"])
            who = f"ops:{entry['decided_by']}"
            did = record(
                self.db,
                conn,
                kind="exception",
                rule="exception_policy",
                trigger={"kind": "exception_approval", "item_id": item_id, "class": item["cls"]},
                inputs=item["context"],
                output=exception_policy(item["context"]),
                applied={
                    "state": entry["state"],
                    "chosen": entry["chosen"],
                    "why": entry["why"],
                    "followed_recommendation": entry["followed_recommendation"],
                    "count": item["count"],
                },
                approved_by=who,
                status=entry["state"],
                now_ms=now,
            )
            self.db.update_item(
                conn,
                item_id,
                status=entry["state"],
                decision_id=did,
                decided_by=who,
                decided_why=entry["why"],
                chosen=entry["chosen"],
                decided_ms=now,
                updated_ms=now,
            )
            action_id = (
                self.actions.queue(conn, item, chosen, who, did) if chosen is not None else None
            )
        log.info("exception %s %s by %s", item_id, entry["state"], who)
        out = {**entry, "item_id": item_id, "decision_id": did, "decided_by": who}
        if action_id is not None:  # carried out now; the outbox entry finds it done
            out["action"] = self.actions.run(action_id)
            self.c.operations.wake()
        return out

    def stats(self) -> dict[str, Any]:
        """Incidents by action and the share resolved without a person."""
        counts = self.db.automation_counts()
        auto = counts.get("incidents_auto", 0)
        total = sum(v for k, v in counts.items() if k.startswith("incidents_"))
        return {
            "incidents": total,
            "auto": auto,
            "auto_with_approval": counts.get("incidents_auto_with_approval", 0),
            "escalate": counts.get("incidents_escalate", 0),
            "auto_resolved_share": round(auto / total, 4) if total else None,
            "queue": sum(counts.get(f"items_{s}", 0) for s in NEEDS_PERSON),
            "items": {k[6:]: v for k, v in counts.items() if k.startswith("items_")},
            "actions": self.db.action_counts(),
            "tasks_open": len(self.db.tasks("open", 1000)),
        }


def _compact(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _past(verb: str) -> str:
    return {"approve": "approved", "reject": "rejected", "override": "overridden"}.get(verb, verb)


def _with(incident: Incident, **fields: Any) -> Incident:
    return replace(incident, **fields)


def _event_dict(event: WebhookEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "type": event.type,
        "created_ms": event.created_ms,
        "data": dict(event.data),
    }
