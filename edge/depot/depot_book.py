"""The depot agent's store: routes, the parcel index, what is placed where, scans, re-sorts.

Writes take the caller's open connection (a sync transaction), so a change and the message
reporting it commit together. Tables:

- ``depot_routes``: the latest plan per vehicle, and whether it leaves this depot.
- ``depot_parcels``: one row per barcode (upper-cased key): its current assignment
  (``planned``), or that it was dropped from its route (``cancelled``) or belongs to another
  depot's vehicle (``foreign``).
- ``depot_placed``: where each parcel physically is, as the terminal last told the operator.
- ``depot_scans``: every scan, with the result and the instruction shown.
- ``depot_resorts``: re-sort instructions from late plan changes, open until done.
- ``depot_exceptions``: what a person must handle, as reported to the cloud.
- ``depot_releases``: load releases (ready to depart), one per vehicle and plan version.

The tables are :data:`SCHEMA`, numbered steps in the store's ``PRAGMA user_version``
(:mod:`sync.migrations`): append a step to change them, never edit a released one.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from edge.depot.sort_plan import Assignment, Move, Slot
from protocol import RoutePlan
from sync import Schema, Step, Store, migrate

__all__ = ["SCHEMA", "DepotBook"]

_TABLES_1 = """
CREATE TABLE IF NOT EXISTS depot_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS depot_routes (
    vehicle_id TEXT PRIMARY KEY, route_id TEXT NOT NULL, version INTEGER NOT NULL,
    day TEXT NOT NULL, plan TEXT NOT NULL, ours INTEGER NOT NULL, depot_address TEXT,
    received_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS depot_parcels (
    key TEXT PRIMARY KEY, barcode TEXT NOT NULL, parcel_id TEXT NOT NULL,
    vehicle_id TEXT NOT NULL, route_id TEXT NOT NULL, version INTEGER NOT NULL,
    stop_id TEXT NOT NULL, stop_index INTEGER NOT NULL, container TEXT, position INTEGER,
    load_position INTEGER, weight_kg REAL NOT NULL, volume_l REAL NOT NULL,
    status TEXT NOT NULL, depot_address TEXT, updated_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS depot_parcels_vehicle ON depot_parcels (vehicle_id, status);
CREATE INDEX IF NOT EXISTS depot_parcels_id ON depot_parcels (parcel_id);
CREATE TABLE IF NOT EXISTS depot_placed (
    parcel_id TEXT PRIMARY KEY, vehicle_id TEXT NOT NULL, container TEXT NOT NULL,
    position INTEGER NOT NULL, at_ms INTEGER NOT NULL, scan_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS depot_placed_vehicle ON depot_placed (vehicle_id);
CREATE TABLE IF NOT EXISTS depot_scans (
    scan_id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL, raw TEXT NOT NULL, code TEXT,
    result TEXT NOT NULL, parcel_id TEXT, vehicle_id TEXT, container TEXT, position INTEGER,
    message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS depot_resorts (
    resort_id INTEGER PRIMARY KEY AUTOINCREMENT, parcel_id TEXT NOT NULL, barcode TEXT NOT NULL,
    kind TEXT NOT NULL, from_vehicle TEXT NOT NULL, from_container TEXT NOT NULL,
    from_position INTEGER NOT NULL, to_vehicle TEXT, to_container TEXT, to_position INTEGER,
    plan_version INTEGER NOT NULL, created_ms INTEGER NOT NULL, done_ms INTEGER);
CREATE INDEX IF NOT EXISTS depot_resorts_open ON depot_resorts (parcel_id, done_ms);
CREATE TABLE IF NOT EXISTS depot_exceptions (
    exception_id TEXT PRIMARY KEY, category TEXT NOT NULL, severity TEXT NOT NULL,
    at_ms INTEGER NOT NULL, detail TEXT NOT NULL, action TEXT NOT NULL, parcel_id TEXT,
    vehicle_id TEXT, handled_ms INTEGER);
CREATE TABLE IF NOT EXISTS depot_releases (
    vehicle_id TEXT NOT NULL, version INTEGER NOT NULL, at_ms INTEGER NOT NULL,
    loaded INTEGER NOT NULL, missing INTEGER NOT NULL, forced INTEGER NOT NULL,
    PRIMARY KEY (vehicle_id, version));
"""

#: The depot book's schema steps; step 1 is the schema of stores written before versions.
SCHEMA = Schema(
    "depot book",
    (Step("routes, parcels, placements, scans, re-sorts, exceptions, releases", _TABLES_1),),
    marker="depot_routes",
)

_PARCEL_COLS = (
    "key, barcode, parcel_id, vehicle_id, route_id, version, stop_id, stop_index, container, "
    "position, load_position, weight_kg, volume_l, status, depot_address, updated_ms"
)


def _dicts(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


class DepotBook:
    """Reads and writes of the depot agent's state."""

    def __init__(self, store: Store) -> None:
        self.store = store
        migrate(store, SCHEMA)

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
        with self.store.lock:
            return _dicts(self.store.conn.execute(sql, params))

    # -- meta ----------------------------------------------------------------------------

    def meta(self, name: str) -> str | None:
        rows = self.store.read("SELECT value FROM depot_meta WHERE key = ?", (name,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, conn: sqlite3.Connection, name: str, value: str) -> None:
        conn.execute(
            "INSERT INTO depot_meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    # -- routes --------------------------------------------------------------------------

    def route(self, conn: sqlite3.Connection, vehicle_id: str) -> dict[str, Any] | None:
        rows = _dicts(
            conn.execute("SELECT * FROM depot_routes WHERE vehicle_id = ?", (vehicle_id,))
        )
        return rows[0] if rows else None

    def routes(self, *, ours: bool = True) -> list[dict[str, Any]]:
        return self.query(
            "SELECT vehicle_id, route_id, version, day, depot_address, received_ms "
            "FROM depot_routes WHERE ours = ? ORDER BY vehicle_id",
            (int(ours),),
        )

    def plan(self, vehicle_id: str) -> RoutePlan | None:
        rows = self.store.read("SELECT plan FROM depot_routes WHERE vehicle_id = ?", (vehicle_id,))
        return RoutePlan.model_validate_json(rows[0][0]) if rows else None

    def save_route(
        self, conn: sqlite3.Connection, plan: RoutePlan, *, ours: bool, now_ms: int
    ) -> None:
        conn.execute(
            "INSERT INTO depot_routes (vehicle_id, route_id, version, day, plan, ours, "
            "depot_address, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(vehicle_id) DO UPDATE SET route_id = excluded.route_id, "
            "version = excluded.version, day = excluded.day, plan = excluded.plan, "
            "ours = excluded.ours, depot_address = excluded.depot_address, "
            "received_ms = excluded.received_ms",
            (
                plan.vehicle_id,
                plan.route_id,
                plan.version,
                plan.day,
                plan.model_dump_json(),
                int(ours),
                plan.depot.address,
                now_ms,
            ),
        )

    # -- the parcel index ----------------------------------------------------------------

    def parcel(self, conn: sqlite3.Connection, key: str) -> dict[str, Any] | None:
        rows = _dicts(
            conn.execute(f"SELECT {_PARCEL_COLS} FROM depot_parcels WHERE key = ?", (key,))
        )
        return rows[0] if rows else None

    def parcel_by_id(self, conn: sqlite3.Connection, parcel_id: str) -> dict[str, Any] | None:
        rows = _dicts(
            conn.execute(
                f"SELECT {_PARCEL_COLS} FROM depot_parcels WHERE parcel_id = ?", (parcel_id,)
            )
        )
        return rows[0] if rows else None

    def vehicle_keys(self, conn: sqlite3.Connection, vehicle_id: str) -> set[str]:
        rows = conn.execute(
            "SELECT key FROM depot_parcels WHERE vehicle_id = ? AND status != 'cancelled'",
            (vehicle_id,),
        )
        return {str(r[0]) for r in rows}

    def put_assignments(
        self,
        conn: sqlite3.Connection,
        plan: RoutePlan,
        assignments: tuple[Assignment, ...],
        now_ms: int,
    ) -> None:
        conn.executemany(
            f"INSERT OR REPLACE INTO depot_parcels ({_PARCEL_COLS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'planned', NULL, ?)",
            [
                (
                    a.barcode.upper(),
                    a.barcode,
                    a.parcel_id,
                    a.vehicle_id,
                    plan.route_id,
                    plan.version,
                    a.stop_id,
                    a.stop_index,
                    a.container,
                    a.position,
                    a.load_position,
                    a.weight_kg,
                    a.volume_l,
                    now_ms,
                )
                for a in assignments
            ],
        )

    def put_foreign(self, conn: sqlite3.Connection, plan: RoutePlan, now_ms: int) -> None:
        """Index another depot's parcels, unless one of ours plans them."""
        rows = []
        for i, stop in enumerate(plan.stops, start=1):
            for p in stop.parcels:
                rows.append(
                    (
                        p.barcode.upper(),
                        p.barcode,
                        p.parcel_id,
                        plan.vehicle_id,
                        plan.route_id,
                        plan.version,
                        stop.stop_id,
                        i,
                        p.weight_kg,
                        p.volume_l,
                        plan.depot.address,
                        now_ms,
                    )
                )
        conn.executemany(
            f"INSERT INTO depot_parcels ({_PARCEL_COLS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?, 'foreign', ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET vehicle_id = excluded.vehicle_id, "
            "route_id = excluded.route_id, version = excluded.version, "
            "stop_id = excluded.stop_id, status = 'foreign', container = NULL, position = NULL, "
            "load_position = NULL, depot_address = excluded.depot_address, "
            "updated_ms = excluded.updated_ms WHERE depot_parcels.status != 'planned' "
            "OR depot_parcels.vehicle_id = excluded.vehicle_id",
            rows,
        )

    def cancel(self, conn: sqlite3.Connection, keys: set[str], version: int, now_ms: int) -> None:
        conn.executemany(
            "UPDATE depot_parcels SET status = 'cancelled', container = NULL, position = NULL, "
            "load_position = NULL, version = ?, updated_ms = ? WHERE key = ?",
            [(version, now_ms, k) for k in keys],
        )

    def targets(self, conn: sqlite3.Connection, parcel_ids: set[str]) -> dict[str, Slot]:
        """Current slots of these parcels (absent: cancelled, foreign or unknown)."""
        out: dict[str, Slot] = {}
        for pid in parcel_ids:
            row = conn.execute(
                "SELECT vehicle_id, container, position FROM depot_parcels "
                "WHERE parcel_id = ? AND status = 'planned'",
                (pid,),
            ).fetchone()
            if row is not None:
                out[pid] = Slot(str(row[0]), str(row[1]), int(row[2]))
        return out

    # -- what is placed where ------------------------------------------------------------

    def placed(self, conn: sqlite3.Connection, parcel_id: str) -> dict[str, Any] | None:
        rows = _dicts(conn.execute("SELECT * FROM depot_placed WHERE parcel_id = ?", (parcel_id,)))
        return rows[0] if rows else None

    def placed_in(self, conn: sqlite3.Connection, vehicle_id: str) -> dict[str, Slot]:
        rows = conn.execute(
            "SELECT parcel_id, vehicle_id, container, position FROM depot_placed "
            "WHERE vehicle_id = ? OR parcel_id IN (SELECT parcel_id FROM depot_parcels "
            "WHERE vehicle_id = ? AND status = 'planned')",
            (vehicle_id, vehicle_id),
        )
        return {str(r[0]): Slot(str(r[1]), str(r[2]), int(r[3])) for r in rows}

    def place(
        self, conn: sqlite3.Connection, parcel_id: str, slot: Slot, at_ms: int, scan_id: str
    ) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO depot_placed VALUES (?, ?, ?, ?, ?, ?)",
            (parcel_id, slot.vehicle_id, slot.container, slot.position, at_ms, scan_id),
        )

    def renumber(self, conn: sqlite3.Connection, slots: dict[str, Slot]) -> None:
        conn.executemany(
            "UPDATE depot_placed SET position = ? WHERE parcel_id = ?",
            [(s.position, pid) for pid, s in slots.items()],
        )

    def unplace(self, conn: sqlite3.Connection, parcel_id: str) -> None:
        conn.execute("DELETE FROM depot_placed WHERE parcel_id = ?", (parcel_id,))

    # -- re-sorts --------------------------------------------------------------------------

    def replace_resorts(
        self,
        conn: sqlite3.Connection,
        parcel_ids: set[str],
        moves: tuple[Move, ...],
        barcodes: dict[str, str],
        version: int,
        now_ms: int,
    ) -> None:
        """Drop the open instructions of these parcels and record the new ones."""
        conn.executemany(
            "DELETE FROM depot_resorts WHERE parcel_id = ? AND done_ms IS NULL",
            [(pid,) for pid in parcel_ids],
        )
        conn.executemany(
            "INSERT INTO depot_resorts (parcel_id, barcode, kind, from_vehicle, from_container, "
            "from_position, to_vehicle, to_container, to_position, plan_version, created_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    m.parcel_id,
                    barcodes.get(m.parcel_id, m.parcel_id),
                    m.kind,
                    m.source.vehicle_id,
                    m.source.container,
                    m.source.position,
                    m.target.vehicle_id if m.target else None,
                    m.target.container if m.target else None,
                    m.target.position if m.target else None,
                    version,
                    now_ms,
                )
                for m in moves
            ],
        )

    def open_resort(self, conn: sqlite3.Connection, parcel_id: str) -> dict[str, Any] | None:
        rows = _dicts(
            conn.execute(
                "SELECT * FROM depot_resorts WHERE parcel_id = ? AND done_ms IS NULL "
                "ORDER BY resort_id DESC LIMIT 1",
                (parcel_id,),
            )
        )
        return rows[0] if rows else None

    def close_resorts(self, conn: sqlite3.Connection, parcel_id: str, now_ms: int) -> None:
        conn.execute(
            "UPDATE depot_resorts SET done_ms = ? WHERE parcel_id = ? AND done_ms IS NULL",
            (now_ms, parcel_id),
        )

    # -- scans, exceptions, releases ---------------------------------------------------------

    def record_scan(self, conn: sqlite3.Connection, **row: Any) -> None:
        conn.execute(
            "INSERT INTO depot_scans (scan_id, at_ms, raw, code, result, parcel_id, vehicle_id, "
            "container, position, message) VALUES (:scan_id, :at_ms, :raw, :code, :result, "
            ":parcel_id, :vehicle_id, :container, :position, :message)",
            row,
        )

    def record_exception(self, conn: sqlite3.Connection, **row: Any) -> None:
        conn.execute(
            "INSERT INTO depot_exceptions (exception_id, category, severity, at_ms, detail, "
            "action, parcel_id, vehicle_id) VALUES (:exception_id, :category, :severity, "
            ":at_ms, :detail, :action, :parcel_id, :vehicle_id)",
            row,
        )

    def handle_exception(self, conn: sqlite3.Connection, exception_id: str, now_ms: int) -> bool:
        cur = conn.execute(
            "UPDATE depot_exceptions SET handled_ms = ? WHERE exception_id = ? "
            "AND handled_ms IS NULL",
            (now_ms, exception_id),
        )
        return cur.rowcount > 0

    def release(
        self, conn: sqlite3.Connection, vehicle_id: str, version: int
    ) -> dict[str, Any] | None:
        rows = _dicts(
            conn.execute(
                "SELECT * FROM depot_releases WHERE vehicle_id = ? AND version = ?",
                (vehicle_id, version),
            )
        )
        return rows[0] if rows else None

    def record_release(
        self,
        conn: sqlite3.Connection,
        vehicle_id: str,
        version: int,
        at_ms: int,
        loaded: int,
        missing: int,
        forced: bool,
    ) -> None:
        conn.execute(
            "INSERT INTO depot_releases VALUES (?, ?, ?, ?, ?, ?)",
            (vehicle_id, version, at_ms, loaded, missing, int(forced)),
        )

    # -- views ---------------------------------------------------------------------------------

    def checklist(self, vehicle_id: str) -> list[dict[str, Any]]:
        """Every parcel of a vehicle with where it goes and whether it is there."""
        return self.query(
            "SELECT p.parcel_id, p.barcode, p.stop_id, p.stop_index, p.container, p.position, "
            "p.load_position, p.weight_kg, p.volume_l, pl.container AS placed_container, "
            "pl.position AS placed_position, pl.at_ms AS placed_ms, "
            "(SELECT kind FROM depot_resorts r WHERE r.parcel_id = p.parcel_id "
            " AND r.done_ms IS NULL) AS resort "
            "FROM depot_parcels p LEFT JOIN depot_placed pl ON pl.parcel_id = p.parcel_id "
            "WHERE p.vehicle_id = ? AND p.status = 'planned' ORDER BY p.load_position",
            (vehicle_id,),
        )

    def progress(self) -> list[dict[str, Any]]:
        return self.query(
            "SELECT r.vehicle_id, r.route_id, r.version, r.day, "
            "(SELECT count(*) FROM depot_parcels p WHERE p.vehicle_id = r.vehicle_id "
            " AND p.status = 'planned') AS parcels, "
            "(SELECT count(*) FROM depot_parcels p JOIN depot_placed pl USING (parcel_id) "
            " WHERE p.vehicle_id = r.vehicle_id AND p.status = 'planned' "
            " AND pl.vehicle_id = r.vehicle_id) AS sorted, "
            "(SELECT count(*) FROM depot_parcels p WHERE p.vehicle_id = r.vehicle_id "
            " AND p.status = 'planned' AND p.container = 'OVERFLOW') AS overflow, "
            "(SELECT count(*) FROM depot_resorts x WHERE x.done_ms IS NULL AND "
            " (x.from_vehicle = r.vehicle_id OR x.to_vehicle = r.vehicle_id)) AS resorts, "
            "(SELECT at_ms FROM depot_releases d WHERE d.vehicle_id = r.vehicle_id "
            " AND d.version = r.version) AS released_ms "
            "FROM depot_routes r WHERE r.ours = 1 ORDER BY r.vehicle_id"
        )

    def open_exceptions(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.query(
            "SELECT * FROM depot_exceptions WHERE handled_ms IS NULL AND severity != 'info' "
            "ORDER BY at_ms DESC LIMIT ?",
            (limit,),
        )

    def open_resorts(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.query(
            "SELECT * FROM depot_resorts WHERE done_ms IS NULL ORDER BY resort_id LIMIT ?",
            (limit,),
        )

    def recent_scans(self, limit: int = 10) -> list[dict[str, Any]]:
        return self.query(
            "SELECT * FROM depot_scans ORDER BY at_ms DESC, rowid DESC LIMIT ?", (limit,)
        )

    def counts(self) -> dict[str, int]:
        rows = self.store.read("SELECT result, count(*) FROM depot_scans GROUP BY result")
        return {str(k): int(v) for k, v in rows}
