"""The network in the coordinator's store: depots, fleets (own, 3PL, gig) and vehicles.

A fleet's ``terms`` (cost model and limits) and a vehicle's ``spec`` are JSON objects whose
shape :mod:`cloud.network` validates; the store keeps them as given. A depot's ``timezone`` and
``cutoff`` are stored as given (NULL: none of its own); reads fill the coordinator's defaults in
(:meth:`NetworkStore.set_depot_defaults`), so every reader sees the values that apply.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from cloud.local_days import UTC_ZONE
from cloud.store.base import StoreBase

__all__ = ["NetworkStore"]


class NetworkStore(StoreBase):
    """Depots, fleets and vehicles: created or replaced by id, their status changed."""

    default_timezone: str = UTC_ZONE
    default_cutoff: str = "06:00"

    def set_depot_defaults(self, timezone: str, cutoff: str) -> None:
        """The zone and cut-off of a depot that has none of its own (checked by the caller)."""
        self.default_timezone = timezone
        self.default_cutoff = cutoff

    def put_depot(
        self,
        conn: sqlite3.Connection,
        depot_id: str,
        name: str,
        lat: float,
        lon: float,
        address: str | None,
        now_ms: int,
        *,
        timezone: str | None = None,
        cutoff: str | None = None,
    ) -> None:
        conn.execute(
            "INSERT INTO depots (depot_id, name, lat, lon, address, created_ms, timezone, cutoff) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(depot_id) DO UPDATE SET "
            "name = excluded.name, lat = excluded.lat, lon = excluded.lon, "
            "address = excluded.address, timezone = excluded.timezone, cutoff = excluded.cutoff",
            (depot_id, name, lat, lon, address, now_ms, timezone, cutoff),
        )

    def put_fleet(
        self,
        conn: sqlite3.Connection,
        fleet_id: str,
        kind: str,
        depot_id: str,
        terms: dict[str, Any],
        now_ms: int,
    ) -> None:
        conn.execute(
            "INSERT INTO fleets (fleet_id, kind, depot_id, terms, status, status_at_ms) "
            "VALUES (?, ?, ?, ?, 'up', ?) ON CONFLICT(fleet_id) DO UPDATE SET "
            "kind = excluded.kind, depot_id = excluded.depot_id, terms = excluded.terms",
            (fleet_id, kind, depot_id, json.dumps(terms, sort_keys=True), now_ms),
        )

    def set_fleet_status(
        self, conn: sqlite3.Connection, fleet_id: str, status: str, now_ms: int
    ) -> None:
        conn.execute(
            "UPDATE fleets SET status = ?, status_at_ms = ? WHERE fleet_id = ?",
            (status, now_ms, fleet_id),
        )

    def put_vehicle(
        self,
        conn: sqlite3.Connection,
        vehicle_id: str,
        fleet_id: str,
        spec: dict[str, Any],
        now_ms: int,
    ) -> None:
        conn.execute(
            "INSERT INTO vehicles (vehicle_id, fleet_id, spec, status, status_at_ms) "
            "VALUES (?, ?, ?, 'active', ?) ON CONFLICT(vehicle_id) DO UPDATE SET "
            "fleet_id = excluded.fleet_id, spec = excluded.spec",
            (vehicle_id, fleet_id, json.dumps(spec, sort_keys=True), now_ms),
        )

    def set_vehicle_status(
        self, conn: sqlite3.Connection, vehicle_id: str, status: str, now_ms: int
    ) -> None:
        conn.execute(
            "UPDATE vehicles SET status = ?, status_at_ms = ? WHERE vehicle_id = ?",
            (status, now_ms, vehicle_id),
        )

    # -- reads -----------------------------------------------------------------------------

    def depot(self, depot_id: str, conn: sqlite3.Connection | None = None) -> dict[str, Any] | None:
        row = self.one(conn, "SELECT * FROM depots WHERE depot_id = ?", (depot_id,))
        return None if row is None else self._with_defaults(row)

    def depots(self, conn: sqlite3.Connection | None = None) -> list[dict[str, Any]]:
        rows = self.rows(conn, "SELECT * FROM depots ORDER BY depot_id")
        return [self._with_defaults(r) for r in rows]

    def depot_zone(self, depot_id: str, conn: sqlite3.Connection | None = None) -> str:
        """The IANA zone of a depot's planning days (the default for an unknown depot)."""
        row = self.one(conn, "SELECT timezone FROM depots WHERE depot_id = ?", (depot_id,))
        return str((row or {}).get("timezone") or self.default_timezone)

    def _with_defaults(self, row: dict[str, Any]) -> dict[str, Any]:
        row["timezone"] = row.get("timezone") or self.default_timezone
        row["cutoff"] = row.get("cutoff") or self.default_cutoff
        return row

    def fleet(self, fleet_id: str, conn: sqlite3.Connection | None = None) -> dict[str, Any] | None:
        row = self.one(conn, "SELECT * FROM fleets WHERE fleet_id = ?", (fleet_id,))
        if row is not None:
            row["terms"] = json.loads(row["terms"])
        return row

    def fleets(
        self, depot_id: str | None = None, conn: sqlite3.Connection | None = None
    ) -> list[dict[str, Any]]:
        where, params = ("WHERE depot_id = ?", (depot_id,)) if depot_id else ("", ())
        rows = self.rows(conn, f"SELECT * FROM fleets {where} ORDER BY fleet_id", params)
        for r in rows:
            r["terms"] = json.loads(r["terms"])
        return rows

    def vehicle(
        self, vehicle_id: str, conn: sqlite3.Connection | None = None
    ) -> dict[str, Any] | None:
        rows = self._vehicles(conn, "WHERE v.vehicle_id = ?", (vehicle_id,))
        return rows[0] if rows else None

    def fleet_vehicles(
        self, depot_id: str, conn: sqlite3.Connection | None = None
    ) -> list[dict[str, Any]]:
        """Every vehicle of every fleet of a depot, with its fleet's kind, terms and status."""
        return self._vehicles(conn, "WHERE f.depot_id = ?", (depot_id,))

    def _vehicles(
        self, conn: sqlite3.Connection | None, where: str, params: tuple[object, ...]
    ) -> list[dict[str, Any]]:
        rows = self.rows(
            conn,
            "SELECT v.vehicle_id, v.fleet_id, v.spec, v.status, f.kind, f.depot_id, f.terms, "
            "f.status AS fleet_status FROM vehicles v JOIN fleets f USING (fleet_id) "
            f"{where} ORDER BY v.vehicle_id",
            params,
        )
        for r in rows:
            r["spec"] = json.loads(r["spec"])
            r["terms"] = json.loads(r["terms"])
        return rows
