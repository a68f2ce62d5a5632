"""Decisions and triggers in the coordinator's store.

A decision row holds everything needed to reconstruct it: its trigger, a snapshot of its
inputs, solver, parameters and seed, its output (and the output's SHA-256), what was applied
(which may be less than the output when a field fact arrived during a solve), and who or
what approved it. A trigger is an event waiting for a rebalance; the decision that handled it
closes it.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from cloud.store.base import StoreBase

__all__ = ["DecisionStore"]

_JSON = ("trigger", "inputs", "params", "output", "applied")


class DecisionStore(StoreBase):
    """The decision record and the trigger queue."""

    def add_decision(self, conn: sqlite3.Connection, d: dict[str, Any]) -> None:
        row = {k: json.dumps(d[k], sort_keys=True) if k in _JSON else d[k] for k in d}
        cols = ", ".join(row)
        conn.execute(
            f"INSERT INTO decisions ({cols}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )

    def set_applied(
        self, conn: sqlite3.Connection, decision_id: str, applied: dict[str, Any]
    ) -> None:
        conn.execute(
            "UPDATE decisions SET applied = ? WHERE decision_id = ?",
            (json.dumps(applied, sort_keys=True), decision_id),
        )

    def decision(
        self, decision_id: str, conn: sqlite3.Connection | None = None
    ) -> dict[str, Any] | None:
        row = self.one(conn, "SELECT * FROM decisions WHERE decision_id = ?", (decision_id,))
        if row is not None:
            for k in _JSON:
                row[k] = json.loads(row[k])
        return row

    def morning_plan(
        self, region: str, conn: sqlite3.Connection | None = None
    ) -> dict[str, Any] | None:
        """The morning plan (``plan`` decision) of a region ``depot/day``, if it has one."""
        row = self.one(
            conn,
            "SELECT decision_id FROM decisions WHERE region = ? AND kind = 'plan' "
            "ORDER BY at_ms, decision_id LIMIT 1",
            (region,),
        )
        return None if row is None else self.decision(row["decision_id"], conn)

    def decisions(self, kind: str | None, limit: int) -> list[dict[str, Any]]:
        where, params = ("WHERE kind = ?", (kind,)) if kind else ("", ())
        return self.query(
            "SELECT decision_id, kind, rule, region, trigger, solver, seed, output_sha, "
            f"approved_by, status, seconds, at_ms FROM decisions {where} "
            "ORDER BY at_ms DESC, decision_id LIMIT ?",
            (*params, limit),
        )

    def add_trigger(
        self,
        conn: sqlite3.Connection,
        kind: str,
        depot_id: str,
        day: str,
        subject: str,
        detail: dict[str, Any],
        now_ms: int,
    ) -> bool:
        """Queue a trigger unless the same (kind, subject) is already waiting. True if new."""
        waiting = conn.execute(
            "SELECT 1 FROM triggers WHERE decision_id IS NULL AND kind = ? AND subject = ?",
            (kind, subject),
        ).fetchone()
        if waiting:
            return False
        conn.execute(
            "INSERT INTO triggers (kind, depot_id, day, subject, detail, at_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (kind, depot_id, day, subject, json.dumps(detail, sort_keys=True), now_ms),
        )
        return True

    def open_triggers(self, conn: sqlite3.Connection | None = None) -> list[dict[str, Any]]:
        rows = self.rows(
            conn, "SELECT * FROM triggers WHERE decision_id IS NULL ORDER BY trigger_id"
        )
        for r in rows:
            r["detail"] = json.loads(r["detail"])
        return rows

    def close_triggers(
        self, conn: sqlite3.Connection, trigger_ids: list[int], decision_id: str
    ) -> None:
        conn.executemany(
            "UPDATE triggers SET decision_id = ? WHERE trigger_id = ?",
            [(decision_id, t) for t in trigger_ids],
        )
