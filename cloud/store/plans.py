"""Plans in the coordinator's store: route plan versions and who serves which order.

``routes`` keeps every version of every route plan sent to an own van. ``assignments``
says, per order, which vehicle (van, 3PL carrier or gig courier) has it, at which position,
since which route version, and by which decision.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from cloud.store.base import StoreBase
from protocol import RoutePlan

__all__ = ["PlanStore"]


class PlanStore(StoreBase):
    """Route plan versions, assignments, and what vans report of their progress."""

    def save_plan(self, conn: sqlite3.Connection, plan: RoutePlan, now_ms: int) -> None:
        body = plan.model_dump_json()
        conn.execute(
            "INSERT INTO routes (route_id, version, vehicle_id, day, plan, created_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (plan.route_id, plan.version, plan.vehicle_id, plan.day, body, now_ms),
        )

    def latest_version(self, route_id: str, conn: sqlite3.Connection | None = None) -> int:
        row = self.one(conn, "SELECT max(version) AS v FROM routes WHERE route_id = ?", (route_id,))
        return int(row["v"] or 0) if row else 0

    def latest_plan(
        self, route_id: str, conn: sqlite3.Connection | None = None
    ) -> RoutePlan | None:
        row = self.one(
            conn,
            "SELECT plan FROM routes WHERE route_id = ? ORDER BY version DESC LIMIT 1",
            (route_id,),
        )
        return RoutePlan.model_validate_json(row["plan"]) if row else None

    def current_plans(self, conn: sqlite3.Connection | None = None) -> list[RoutePlan]:
        """The latest version of every route of the most recent day (for a new depot sorter)."""
        rows = self.rows(
            conn,
            "SELECT plan FROM routes r WHERE day = (SELECT max(day) FROM routes) "
            "AND version = (SELECT max(version) FROM routes q WHERE q.route_id = r.route_id) "
            "ORDER BY route_id",
        )
        return [RoutePlan.model_validate_json(r["plan"]) for r in rows]

    def set_assignment(
        self,
        conn: sqlite3.Connection,
        order_id: str,
        vehicle_id: str,
        kind: str,
        route_id: str | None,
        since_version: int | None,
        position: int,
        eta: int | None,
        decision_id: str,
        now_ms: int,
    ) -> None:
        conn.execute(
            "INSERT INTO assignments (order_id, vehicle_id, kind, route_id, since_version, "
            "position, eta, decision_id, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(order_id) DO UPDATE SET vehicle_id = excluded.vehicle_id, "
            "kind = excluded.kind, route_id = excluded.route_id, "
            "since_version = CASE WHEN assignments.vehicle_id = excluded.vehicle_id "
            "AND assignments.route_id IS excluded.route_id "
            "THEN coalesce(assignments.since_version, excluded.since_version) "
            "ELSE excluded.since_version END, "
            "position = excluded.position, eta = excluded.eta, "
            "decision_id = excluded.decision_id, at_ms = excluded.at_ms",
            (
                order_id,
                vehicle_id,
                kind,
                route_id,
                since_version,
                position,
                eta,
                decision_id,
                now_ms,
            ),
        )

    def mark_since_version(
        self, conn: sqlite3.Connection, vehicle_id: str, route_id: str, version: int
    ) -> None:
        """Orders new on a van's route arrive with this plan version."""
        conn.execute(
            "UPDATE assignments SET since_version = ? WHERE vehicle_id = ? AND route_id = ? "
            "AND since_version IS NULL",
            (version, vehicle_id, route_id),
        )

    def latest_plan_of(
        self, vehicle_id: str, conn: sqlite3.Connection | None = None
    ) -> RoutePlan | None:
        """The newest plan version sent to a vehicle: the highest version of the route it
        was sent last. Versions, not times, order one route's plans (two writers' clocks, read
        before each got the store, need not agree with the order they saved in)."""
        row = self.one(
            conn,
            "SELECT plan FROM routes WHERE vehicle_id = ?1 AND route_id = (SELECT route_id "
            "FROM routes WHERE vehicle_id = ?1 ORDER BY created_ms DESC, version DESC LIMIT 1) "
            "ORDER BY version DESC LIMIT 1",
            (vehicle_id,),
        )
        return RoutePlan.model_validate_json(row["plan"]) if row else None

    def drop_assignment(self, conn: sqlite3.Connection, order_id: str) -> None:
        conn.execute("DELETE FROM assignments WHERE order_id = ?", (order_id,))

    # -- reads -----------------------------------------------------------------------------

    def assignment(
        self, order_id: str, conn: sqlite3.Connection | None = None
    ) -> dict[str, Any] | None:
        return self.one(conn, "SELECT * FROM assignments WHERE order_id = ?", (order_id,))

    def assignments(
        self,
        *,
        vehicle_id: str | None = None,
        order_ids: list[str] | None = None,
        conn: sqlite3.Connection | None = None,
    ) -> list[dict[str, Any]]:
        """Assignments of one vehicle, or of some orders, by vehicle and position."""
        if vehicle_id is not None:
            return self.rows(
                conn,
                "SELECT * FROM assignments WHERE vehicle_id = ? ORDER BY position",
                (vehicle_id,),
            )
        out: list[dict[str, Any]] = []
        ids = order_ids or []
        for k in range(0, len(ids), 500):
            chunk = ids[k : k + 500]
            marks = ",".join("?" * len(chunk))
            out += self.rows(
                conn, f"SELECT * FROM assignments WHERE order_id IN ({marks})", tuple(chunk)
            )
        out.sort(key=lambda a: (a["vehicle_id"], a["position"]))
        return out

    def applied_version(
        self, vehicle_id: str, route_id: str, conn: sqlite3.Connection | None = None
    ) -> int:
        """The newest plan version the van says it applied (its sequence reports), 0 if none."""
        row = self.one(
            conn,
            "SELECT max(plan_version) AS v FROM sequences WHERE vehicle_id = ? AND route_id = ?",
            (vehicle_id, route_id),
        )
        return int(row["v"] or 0) if row else 0

    def reported_order(
        self, vehicle_id: str, route_id: str, conn: sqlite3.Connection | None = None
    ) -> list[tuple[str, int, int]]:
        """The van's latest own order of remaining stops: ``(stop_id, eta, late_s)``."""
        row = self.one(
            conn,
            "SELECT stops FROM sequences WHERE vehicle_id = ? AND route_id = ? "
            "ORDER BY revision DESC LIMIT 1",
            (vehicle_id, route_id),
        )
        return [tuple(s) for s in json.loads(row["stops"])] if row else []  # type: ignore[misc]

    def facts_on_route(
        self, vehicle_id: str, route_id: str, conn: sqlite3.Connection | None = None
    ) -> int:
        row = self.one(
            conn,
            "SELECT count(*) AS n FROM stop_facts WHERE vehicle_id = ? AND route_id = ?",
            (vehicle_id, route_id),
        )
        return int(row["n"]) if row else 0

    def position_of(
        self, vehicle_id: str, conn: sqlite3.Connection | None = None
    ) -> dict[str, Any] | None:
        return self.one(
            conn, "SELECT at_ms, lat, lon FROM positions WHERE vehicle_id = ?", (vehicle_id,)
        )

    def loaded_parcels(self, vehicle_id: str, conn: sqlite3.Connection | None = None) -> set[str]:
        """Parcel ids a ``loaded`` scan put on this vehicle."""
        rows = self.rows(
            conn,
            "SELECT DISTINCT parcel_id FROM scans WHERE result = 'loaded' AND vehicle_id = ? "
            "AND parcel_id IS NOT NULL",
            (vehicle_id,),
        )
        return {r["parcel_id"] for r in rows}

    def stop_fact(
        self, stop_id: str, conn: sqlite3.Connection | None = None
    ) -> dict[str, Any] | None:
        return self.one(conn, "SELECT * FROM stop_facts WHERE stop_id = ?", (stop_id,))

    # -- who held a stop -------------------------------------------------------------------

    def ever_held(self, vehicle_id: str, stop_id: str, conn: sqlite3.Connection) -> bool:
        """Whether ``vehicle_id`` ever held the stop: it is assigned to it now, a plan version
        sent to it listed it (a hand-over or a reassignment leaves the old one's plans), or a
        depot's ``loaded`` scan put one of its parcels on it."""
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM assignments WHERE order_id = ? AND vehicle_id = ?) "
            "OR EXISTS (SELECT 1 FROM scans s JOIN parcels p USING (parcel_id) "
            "  WHERE p.order_id = ? AND s.result = 'loaded' AND s.vehicle_id = ?) "
            "OR EXISTS (SELECT 1 FROM routes r, json_each(r.plan, '$.stops') j "
            "  WHERE r.vehicle_id = ? AND instr(r.plan, ?) > 0 "
            "  AND json_extract(j.value, '$.stop_id') = ?)",
            (stop_id, vehicle_id, stop_id, vehicle_id, vehicle_id, _stop_key(stop_id), stop_id),
        ).fetchone()
        return bool(row[0])

    def planned_on(self, stop_id: str, conn: sqlite3.Connection) -> list[dict[str, Any]]:
        """The vehicles whose plans listed the stop: each one's route and newest version."""
        return self.rows(
            conn,
            "SELECT r.vehicle_id, r.route_id, max(r.version) AS version FROM routes r, "
            "json_each(r.plan, '$.stops') j WHERE instr(r.plan, ?) > 0 "
            "AND json_extract(j.value, '$.stop_id') = ? GROUP BY r.vehicle_id, r.route_id "
            "ORDER BY max(r.created_ms) DESC",
            (_stop_key(stop_id), stop_id),
        )


def _stop_key(stop_id: str) -> str:
    """How a stop id appears in a stored plan's JSON: a cheap filter before parsing it."""
    return f'"stop_id":{json.dumps(stop_id)}'
