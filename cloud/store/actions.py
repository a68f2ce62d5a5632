"""What exception decisions carried out, in the coordinator's store.

One ``exception_actions`` row per decision that chose an option: the option, who chose it,
its status (``queued`` → ``done``, or ``waiting`` on the rebalance triggers it queued, or
``failed``/``skipped`` with the reason), and its outcome. ``ops_tasks`` are the instructions
a person must carry out (call a driver, bring a parcel back). A re-attempt sets the failed
stop fact aside (``stop_fact_history``) so the next attempt's fact is the stop's own.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from cloud.store.base import StoreBase

__all__ = ["ActionStore"]

_ACTION_JSON = ("triggers", "outcome", "subject")


def _action(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    for k in _ACTION_JSON:
        row[k] = json.loads(row[k])
    return row


class ActionStore(StoreBase):
    """Exception actions, ops tasks, set-aside stop facts, and the rescheduling of orders."""

    # -- actions ---------------------------------------------------------------------------

    def add_action(self, conn: sqlite3.Connection, row: dict[str, Any]) -> bool:
        """Store a new action; False (and nothing written) if its id is taken."""
        row = {k: json.dumps(v, sort_keys=True) if k in _ACTION_JSON else v for k, v in row.items()}
        cols = ", ".join(row)
        cur = conn.execute(
            f"INSERT OR IGNORE INTO exception_actions ({cols}) "
            f"VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )
        return cur.rowcount == 1

    def update_action(self, conn: sqlite3.Connection, action_id: str, **fields: Any) -> None:
        row = {
            k: json.dumps(v, sort_keys=True) if k in _ACTION_JSON else v for k, v in fields.items()
        }
        sets = ", ".join(f"{k} = ?" for k in row)
        conn.execute(
            f"UPDATE exception_actions SET {sets} WHERE action_id = ?", (*row.values(), action_id)
        )

    def action(
        self, action_id: str, conn: sqlite3.Connection | None = None
    ) -> dict[str, Any] | None:
        return _action(
            self.one(conn, "SELECT * FROM exception_actions WHERE action_id = ?", (action_id,))
        )

    def actions_of(
        self, item_id: str, conn: sqlite3.Connection | None = None
    ) -> list[dict[str, Any]]:
        rows = self.rows(
            conn,
            "SELECT * FROM exception_actions WHERE item_id = ? ORDER BY created_ms, action_id",
            (item_id,),
        )
        return [r for r in map(_action, rows) if r is not None]

    def actions(
        self, status: str | None = None, limit: int = 100, conn: sqlite3.Connection | None = None
    ) -> list[dict[str, Any]]:
        """Actions, newest first (of one status if given)."""
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = self.rows(
            conn,
            f"SELECT * FROM exception_actions {where} ORDER BY updated_ms DESC, action_id LIMIT ?",
            (*params, limit),
        )
        return [r for r in map(_action, rows) if r is not None]

    def recent_actions(self, limit: int = 20) -> list[dict[str, Any]]:
        """Actions decided by a person (not ``policy:``), newest first, with their class."""
        rows = self.query(
            "SELECT a.*, i.cls, i.vehicle_id, i.order_id, i.carrier_id "
            "FROM exception_actions a JOIN exception_items i USING (item_id) "
            "WHERE a.by NOT LIKE 'policy:%' ORDER BY a.updated_ms DESC, a.action_id LIMIT ?",
            (limit,),
        )
        return [r for r in map(_action, rows) if r is not None]

    def action_counts(self) -> dict[str, int]:
        rows = self.store.read("SELECT status, count(*) FROM exception_actions GROUP BY 1")
        return {str(k): int(v) for k, v in rows}

    # -- tasks -----------------------------------------------------------------------------

    def add_task(self, conn: sqlite3.Connection, row: dict[str, Any]) -> bool:
        cols = ", ".join(row)
        cur = conn.execute(
            f"INSERT OR IGNORE INTO ops_tasks ({cols}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )
        return cur.rowcount == 1

    def task(self, task_id: str, conn: sqlite3.Connection | None = None) -> dict[str, Any] | None:
        return self.one(conn, "SELECT * FROM ops_tasks WHERE task_id = ?", (task_id,))

    def tasks(self, status: str | None = "open", limit: int = 100) -> list[dict[str, Any]]:
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        return self.query(
            f"SELECT * FROM ops_tasks {where} ORDER BY created_ms DESC, task_id LIMIT ?",
            (*params, limit),
        )

    def close_task(
        self, conn: sqlite3.Connection, task_id: str, by: str, note: str, now_ms: int
    ) -> None:
        conn.execute(
            "UPDATE ops_tasks SET status = 'done', done_by = ?, done_note = ?, done_ms = ? "
            "WHERE task_id = ?",
            (by, note, now_ms, task_id),
        )

    # -- orders moved to another day -------------------------------------------------------

    def move_order_to_day(
        self,
        conn: sqlite3.Connection,
        order_id: str,
        day: str,
        shift_s: int,
        reason: str,
        now_ms: int,
    ) -> None:
        """The order opens again on ``day``; its window moves by ``shift_s``; it leaves its
        vehicle (the next plan of that day places it)."""
        conn.execute(
            "UPDATE orders SET day = ?, status = 'open', reason = ?, updated_ms = ? "
            "WHERE order_id = ?",
            (day, reason, now_ms, order_id),
        )
        conn.execute(
            "UPDATE stops SET window_start = window_start + ?, window_end = window_end + ? "
            "WHERE order_id = ? AND window_start IS NOT NULL",
            (shift_s, shift_s, order_id),
        )
        conn.execute("DELETE FROM assignments WHERE order_id = ?", (order_id,))
        conn.execute("DELETE FROM customer_windows WHERE order_id = ?", (order_id,))

    def set_aside_stop_fact(
        self, conn: sqlite3.Connection, stop_id: str, by: str, now_ms: int
    ) -> dict[str, Any] | None:
        """Keep a stop's final fact in the history and clear it for a new attempt."""
        fact = self.one(conn, "SELECT * FROM stop_facts WHERE stop_id = ?", (stop_id,))
        if fact is None:
            return None
        conn.execute(
            "INSERT OR IGNORE INTO stop_fact_history (stop_id, vehicle_id, route_id, status, "
            "at_ms, event_id, reason, recipient, set_aside_by, set_aside_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                fact["stop_id"], fact["vehicle_id"], fact["route_id"], fact["status"],
                fact["at_ms"], fact["event_id"], fact["reason"], fact["recipient"], by, now_ms,
            ),
        )  # fmt: skip
        conn.execute("DELETE FROM stop_facts WHERE stop_id = ?", (stop_id,))
        return fact

    def day_planned(self, conn: sqlite3.Connection, depot_id: str, day: str) -> bool:
        row = conn.execute(
            "SELECT 1 FROM decisions WHERE region = ? AND kind IN ('plan', 'rebalance') LIMIT 1",
            (f"{depot_id}/{day}",),
        ).fetchone()
        return row is not None

    # -- triggers an action waits on -------------------------------------------------------

    def trigger(self, conn: sqlite3.Connection | None, trigger_id: int) -> dict[str, Any] | None:
        row = self.one(conn, "SELECT * FROM triggers WHERE trigger_id = ?", (trigger_id,))
        if row is not None:
            row["detail"] = json.loads(row["detail"])
        return row

    def open_trigger_id(self, conn: sqlite3.Connection, kind: str, subject: str) -> int | None:
        row = conn.execute(
            "SELECT trigger_id FROM triggers WHERE decision_id IS NULL AND kind = ? "
            "AND subject = ? ORDER BY trigger_id DESC LIMIT 1",
            (kind, subject),
        ).fetchone()
        return int(row[0]) if row else None

    def vehicle_orders(
        self, conn: sqlite3.Connection, vehicle_id: str, open_only: bool = True
    ) -> list[dict[str, Any]]:
        """Orders assigned to a vehicle (or a carrier fleet), by position."""
        done = "AND o.status NOT IN ('delivered', 'failed', 'picked_up', 'skipped', 'cancelled')"
        return self.rows(
            conn,
            "SELECT o.order_id, o.status, o.depot_id, o.day, a.vehicle_id, a.kind "
            "FROM assignments a JOIN orders o USING (order_id) "
            "LEFT JOIN vehicles v ON v.vehicle_id = a.vehicle_id "
            "WHERE (a.vehicle_id = ? OR v.fleet_id = ?) "
            f"{done if open_only else ''} ORDER BY a.position, o.order_id",
            (vehicle_id, vehicle_id),
        )
