"""Customer ETAs: each order's customer-facing window, apart from the operational ETA.

Every ``route_sequence`` a van reports carries an operational ETA per remaining stop; it is
stored for each order the coordinator knows (``customer_windows.operational_eta_ms``). Only
when :class:`cloud.ops.CustomerEtaRule` says so (first window, a shift past the threshold
with hysteresis, a narrower window as the van approaches; never more often than the
tenant's interval, never in quiet hours) does the customer-facing window move and a
notification get queued, logged with the ETA change that caused it, in the same
transaction. The message itself goes out through the customer's preferred channel from the
operations worker, after the commit, so ingest never waits on SMTP or a webhook.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from cloud.ops import CustomerEtaRule, CustomerWindow, WebhookEvent
from cloud.store import DONE
from protocol import RouteSequenceReport

if TYPE_CHECKING:
    from cloud.coordinator import Coordinator

__all__ = ["CustomerEtas"]


class CustomerEtas:
    """Keeps customer windows and queues the notifications the rule allows."""

    def __init__(self, coordinator: Coordinator, rule: CustomerEtaRule) -> None:
        self.c = coordinator
        self.db = coordinator.db
        self.rule = rule
        self._zone = ZoneInfo(rule.settings.timezone)

    def on_sequence(self, conn: sqlite3.Connection, peer: str, r: RouteSequenceReport) -> int:
        """Apply a van's ETAs; returns how many notifications were queued."""
        now = self.c.now_ms()
        queued = 0
        for stops_away, s in enumerate(r.order):
            order = self.db.order(s.stop_id, conn)
            if order is None or order["status"] in DONE:
                continue
            eta_ms = int(s.eta) * 1000
            row = self.db.customer_window(conn, order["order_id"])
            previous = _window(row)
            decision = self.rule.decide(previous, eta_ms, now, stops_away)
            if not decision.notify:
                if row is not None:
                    self.db.set_operational_eta(conn, order["order_id"], eta_ms, now, decision.due)
                continue
            w = decision.window
            self.db.put_customer_window(
                conn,
                {
                    "order_id": order["order_id"],
                    "start_ms": w.start_ms,
                    "end_ms": w.end_ms,
                    "eta_ms": w.eta_ms,
                    "width_min": w.width_min,
                    "notified_ms": w.notified_ms,
                    "shift_min": w.shift_min,
                    "operational_eta_ms": eta_ms,
                    "operational_at_ms": now,
                    "stops_away": stops_away,
                    "due": None,
                },
            )
            self._queue(conn, order, decision.as_dict(), peer, now)
            queued += 1
        return queued

    def _queue(
        self,
        conn: sqlite3.Connection,
        order: dict[str, Any],
        decision: dict[str, Any],
        peer: str,
        now: int,
    ) -> str:
        customer = order.get("customer") or order["order_id"]
        w = decision["window"]
        start, end = self._clock(w["start_ms"]), self._clock(w["end_ms"])
        day = datetime.fromtimestamp(w["start_ms"] / 1000, tz=UTC).astimezone(self._zone)
        nid = uuid.uuid4().hex
        text = (
            f"Your delivery {order['order_id']} is expected on {day:%a %d %b} between "
            f"{start} and {end}."
        )
        change = {**decision["change"], "reason": decision["reason"], "vehicle_id": peer}
        self.db.add_notification(
            conn,
            {
                "notification_id": nid,
                "order_id": order["order_id"],
                "customer_id": customer,
                "kind": "eta_window",
                "reason": decision["reason"],
                "subject": f"Delivery window {start}-{end}",
                "text": text,
                "change": change,
                "sent_window": w,
                "status": "queued",
                "created_ms": now,
            },
        )
        self.db.add_outbox(conn, "notify", nid, {"notification_id": nid}, now)
        event = WebhookEvent.eta_changed(
            order["order_id"], {"window": w, "change": change, "notification_id": nid}
        )
        payload = {
            "event_id": event.event_id,
            "type": event.type,
            "created_ms": event.created_ms,
            "data": dict(event.data),
        }
        self.db.add_outbox(conn, "webhook", event.event_id, payload, now)
        return nid

    def notify_delay(
        self,
        conn: sqlite3.Connection,
        order: dict[str, Any],
        eta_ms: int | None,
        vehicle_id: str | None,
        now: int,
    ) -> dict[str, Any]:
        """Tell a customer their delivery is late (an exception's ``notify_customer``).

        Through the same rule as every ETA message: nothing when the window already sent
        holds the new ETA, nothing in quiet hours; a message right after another one is sent
        all the same (it is a decision, not a drift). Returns what was done.
        """
        oid = order["order_id"]
        row = self.db.customer_window(conn, oid)
        if eta_ms is None and row is not None:
            eta_ms = int(row["operational_eta_ms"])
        if eta_ms is None:
            return {"did": f"no ETA for order {oid} yet: the customer hears of the first one"}
        if row is not None and row["start_ms"] <= eta_ms <= row["end_ms"]:
            return {
                "did": f"the customer already holds the window {self._clock(row['start_ms'])}-"
                f"{self._clock(row['end_ms'])}, which includes the new ETA: no message",
            }
        stops_away = row["stops_away"] if row is not None else None
        decision = self.rule.decide(_window(row), eta_ms, now, stops_away)
        if decision.reason == "quiet_hours":
            return {"did": "quiet hours: the customer hears of it with the next ETA after them"}
        if not decision.notify:  # rate limited or under the threshold: a decision sends anyway
            decision = replace(
                decision, notify=True, window=self.rule.window_for(eta_ms, stops_away, now)
            )
        reason = "delay"
        body = {**decision.as_dict(), "reason": reason}
        w = decision.window
        self.db.put_customer_window(
            conn,
            {
                "order_id": oid, "start_ms": w.start_ms, "end_ms": w.end_ms, "eta_ms": w.eta_ms,
                "width_min": w.width_min, "notified_ms": now, "shift_min": w.shift_min,
                "operational_eta_ms": eta_ms, "operational_at_ms": now, "stops_away": stops_away,
                "due": None,
            },
        )  # fmt: skip
        nid = self._queue(conn, order, body, vehicle_id or "", now)
        return {
            "did": f"customer told the new window {self._clock(w.start_ms)}-"
            f"{self._clock(w.end_ms)} (notification {nid})",
            "notification_id": nid,
        }

    def notify_new_day(self, conn: sqlite3.Connection, order_id: str, now: int) -> str | None:
        """Tell a customer their delivery moved to another day; returns the notification id."""
        order = self.db.order(order_id, conn)
        if order is None:
            return None
        customer = order.get("customer") or order_id
        day = datetime.fromisoformat(order["day"])
        nid = uuid.uuid4().hex
        window: dict[str, Any] = {}
        if order.get("window_start") is not None:
            window = {
                "start_ms": order["window_start"] * 1000,
                "end_ms": order["window_end"] * 1000,
            }
        self.db.add_notification(
            conn,
            {
                "notification_id": nid,
                "order_id": order_id,
                "customer_id": customer,
                "kind": "new_day",
                "reason": "rescheduled",
                "subject": f"Delivery moved to {day:%a %d %b}",
                "text": f"We could not deliver {order_id} as planned; we will come again on "
                f"{day:%a %d %b}.",
                "change": {"new_day": order["day"], "why": order.get("reason")},
                "sent_window": window,
                "status": "queued",
                "created_ms": now,
            },
        )
        self.db.add_outbox(conn, "notify", nid, {"notification_id": nid}, now)
        return nid

    def _clock(self, ms: int) -> str:
        return f"{datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(self._zone):%H:%M}"

    def window_of(self, order_id: str) -> dict[str, Any] | None:
        """The customer-facing window and the operational ETA of an order, side by side."""
        row = self.db.customer_window(None, order_id)
        if row is None:
            return None
        return {
            "order_id": order_id,
            "customer_window": {
                k: row[k] for k in ("start_ms", "end_ms", "width_min", "notified_ms", "shift_min")
            },
            "notified_eta_ms": row["eta_ms"],
            "operational_eta_ms": row["operational_eta_ms"],
            "operational_at_ms": row["operational_at_ms"],
            "due": row["due"],
        }


def _window(row: dict[str, Any] | None) -> CustomerWindow | None:
    if row is None:
        return None
    return CustomerWindow(
        start_ms=int(row["start_ms"]),
        end_ms=int(row["end_ms"]),
        eta_ms=int(row["eta_ms"]),
        width_min=int(row["width_min"]),
        notified_ms=int(row["notified_ms"]),
        shift_min=float(row["shift_min"]),
    )
