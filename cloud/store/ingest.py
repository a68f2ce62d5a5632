"""Device facts in the coordinator's store: what vehicles and depots report, as applied.

Writes take the ingest transaction's connection, so they commit together with the stream
cursor that made them (exactly-once apply).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from cloud.store.base import StoreBase
from protocol import (
    DeviceState,
    ExceptionReport,
    ParcelScan,
    RouteSequenceReport,
    StopEvent,
    Telemetry,
    decode,
    encode,
)

__all__ = ["FINAL", "DeviceFacts", "TelemetryBuffer"]

FINAL = ("delivered", "failed", "picked_up", "skipped")


#: A vehicle's newest position. Recency is the advisory time (:mod:`cloud.device_clock`); a
#: stored time ahead of the coordinator's clock (the last parameter) never wins, so a van
#: whose clock ran ahead moves again once its clock is right.
_SET_POSITION = (
    "INSERT INTO positions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(vehicle_id) DO UPDATE SET at_ms = excluded.at_ms, lat = excluded.lat, "
    "lon = excluded.lon, speed_kmh = excluded.speed_kmh, "
    "heading_deg = excluded.heading_deg, odometer_km = excluded.odometer_km, "
    "fuel_pct = excluded.fuel_pct, charge_pct = excluded.charge_pct, "
    "door_open = excluded.door_open, ignition = excluded.ignition, "
    "temperature_c = excluded.temperature_c "
    "WHERE excluded.at_ms >= positions.at_ms OR positions.at_ms > ?"
)
_NO_CLOCK = 2**62
"""The coordinator's clock where a caller gives none: no stored time is ahead of it."""
_LOG_EVENT = "INSERT INTO events (src, seq, id, kind, lc, ts, payload) VALUES (?, ?, ?, ?, ?, ?, ?)"


def _position_row(vehicle: str, t: Telemetry, at_ms: int, now_ms: int) -> tuple[Any, ...]:
    return (
        vehicle,
        at_ms,
        t.lat,
        t.lon,
        t.speed_kmh,
        t.heading_deg,
        t.odometer_km,
        t.fuel_pct,
        t.charge_pct,
        int(t.door_open),
        int(t.ignition),
        t.temperature_c,
        now_ms,
    )


class TelemetryBuffer:
    """Telemetry of one ingest batch, written in two statements when the batch commits.

    Most of what devices send is telemetry; one statement per sample was most of the
    cloud's ingest time. Only each vehicle's newest position is kept (the table holds the
    latest only, as :meth:`DeviceFacts.set_position` does); every sample is logged.
    """

    def __init__(self) -> None:
        self._positions: dict[str, tuple[Telemetry, int]] = {}
        self._events: list[tuple[Any, ...]] = []
        self._now_ms = _NO_CLOCK

    def add(
        self,
        vehicle: str,
        env: Any,
        payload: bytes,
        *,
        at_ms: int | None = None,
        now_ms: int | None = None,
    ) -> None:
        """Buffer one sample; ``at_ms`` is its advisory time (the sample's own if None) and
        ``now_ms`` the coordinator's clock when it arrived."""
        t: Telemetry = env.body
        at = t.at if at_ms is None else at_ms
        have = self._positions.get(vehicle)
        if have is None or at >= have[1]:
            self._positions[vehicle] = (t, at)
        if now_ms is not None:
            self._now_ms = now_ms if self._now_ms == _NO_CLOCK else max(self._now_ms, now_ms)
        self._events.append(
            (vehicle, env.seq, env.id, env.kind, env.lc, env.ts, payload or encode(env))
        )

    def flush(self, conn: sqlite3.Connection) -> None:
        if self._positions:
            now = self._now_ms
            conn.executemany(
                _SET_POSITION,
                [_position_row(v, t, at, now) for v, (t, at) in self._positions.items()],
            )
        if self._events:
            conn.executemany(_LOG_EVENT, self._events)
        self.discard()

    def discard(self) -> None:
        self._positions.clear()
        self._events.clear()
        self._now_ms = _NO_CLOCK


class DeviceFacts(StoreBase):
    """What devices report: the event log, positions, stop facts, sequences, scans."""

    # -- writes inside the ingest transaction ----------------------------------------------

    def log_event(
        self, conn: sqlite3.Connection, src: str, seq: int, env: Any, payload: bytes = b""
    ) -> None:
        """Append to the event log; ``payload`` is the envelope as received (encoded if empty)."""
        conn.execute(
            _LOG_EVENT, (src, seq, env.id, env.kind, env.lc, env.ts, payload or encode(env))
        )

    def set_state(
        self,
        conn: sqlite3.Connection,
        device: str,
        state: DeviceState,
        *,
        at_ms: int | None = None,
        now_ms: int | None = None,
    ) -> None:
        """A device's presence, ordered by ``at_ms`` (its advisory time, ``state.at`` if
        None). A stored time ahead of ``now_ms`` (the coordinator's clock) never wins: a
        device whose clock ran ahead is online again once its clock is right."""
        at = state.at if at_ms is None else at_ms
        now = _NO_CLOCK if now_ms is None else now_ms
        conn.execute(
            "INSERT INTO devices (device_id, role, status, status_at_ms, last_seen_ms) "
            "VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT(device_id) DO UPDATE SET "
            "role = excluded.role, status = excluded.status, "
            "status_at_ms = excluded.status_at_ms, last_seen_ms = CASE "
            "WHEN devices.last_seen_ms > ?5 THEN excluded.last_seen_ms "
            "ELSE max(devices.last_seen_ms, excluded.last_seen_ms) END "
            "WHERE excluded.status_at_ms >= devices.status_at_ms OR devices.status_at_ms > ?5",
            (device, state.role, state.status, at, now),
        )

    def set_position(
        self,
        conn: sqlite3.Connection,
        vehicle: str,
        t: Telemetry,
        *,
        at_ms: int | None = None,
        now_ms: int | None = None,
    ) -> None:
        """A vehicle's position, as :class:`TelemetryBuffer` writes it for one sample."""
        at = t.at if at_ms is None else at_ms
        conn.execute(
            _SET_POSITION, _position_row(vehicle, t, at, _NO_CLOCK if now_ms is None else now_ms)
        )

    def record_stop_event(self, conn: sqlite3.Connection, vehicle: str, e: StopEvent) -> bool:
        """Keep a final fact; a stop's status only moves forward. True if it was new."""
        if e.type not in FINAL:
            return False
        cur = conn.execute(
            "INSERT INTO stop_facts (stop_id, vehicle_id, route_id, status, at_ms, event_id, "
            "reason, recipient) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(stop_id) DO NOTHING",
            (
                e.stop_id,
                vehicle,
                e.route_id,
                e.type,
                e.at,
                e.event_id,
                e.reason,
                e.proof.recipient_name if e.proof else None,
            ),
        )
        return cur.rowcount == 1

    def record_sequence(
        self, conn: sqlite3.Connection, vehicle: str, r: RouteSequenceReport, at_ms: int
    ) -> None:
        stops = json.dumps([[s.stop_id, s.eta, s.late_s] for s in r.order])
        conn.execute(
            "INSERT OR REPLACE INTO sequences VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (vehicle, r.route_id, r.revision, r.plan_version, r.reason, stops, r.solver, at_ms),
        )

    def record_exception(self, conn: sqlite3.Connection, src: str, x: ExceptionReport) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO exceptions (exception_id, src, category, severity, at_ms, "
            "detail, stop_id, parcel_id, vehicle_id, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                x.exception_id,
                src,
                x.category,
                x.severity,
                x.at,
                x.detail,
                x.stop_id,
                x.parcel_id,
                x.vehicle_id,
                json.dumps(x.data),
            ),
        )

    def record_scan(self, conn: sqlite3.Connection, src: str, s: ParcelScan) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO scans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                s.scan_id,
                src,
                s.barcode,
                s.at,
                s.result,
                s.parcel_id,
                s.depot_id,
                s.vehicle_id,
                s.container,
                s.position,
            ),
        )

    def earlier_scans(
        self, conn: sqlite3.Connection, parcel_id: str, scan_id: str
    ) -> list[dict[str, Any]]:
        return self.rows(
            conn,
            "SELECT scan_id, result, vehicle_id, depot_id FROM scans WHERE parcel_id = ? "
            "AND scan_id != ? ORDER BY at_ms, scan_id",
            (parcel_id, scan_id),
        )

    # -- reads -----------------------------------------------------------------------------

    def load_positions(
        self, parcel_ids: list[str], conn: sqlite3.Connection | None = None
    ) -> dict[str, int]:
        """Where each parcel sits in its van (1 = nearest the door), from the depot's last
        ``loaded`` scan of it."""
        if not parcel_ids:
            return {}
        marks = ",".join("?" * len(parcel_ids))
        rows = self.rows(
            conn,
            f"SELECT parcel_id, position FROM scans WHERE result = 'loaded' "
            f"AND position IS NOT NULL AND parcel_id IN ({marks}) ORDER BY at_ms",
            tuple(parcel_ids),
        )
        return {str(r["parcel_id"]): int(r["position"]) for r in rows}

    def known_device(self, device: str, conn: sqlite3.Connection | None = None) -> bool:
        return (
            self.one(conn, "SELECT 1 AS x FROM devices WHERE device_id = ?", (device,)) is not None
        )

    def devices(self) -> list[dict[str, Any]]:
        return self.query(
            "SELECT d.*, p.lat, p.lon, p.speed_kmh, p.at_ms AS position_at_ms, "
            "(SELECT ts FROM events e WHERE e.src = d.device_id ORDER BY seq DESC LIMIT 1) "
            "AS last_event_ms FROM devices d "
            "LEFT JOIN positions p ON p.vehicle_id = d.device_id ORDER BY d.device_id"
        )

    def events(self, src: str | None, kind: str | None, limit: int) -> list[dict[str, Any]]:
        where, params = [], []
        if src:
            where.append("src = ?")
            params.append(src)
        if kind:
            where.append("kind = ?")
            params.append(kind)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.query(
            f"SELECT src, seq, id, kind, lc, ts, payload FROM events {clause} "
            "ORDER BY src, seq DESC LIMIT ?",
            (*params, limit),
        )
        for r in rows:
            r["body"] = decode(r.pop("payload"), max_bytes=1 << 30).body.model_dump(mode="json")
        return rows

    def counts(self) -> dict[str, int]:
        rows = self.store.read("SELECT kind, count(*) FROM events GROUP BY kind")
        return {str(k): int(v) for k, v in rows}
