"""Orders in the coordinator's store: the order as the caller sent it, its stop, its parcels.

An order is kept with the exact body it came with (``body``, ``body_sha``) and the answer it
got (``answer``), so a repeated request with the same id is answered the same way. Its stop
(one per order, ``stop_id`` = ``order_id``) holds what planning needs and may change (a
customer's reschedule); its status moves ``open`` → ``assigned``/``unplanned`` → a field
fact (``delivered``, ``failed``, ``picked_up``, ``skipped``) or ``cancelled``.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from cloud.store.base import StoreBase

__all__ = ["DONE", "OrderStore"]

DONE = ("delivered", "failed", "picked_up", "skipped", "cancelled")
"""Statuses no plan moves again."""


class OrderStore(StoreBase):
    """Orders, their stops and parcels."""

    def insert_order(
        self,
        conn: sqlite3.Connection,
        order: dict[str, Any],
        body_sha: str,
        answer: dict[str, Any],
        now_ms: int,
    ) -> None:
        """Store a validated order (``cloud.intake`` shape) with its stop and parcels."""
        conn.execute(
            "INSERT INTO orders (order_id, depot_id, day, body, body_sha, answer, status, "
            "created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?)",
            (
                order["order_id"],
                order["depot_id"],
                order["day"],
                json.dumps(order, sort_keys=True),
                body_sha,
                json.dumps(answer, sort_keys=True),
                now_ms,
                now_ms,
            ),
        )
        w = order.get("window") or {}
        conn.execute(
            "INSERT INTO stops (stop_id, order_id, kind, lat, lon, address, window_start, "
            "window_end, service_s, size, skills, optional, postponement_cost, customer) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                order["order_id"],
                order["order_id"],
                order["kind"],
                order["lat"],
                order["lon"],
                order.get("address"),
                w.get("start"),
                w.get("end"),
                order["service_s"],
                order["size"],
                json.dumps(sorted(order["skills"])),
                int(order["optional"]),
                order["postponement_cost"],
                order.get("customer"),
            ),
        )
        conn.executemany(
            "INSERT INTO parcels (parcel_id, order_id, barcode, weight_kg, volume_l, cold_chain) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    p["parcel_id"],
                    order["order_id"],
                    p["barcode"],
                    p["weight_kg"],
                    p["volume_l"],
                    int(p["cold_chain"]),
                )
                for p in order["parcels"]
            ],
        )

    def set_order_status(
        self,
        conn: sqlite3.Connection,
        order_id: str,
        status: str,
        reason: str | None,
        now_ms: int,
        done_by: str | None = None,
    ) -> None:
        conn.execute(
            "UPDATE orders SET status = ?, reason = ?, updated_ms = ?, "
            "done_by = coalesce(?, done_by) WHERE order_id = ?",
            (status, reason, now_ms, done_by, order_id),
        )

    def set_window(
        self, conn: sqlite3.Connection, order_id: str, start: int | None, end: int | None
    ) -> None:
        conn.execute(
            "UPDATE stops SET window_start = ?, window_end = ? WHERE order_id = ?",
            (start, end, order_id),
        )

    # -- reads -----------------------------------------------------------------------------

    def order(self, order_id: str, conn: sqlite3.Connection | None = None) -> dict[str, Any] | None:
        """The order row joined with its stop, or None."""
        return self.one(
            conn,
            "SELECT o.*, s.stop_id, s.kind, s.lat, s.lon, s.address, s.window_start, "
            "s.window_end, s.service_s, s.size, s.skills, s.optional, s.postponement_cost, "
            "s.customer FROM orders o JOIN stops s USING (order_id) WHERE o.order_id = ?",
            (order_id,),
        )

    def order_ids_known(self, ids: list[str], conn: sqlite3.Connection | None = None) -> set[str]:
        found: set[str] = set()
        for k in range(0, len(ids), 500):
            chunk = ids[k : k + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.rows(
                conn, f"SELECT order_id FROM orders WHERE order_id IN ({marks})", tuple(chunk)
            )
            found.update(r["order_id"] for r in rows)
        return found

    def region_orders(
        self, depot_id: str, day: str, conn: sqlite3.Connection | None = None
    ) -> list[dict[str, Any]]:
        """The orders of one depot and day that a plan may still place, by order id."""
        marks = ",".join("?" * len(DONE))
        return self.rows(
            conn,
            "SELECT o.order_id, o.status, s.kind, s.lat, s.lon, s.window_start, s.window_end, "
            "s.service_s, s.size, s.skills, s.optional, s.postponement_cost "
            "FROM orders o JOIN stops s USING (order_id) "
            f"WHERE o.depot_id = ? AND o.day = ? AND o.status NOT IN ({marks}) "
            "ORDER BY o.order_id",
            (depot_id, day, *DONE),
        )

    def regions(self, day: str, conn: sqlite3.Connection | None = None) -> list[str]:
        rows = self.rows(
            conn, "SELECT DISTINCT depot_id FROM orders WHERE day = ? ORDER BY 1", (day,)
        )
        return [r["depot_id"] for r in rows]

    def stops_of(
        self, order_ids: list[str], conn: sqlite3.Connection | None = None
    ) -> dict[str, dict[str, Any]]:
        """Stop rows with their parcels, by order id."""
        out: dict[str, dict[str, Any]] = {}
        for k in range(0, len(order_ids), 500):
            chunk = order_ids[k : k + 500]
            marks = ",".join("?" * len(chunk))
            for r in self.rows(
                conn, f"SELECT * FROM stops WHERE order_id IN ({marks})", tuple(chunk)
            ):
                r["parcels"] = []
                out[r["order_id"]] = r
            for p in self.rows(
                conn,
                f"SELECT * FROM parcels WHERE order_id IN ({marks}) ORDER BY parcel_id",
                tuple(chunk),
            ):
                out[p["order_id"]]["parcels"].append(p)
        return out

    def parcel(
        self, parcel_id: str | None, barcode: str, conn: sqlite3.Connection | None = None
    ) -> dict[str, Any] | None:
        """A parcel by id, or else by barcode."""
        if parcel_id:
            row = self.one(conn, "SELECT * FROM parcels WHERE parcel_id = ?", (parcel_id,))
            if row is not None:
                return row
        return self.one(conn, "SELECT * FROM parcels WHERE barcode = ?", (barcode,))

    def orders_list(self, day: str | None, status: str | None, limit: int) -> list[dict[str, Any]]:
        where, params = [], []
        if day:
            where.append("day = ?")
            params.append(day)
        if status:
            where.append("status = ?")
            params.append(status)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self.query(
            "SELECT order_id, depot_id, day, status, reason, done_by, updated_ms FROM orders "
            f"{clause} ORDER BY order_id LIMIT ?",
            (*params, limit),
        )
