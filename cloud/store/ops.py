"""Operations in the coordinator's store: the exception queue, customer windows and the
notifications they caused, customer contacts, webhook targets and deliveries
(:mod:`cloud.store.webhooks`), API tokens, and the outbox of work (webhook events, customer
messages) that leaves only after its transaction commits.

An exception queue item is one group of repeats of the same cause; its incidents are kept
one by one (``exception_incidents``), which is what the automation share counts.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from cloud.store.actions import ActionStore
from cloud.store.webhooks import WebhookStore

__all__ = ["NEEDS_PERSON", "OpsStore"]

NEEDS_PERSON = ("awaiting_approval", "escalated")
"""Queue item statuses that wait for a person."""

_ITEM_JSON = ("recommended", "options", "context", "decision", "chosen")


def _item(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    for k in _ITEM_JSON:
        if row.get(k) is not None:
            row[k] = json.loads(row[k])
    row["predicted"] = bool(row["predicted"])
    return row


class OpsStore(WebhookStore, ActionStore):
    """The exception queue, customer ETAs, notifications, webhooks, tokens, ops outbox."""

    # -- exception queue -------------------------------------------------------------------

    def incident_known(self, conn: sqlite3.Connection, incident_id: str) -> bool:
        row = conn.execute(
            "SELECT 1 FROM exception_incidents WHERE incident_id = ?", (incident_id,)
        ).fetchone()
        return row is not None

    def open_group(
        self,
        conn: sqlite3.Connection,
        group_key: str,
        since_ms: int,
        statuses: tuple[str, ...] = ("open", "auto_resolved", *NEEDS_PERSON),
    ) -> dict[str, Any] | None:
        """The newest item of this cause in one of ``statuses`` (undecided ones by default)
        with an incident at or after ``since_ms``."""
        marks = ",".join("?" * len(statuses))
        return _item(
            self.one(
                conn,
                f"SELECT * FROM exception_items WHERE group_key = ? AND last_at_ms >= ? "
                f"AND status IN ({marks}) ORDER BY last_at_ms DESC LIMIT 1",
                (group_key, since_ms, *statuses),
            )
        )

    def insert_item(self, conn: sqlite3.Connection, item: dict[str, Any]) -> None:
        row = {k: json.dumps(v, sort_keys=True) if k in _ITEM_JSON else v for k, v in item.items()}
        row["predicted"] = int(bool(row.get("predicted")))
        cols = ", ".join(row)
        conn.execute(
            f"INSERT INTO exception_items ({cols}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )

    def update_item(self, conn: sqlite3.Connection, item_id: str, **fields: Any) -> None:
        row = {
            k: json.dumps(v, sort_keys=True) if k in _ITEM_JSON else v for k, v in fields.items()
        }
        sets = ", ".join(f"{k} = ?" for k in row)
        conn.execute(
            f"UPDATE exception_items SET {sets} WHERE item_id = ?", (*row.values(), item_id)
        )

    def add_incident(
        self,
        conn: sqlite3.Connection,
        incident_id: str,
        item_id: str,
        cls: str,
        action: str,
        source: str,
        detail: str,
        at_ms: int,
        subject: dict[str, Any] | None = None,
    ) -> None:
        conn.execute(
            "INSERT INTO exception_incidents (incident_id, item_id, cls, action, source, detail, "
            "at_ms, subject) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                incident_id, item_id, cls, action, source, detail, at_ms,
                json.dumps(subject, sort_keys=True) if subject is not None else None,
            ),
        )  # fmt: skip

    def incident_subjects(self, conn: sqlite3.Connection, item_id: str) -> list[dict[str, Any]]:
        """The subjects (order, vehicle...) of an item's incidents, oldest first."""
        rows = conn.execute(
            "SELECT subject FROM exception_incidents WHERE item_id = ? AND subject IS NOT NULL "
            "ORDER BY at_ms, incident_id",
            (item_id,),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def exception_item(
        self, item_id: str, conn: sqlite3.Connection | None = None
    ) -> dict[str, Any] | None:
        return _item(self.one(conn, "SELECT * FROM exception_items WHERE item_id = ?", (item_id,)))

    def exception_items(
        self, status: str | None = None, limit: int = 200, queue: bool = False
    ) -> list[dict[str, Any]]:
        """Items, newest first; ``queue``: only those waiting for a person, gravest first."""
        if queue:
            marks = ",".join("?" * len(NEEDS_PERSON))
            rows = self.query(
                f"SELECT * FROM exception_items WHERE status IN ({marks}) "
                "ORDER BY status = 'escalated' DESC, first_at_ms LIMIT ?",
                (*NEEDS_PERSON, limit),
            )
        elif status:
            rows = self.query(
                "SELECT * FROM exception_items WHERE status = ? ORDER BY last_at_ms DESC LIMIT ?",
                (status, limit),
            )
        else:
            rows = self.query(
                "SELECT * FROM exception_items ORDER BY last_at_ms DESC LIMIT ?", (limit,)
            )
        return [r for r in map(_item, rows) if r is not None]

    def incidents_of(self, item_id: str) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT * FROM exception_incidents WHERE item_id = ? ORDER BY at_ms, incident_id",
            (item_id,),
        )
        for r in rows:
            r["subject"] = json.loads(r["subject"]) if r.get("subject") else None
        return rows

    def automation_counts(self) -> dict[str, int]:
        """Incidents by the policy's action, and queue items by status."""
        by_action = self.store.read("SELECT action, count(*) FROM exception_incidents GROUP BY 1")
        by_status = self.store.read("SELECT status, count(*) FROM exception_items GROUP BY 1")
        out = {f"incidents_{k}": int(v) for k, v in by_action}
        out.update({f"items_{k}": int(v) for k, v in by_status})
        return out

    def last_trigger_seen(self) -> int:
        row = self.store.read(
            "SELECT coalesce(max(CAST(substr(incident_id, 9) AS INTEGER)), 0) "
            "FROM exception_incidents WHERE incident_id LIKE 'trigger-%'"
        )
        return int(row[0][0])

    def triggers_after(self, trigger_id: int, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(kinds))
        rows = self.query(
            f"SELECT * FROM triggers WHERE trigger_id > ? AND kind IN ({marks}) "
            "ORDER BY trigger_id",
            (trigger_id, *kinds),
        )
        for r in rows:
            r["detail"] = json.loads(r["detail"])
        return rows

    def offline_vehicles(self, before_ms: int) -> list[dict[str, Any]]:
        return self.query(
            "SELECT device_id, status_at_ms FROM devices WHERE role = 'vehicle' "
            "AND status = 'offline' AND status_at_ms <= ? ORDER BY device_id",
            (before_ms,),
        )

    # -- customer windows and notifications -----------------------------------------------

    def customer_window(
        self, conn: sqlite3.Connection | None, order_id: str
    ) -> dict[str, Any] | None:
        return self.one(conn, "SELECT * FROM customer_windows WHERE order_id = ?", (order_id,))

    def put_customer_window(self, conn: sqlite3.Connection, row: dict[str, Any]) -> None:
        self.upsert(conn, "customer_windows", "order_id", row)

    def set_operational_eta(
        self, conn: sqlite3.Connection, order_id: str, eta_ms: int, at_ms: int, due: str | None
    ) -> None:
        conn.execute(
            "UPDATE customer_windows SET operational_eta_ms = ?, operational_at_ms = ?, due = ? "
            "WHERE order_id = ?",
            (eta_ms, at_ms, due, order_id),
        )

    def contact(self, conn: sqlite3.Connection | None, customer_id: str) -> dict[str, Any] | None:
        row = self.one(
            conn, "SELECT * FROM customer_contacts WHERE customer_id = ?", (customer_id,)
        )
        if row is not None:
            row["preferences"] = json.loads(row["preferences"])
        return row

    def put_contact(self, conn: sqlite3.Connection, row: dict[str, Any]) -> None:
        row = {**row, "preferences": json.dumps(list(row["preferences"]))}
        self.upsert(conn, "customer_contacts", "customer_id", row)

    def add_notification(self, conn: sqlite3.Connection, row: dict[str, Any]) -> None:
        row = {
            **row,
            "change": json.dumps(row["change"], sort_keys=True),
            "sent_window": json.dumps(row["sent_window"], sort_keys=True),
        }
        cols = ", ".join(row)
        conn.execute(
            f"INSERT INTO notifications ({cols}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )

    def set_notification_sent(
        self,
        conn: sqlite3.Connection,
        notification_id: str,
        status: str,
        channel: str,
        detail: str,
        at_ms: int,
    ) -> None:
        conn.execute(
            "UPDATE notifications SET status = ?, channel = ?, detail = ?, sent_ms = ? "
            "WHERE notification_id = ?",
            (status, channel, detail, at_ms, notification_id),
        )

    def notifications(self, order_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        where, params = ("WHERE order_id = ?", (order_id,)) if order_id else ("", ())
        rows = self.query(
            f"SELECT * FROM notifications {where} ORDER BY created_ms DESC, notification_id "
            "LIMIT ?",
            (*params, limit),
        )
        for r in rows:
            r["change"] = json.loads(r["change"])
            r["window"] = json.loads(r.pop("sent_window"))
        return rows

    # -- carriers --------------------------------------------------------------------------

    def carrier_of(self, order_id: str, conn: sqlite3.Connection | None = None) -> str | None:
        """The 3PL or gig fleet serving an order (by its assignment), None for own vans."""
        row = self.one(
            conn,
            "SELECT f.fleet_id, f.kind FROM assignments a "
            "LEFT JOIN vehicles v ON v.vehicle_id = a.vehicle_id "
            "JOIN fleets f ON f.fleet_id = coalesce(v.fleet_id, a.vehicle_id) "
            "WHERE a.order_id = ?",
            (order_id,),
        )
        return row["fleet_id"] if row and row["kind"] != "own" else None

    def carrier_orders(self, carrier_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        return self.query(
            "SELECT o.order_id, o.depot_id, o.day, o.status, o.reason, o.done_by, o.updated_ms, "
            "a.vehicle_id, a.eta FROM orders o JOIN assignments a USING (order_id) "
            "LEFT JOIN vehicles v ON v.vehicle_id = a.vehicle_id "
            "WHERE coalesce(v.fleet_id, a.vehicle_id) = ? ORDER BY o.order_id LIMIT ?",
            (carrier_id, limit),
        )

    # -- tokens ----------------------------------------------------------------------------

    def put_token(self, conn: sqlite3.Connection, row: dict[str, Any]) -> None:
        self.upsert(conn, "api_tokens", "token_id", row)

    def tokens(self) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM api_tokens ORDER BY created_ms")

    # -- ops outbox ------------------------------------------------------------------------

    def add_outbox(
        self, conn: sqlite3.Connection, kind: str, ref: str, payload: dict[str, Any], now_ms: int
    ) -> None:
        conn.execute(
            "INSERT INTO ops_outbox (kind, ref, payload, created_ms) VALUES (?, ?, ?, ?)",
            (kind, ref, json.dumps(payload, sort_keys=True, default=str), now_ms),
        )

    def outbox_due(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT * FROM ops_outbox WHERE done_ms IS NULL ORDER BY entry_id LIMIT ?", (limit,)
        )
        for r in rows:
            r["payload"] = json.loads(r["payload"])
        return rows

    def outbox_done(self, conn: sqlite3.Connection, entry_id: int, now_ms: int) -> None:
        conn.execute("UPDATE ops_outbox SET done_ms = ? WHERE entry_id = ?", (now_ms, entry_id))
