"""The vehicle's route in its local store: plan, stops, parcels, facts, photos, conflicts.

Every write takes the sync transaction (:class:`sync.Tx`) it is part of, so a change and the
message that reports it commit together. A stop's status only moves forward: once
delivered, failed, picked up or skipped it is a fact, and no later plan moves it (rule 4).

The tables are :data:`SCHEMA`, numbered steps in the store's ``PRAGMA user_version``
(:mod:`sync.migrations`): append a step to change them, never edit a released one.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from protocol import PlannedStop, RoutePlan
from sync import Rejected, Schema, Step, Store, migrate

__all__ = ["FINAL", "SCHEMA", "PlanMerge", "RouteBook", "StopRow"]

FINAL = frozenset({"delivered", "failed", "picked_up", "skipped"})

_TABLES_1 = """
CREATE TABLE IF NOT EXISTS route (
    id INTEGER PRIMARY KEY CHECK (id = 1), route_id TEXT NOT NULL, version INTEGER NOT NULL,
    day TEXT NOT NULL, depot_lat REAL NOT NULL, depot_lon REAL NOT NULL, depot_address TEXT,
    start_at INTEGER NOT NULL, end_at INTEGER, capacity_kg REAL, break_earliest INTEGER,
    break_latest INTEGER, break_duration_s INTEGER, break_taken_at INTEGER,
    revision INTEGER NOT NULL DEFAULT 0, received_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stops (
    stop_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, kind TEXT NOT NULL,
    lat REAL NOT NULL, lon REAL NOT NULL, address TEXT, window_start INTEGER,
    window_end INTEGER, service_s INTEGER NOT NULL, customer TEXT, note TEXT,
    status TEXT NOT NULL DEFAULT 'pending', position INTEGER, eta INTEGER,
    plan_version INTEGER NOT NULL, committed_next INTEGER NOT NULL DEFAULT 0,
    manual_reason TEXT, final_at_ms INTEGER, removed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS parcels (
    parcel_id TEXT PRIMARY KEY, stop_id TEXT NOT NULL, barcode TEXT NOT NULL,
    weight_kg REAL NOT NULL, volume_l REAL NOT NULL, load_position INTEGER,
    cold_chain INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS parcels_stop ON parcels (stop_id);
CREATE TABLE IF NOT EXISTS stop_events (
    event_id TEXT PRIMARY KEY, stop_id TEXT NOT NULL, type TEXT NOT NULL, at_ms INTEGER NOT NULL,
    reason TEXT, note TEXT, recipient TEXT, photo_sha256 TEXT, barcodes TEXT,
    signature_svg TEXT, lat REAL, lon REAL);
CREATE TABLE IF NOT EXISTS photos (
    sha256 TEXT PRIMARY KEY, content_type TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS conflicts (
    id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, plan_version INTEGER NOT NULL,
    stop_id TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS position (
    id INTEGER PRIMARY KEY CHECK (id = 1), at_ms INTEGER NOT NULL, lat REAL NOT NULL,
    lon REAL NOT NULL, speed_kmh REAL NOT NULL, heading_deg REAL NOT NULL,
    odometer_km REAL NOT NULL);
"""

#: The route book's schema steps; step 1 is the schema of stores written before versions.
SCHEMA = Schema(
    "route book",
    (Step("route, stops, parcels, stop events, photos, conflicts, position", _TABLES_1),),
    marker="route",
)


@dataclass(frozen=True, slots=True)
class StopRow:
    """A stop as the agent keeps it."""

    stop_id: str
    order_id: str
    kind: str
    lat: float
    lon: float
    address: str | None
    window_start: int | None
    window_end: int | None
    service_s: int
    customer: str | None
    note: str | None
    status: str
    position: int | None
    eta: int | None
    plan_version: int
    committed_next: bool
    manual_reason: str | None
    final_at_ms: int | None
    removed: bool

    @property
    def final(self) -> bool:
        return self.status in FINAL


_STOP_COLUMNS = ", ".join(StopRow.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class PlanMerge:
    """What applying a plan changed: new stops, removed stops, and facts that won."""

    version: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    conflicts: tuple[tuple[str, str], ...]


class RouteBook:
    """Reads and writes of the vehicle's route. Reads take the store's lock."""

    def __init__(self, store: Store) -> None:
        self.store = store
        migrate(store, SCHEMA)

    # -- reads ---------------------------------------------------------------------------

    def route(self) -> dict[str, Any] | None:
        with self.store.lock:
            cur = self.store.conn.execute("SELECT * FROM route WHERE id = 1")
            row = cur.fetchone()
            if row is None:
                return None
            return dict(zip([d[0] for d in cur.description], row, strict=True))

    def stops(self, *, include_removed: bool = False) -> list[StopRow]:
        where = "" if include_removed else "WHERE removed = 0"
        rows = self.store.read(
            f"SELECT {_STOP_COLUMNS} FROM stops {where} "
            "ORDER BY position IS NULL, position, stop_id"
        )
        return [_stop(r) for r in rows]

    def stop(self, stop_id: str) -> StopRow | None:
        rows = self.store.read(f"SELECT {_STOP_COLUMNS} FROM stops WHERE stop_id = ?", (stop_id,))
        return _stop(rows[0]) if rows else None

    def remaining(self) -> list[StopRow]:
        """Stops still to do, in the current order."""
        return [s for s in self.stops() if not s.final]

    def parcels(self, stop_id: str) -> list[dict[str, Any]]:
        rows = self.store.read(
            "SELECT parcel_id, barcode, weight_kg, volume_l, load_position, cold_chain "
            "FROM parcels WHERE stop_id = ? ORDER BY parcel_id",
            (stop_id,),
        )
        keys = ("parcel_id", "barcode", "weight_kg", "volume_l", "load_position", "cold_chain")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def event(self, event_id: str) -> tuple[str, str] | None:
        """``(stop_id, type)`` of a recorded stop event, for idempotent retries."""
        rows = self.store.read(
            "SELECT stop_id, type FROM stop_events WHERE event_id = ?", (event_id,)
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def counts(self) -> dict[str, int]:
        rows = self.store.read("SELECT status, count(*) FROM stops WHERE removed = 0 GROUP BY 1")
        return {str(k): int(v) for k, v in rows}

    # -- writes (inside a sync transaction) ----------------------------------------------

    def merge_plan(self, conn: sqlite3.Connection, plan: RoutePlan, now_ms: int) -> PlanMerge:
        """Apply a newer plan over the local route; field facts stay (rule 4).

        Raises :class:`sync.Rejected` for a plan that is not newer, before writing anything.
        """
        row = conn.execute("SELECT route_id, version, revision FROM route WHERE id = 1").fetchone()
        if row is not None and row[0] == plan.route_id and plan.version <= row[1]:
            raise Rejected(f"plan {plan.route_id} v{plan.version} is not newer than v{row[1]}")
        new_route = row is not None and row[0] != plan.route_id
        if new_route:
            # A new route (a new day): yesterday's stops leave the current view.
            conn.execute("UPDATE stops SET removed = 1 WHERE removed = 0")
        existing = {
            sid: status
            for sid, status in conn.execute("SELECT stop_id, status FROM stops WHERE removed = 0")
        }
        conflicts: list[tuple[str, str]] = []
        added: list[str] = []
        for pos, s in enumerate(plan.stops, start=1):
            status = existing.pop(s.stop_id, None)
            if status in FINAL:
                detail = f"plan v{plan.version} lists it to do; it was {status} on the vehicle"
                conflicts.append((s.stop_id, detail))
                conn.execute(
                    "INSERT INTO conflicts (at_ms, plan_version, stop_id, detail) "
                    "VALUES (?, ?, ?, ?)",
                    (now_ms, plan.version, s.stop_id, detail),
                )
                continue
            if status is None:
                added.append(s.stop_id)
            self._upsert_stop(conn, s, pos, plan.version)
            if new_route:
                # A stop carried over to a new day (a re-attempt of yesterday's failed
                # delivery) starts afresh; yesterday's facts stay in stop_events.
                conn.execute(
                    "UPDATE stops SET status = 'pending', final_at_ms = NULL, eta = NULL, "
                    "committed_next = 0, manual_reason = NULL WHERE stop_id = ?",
                    (s.stop_id,),
                )
        removed = [sid for sid, status in existing.items() if status not in FINAL]
        conn.executemany(
            "UPDATE stops SET removed = 1, position = NULL WHERE stop_id = ?",
            [(sid,) for sid in removed],
        )
        br = plan.break_rule
        conn.execute(
            "INSERT INTO route (id, route_id, version, day, depot_lat, depot_lon, depot_address, "
            "start_at, end_at, capacity_kg, break_earliest, break_latest, break_duration_s, "
            "revision, received_ms) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?) "
            "ON CONFLICT(id) DO UPDATE SET route_id = excluded.route_id, "
            "version = excluded.version, day = excluded.day, depot_lat = excluded.depot_lat, "
            "depot_lon = excluded.depot_lon, depot_address = excluded.depot_address, "
            "start_at = excluded.start_at, end_at = excluded.end_at, "
            "capacity_kg = excluded.capacity_kg, break_earliest = excluded.break_earliest, "
            "break_latest = excluded.break_latest, break_duration_s = excluded.break_duration_s, "
            "received_ms = excluded.received_ms",
            (
                plan.route_id,
                plan.version,
                plan.day,
                plan.depot.lat,
                plan.depot.lon,
                plan.depot.address,
                plan.start_at,
                plan.end_at,
                plan.capacity_kg,
                br.earliest if br else None,
                br.latest if br else None,
                br.duration_s if br else None,
                now_ms,
            ),
        )
        return PlanMerge(plan.version, tuple(added), tuple(removed), tuple(conflicts))

    def _upsert_stop(
        self, conn: sqlite3.Connection, s: PlannedStop, position: int, version: int
    ) -> None:
        w = s.window
        conn.execute(
            "INSERT INTO stops (stop_id, order_id, kind, lat, lon, address, window_start, "
            "window_end, service_s, customer, note, position, plan_version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(stop_id) DO UPDATE SET order_id = excluded.order_id, "
            "kind = excluded.kind, lat = excluded.lat, lon = excluded.lon, "
            "address = excluded.address, window_start = excluded.window_start, "
            "window_end = excluded.window_end, service_s = excluded.service_s, "
            "customer = excluded.customer, note = excluded.note, position = excluded.position, "
            "plan_version = excluded.plan_version, removed = 0",
            (
                s.stop_id,
                s.order_id,
                s.kind,
                s.location.lat,
                s.location.lon,
                s.location.address,
                w.start if w else None,
                w.end if w else None,
                s.service_s,
                s.customer,
                s.note,
                position,
                version,
            ),
        )
        conn.execute("DELETE FROM parcels WHERE stop_id = ?", (s.stop_id,))
        conn.executemany(
            "INSERT OR REPLACE INTO parcels (parcel_id, stop_id, barcode, weight_kg, volume_l, "
            "load_position, cold_chain) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    p.parcel_id,
                    s.stop_id,
                    p.barcode,
                    p.weight_kg,
                    p.volume_l,
                    p.load_position,
                    int(p.cold_chain),
                )
                for p in s.parcels
            ],
        )

    def set_order(self, conn: sqlite3.Connection, order: list[tuple[str, int | None]]) -> int:
        """Store a new order of remaining stops with their ETAs; returns the new revision."""
        conn.executemany(
            "UPDATE stops SET position = ?, eta = ? WHERE stop_id = ?",
            [(i, eta, sid) for i, (sid, eta) in enumerate(order, start=1)],
        )
        conn.execute("UPDATE route SET revision = revision + 1 WHERE id = 1")
        return int(conn.execute("SELECT revision FROM route WHERE id = 1").fetchone()[0])

    def set_etas(self, conn: sqlite3.Connection, etas: list[tuple[str, int]]) -> None:
        conn.executemany("UPDATE stops SET eta = ? WHERE stop_id = ?", [(e, s) for s, e in etas])

    def record_event(
        self,
        conn: sqlite3.Connection,
        *,
        event_id: str,
        stop_id: str,
        type: str,
        at_ms: int,
        reason: str | None = None,
        note: str | None = None,
        recipient: str | None = None,
        photo_sha256: str | None = None,
        barcodes: tuple[str, ...] = (),
        signature_svg: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
    ) -> None:
        """Record a fact at a stop and move its status forward."""
        conn.execute(
            "INSERT INTO stop_events (event_id, stop_id, type, at_ms, reason, note, recipient, "
            "photo_sha256, barcodes, signature_svg, lat, lon) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id,
                stop_id,
                type,
                at_ms,
                reason,
                note,
                recipient,
                photo_sha256,
                json.dumps(list(barcodes)),
                signature_svg,
                lat,
                lon,
            ),
        )
        if type in FINAL:
            conn.execute(
                "UPDATE stops SET status = ?, final_at_ms = ?, committed_next = 0, "
                "position = NULL WHERE stop_id = ?",
                (type, at_ms, stop_id),
            )
        elif type == "arrived":
            conn.execute(
                "UPDATE stops SET status = 'arrived' WHERE stop_id = ? AND status = 'pending'",
                (stop_id,),
            )

    def save_photo(
        self, conn: sqlite3.Connection, sha256: str, content_type: str, data: bytes
    ) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO photos (sha256, content_type, data) VALUES (?, ?, ?)",
            (sha256, content_type, data),
        )

    def set_committed_next(self, conn: sqlite3.Connection, stop_id: str | None) -> None:
        conn.execute("UPDATE stops SET committed_next = 0 WHERE committed_next = 1")
        if stop_id is not None:
            conn.execute("UPDATE stops SET committed_next = 1 WHERE stop_id = ?", (stop_id,))

    def set_manual_reason(self, conn: sqlite3.Connection, stop_id: str, reason: str) -> None:
        conn.execute("UPDATE stops SET manual_reason = ? WHERE stop_id = ?", (reason, stop_id))

    def set_window(
        self, conn: sqlite3.Connection, stop_id: str, start: int | None, end: int | None
    ) -> None:
        conn.execute(
            "UPDATE stops SET window_start = ?, window_end = ? WHERE stop_id = ?",
            (start, end, stop_id),
        )

    def set_position(self, conn: sqlite3.Connection, at_ms: int, t: dict[str, float]) -> None:
        conn.execute(
            "INSERT INTO position (id, at_ms, lat, lon, speed_kmh, heading_deg, odometer_km) "
            "VALUES (1, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET at_ms = excluded.at_ms, "
            "lat = excluded.lat, lon = excluded.lon, speed_kmh = excluded.speed_kmh, "
            "heading_deg = excluded.heading_deg, odometer_km = excluded.odometer_km",
            (at_ms, t["lat"], t["lon"], t["speed_kmh"], t["heading_deg"], t["odometer_km"]),
        )

    def position(self) -> dict[str, float] | None:
        rows = self.store.read(
            "SELECT at_ms, lat, lon, speed_kmh, heading_deg, odometer_km FROM position"
        )
        if not rows:
            return None
        keys = ("at_ms", "lat", "lon", "speed_kmh", "heading_deg", "odometer_km")
        return dict(zip(keys, rows[0], strict=True))

    def take_break(self, conn: sqlite3.Connection, at_s: int) -> None:
        conn.execute("UPDATE route SET break_taken_at = ? WHERE id = 1", (at_s,))


def _stop(r: tuple[Any, ...]) -> StopRow:
    d = list(r)
    d[15] = bool(d[15])
    d[18] = bool(d[18])
    return StopRow(*d)
