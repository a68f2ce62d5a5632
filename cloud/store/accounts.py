"""Who may come in: dashboard users and the device registry.

Dashboard users are stored with their scrypt hash (:func:`cloud.ops.hash_password`), never a
password; the coordinator reads them when it starts. The device registry records what each
device is (vehicle or depot, and a vehicle's fleet) when its broker login is made
(``wayline admin add-device``); it is separate from ``devices``, which holds what devices
announce about themselves.

What a device *is* comes from, in this order: its ``device_registry`` row, a vehicle of the
network model (``vehicles``, with its fleet), a depot of it (``depots``), and only under the
``open`` device policy what the device announced first (``devices``). :mod:`cloud.device_registry`
admits or refuses each message on it; :meth:`AccountStore.depot_devices` sends plan copies
only to the sorters it names.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from cloud.store.base import StoreBase

__all__ = ["AccountStore", "DeviceRole"]

DeviceRole = tuple[str, str | None, str]
"""What the registry says of a device: (role, fleet id or None, source), the source one of
``registry``, ``network`` or ``announced``."""

_DECLARED = (
    "SELECT device_id, role, fleet_id, 'registry' AS source, 0 AS rank FROM device_registry {r} "
    "UNION ALL SELECT vehicle_id, 'vehicle', fleet_id, 'network', 1 FROM vehicles {v} "
    "UNION ALL SELECT depot_id, 'depot', NULL, 'network', 2 FROM depots {d} "
)
_ANNOUNCED = "UNION ALL SELECT device_id, role, NULL, 'announced', 3 FROM devices {a} "


class AccountStore(StoreBase):
    """Dashboard users and registered devices."""

    # -- dashboard users -------------------------------------------------------------------

    def add_dashboard_user(self, conn: sqlite3.Connection, row: dict[str, Any]) -> None:
        cols = ", ".join(row)
        conn.execute(
            f"INSERT INTO dashboard_users ({cols}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )

    def dashboard_user(
        self, name: str, conn: sqlite3.Connection | None = None
    ) -> dict[str, Any] | None:
        return self.one(conn, "SELECT * FROM dashboard_users WHERE name = ?", (name,))

    def dashboard_user_by_email(
        self, email: str, conn: sqlite3.Connection | None = None
    ) -> dict[str, Any] | None:
        return self.one(
            conn, "SELECT * FROM dashboard_users WHERE lower(email) = lower(?)", (email,)
        )

    def dashboard_users(self, conn: sqlite3.Connection | None = None) -> list[dict[str, Any]]:
        """Users who may log in (not disabled), oldest first."""
        return self.rows(
            conn, "SELECT * FROM dashboard_users WHERE disabled = 0 ORDER BY created_ms, name"
        )

    # -- device registry -------------------------------------------------------------------

    def register_device(self, conn: sqlite3.Connection, row: dict[str, Any]) -> None:
        conn.execute(
            "INSERT INTO device_registry (device_id, role, fleet_id, created_ms) "
            "VALUES (?, ?, ?, ?)",
            (row["device_id"], row["role"], row.get("fleet_id"), row["created_ms"]),
        )

    def registered_device(
        self, device_id: str, conn: sqlite3.Connection | None = None
    ) -> dict[str, Any] | None:
        return self.one(conn, "SELECT * FROM device_registry WHERE device_id = ?", (device_id,))

    def registered_devices(self, conn: sqlite3.Connection | None = None) -> list[dict[str, Any]]:
        return self.rows(conn, "SELECT * FROM device_registry ORDER BY device_id")

    # -- what a device is ------------------------------------------------------------------

    device_policy: str = "open"
    """``registered``: only the registry and the network model say what a device is; ``open``:
    a device in neither is what it first announced (set by the coordinator)."""

    def set_device_policy(self, policy: str) -> None:
        self.device_policy = policy

    def device_roles(
        self, conn: sqlite3.Connection | None = None, device_id: str | None = None
    ) -> dict[str, DeviceRole]:
        """What each known device is (or the one ``device_id``), by the order of precedence
        in the module docstring; a registry vehicle without a fleet takes the network's."""
        where = "WHERE {} = ?"
        parts = {
            "r": where.format("device_id"),
            "v": where.format("vehicle_id"),
            "d": where.format("depot_id"),
            "a": where.format("device_id"),
        }
        if device_id is None:
            parts = dict.fromkeys(parts, "")
        sql = _DECLARED + (_ANNOUNCED if self.device_policy == "open" else "")
        sql = sql.format(**parts) + "ORDER BY rank"
        n = sql.count("?")
        rows = self.rows(conn, sql, (device_id,) * n if device_id is not None else ())
        out: dict[str, DeviceRole] = {}
        fleets: dict[str, str] = {}
        for row in rows:
            did = str(row["device_id"])
            if row["source"] == "network" and row["role"] == "vehicle" and row["fleet_id"]:
                fleets.setdefault(did, str(row["fleet_id"]))
            if did not in out and row["role"] in ("vehicle", "depot"):
                out[did] = (str(row["role"]), row["fleet_id"], str(row["source"]))
        for did, (role, fleet, source) in out.items():
            if role == "vehicle" and fleet is None and did in fleets:
                out[did] = (role, fleets[did], source)
        return out

    def depot_devices(self, conn: sqlite3.Connection | None = None) -> list[str]:
        """Ids of the depot sorters that have announced themselves and that the registry
        says are depots: a device's own word never makes it one (see the module docstring)."""
        announced = "d.role" if self.device_policy == "open" else "NULL"
        rows = self.rows(
            conn,
            "SELECT d.device_id FROM devices d "
            "LEFT JOIN device_registry r ON r.device_id = d.device_id "
            "LEFT JOIN vehicles v ON v.vehicle_id = d.device_id "
            "LEFT JOIN depots p ON p.depot_id = d.device_id "
            "WHERE coalesce(r.role, CASE WHEN v.vehicle_id IS NOT NULL THEN 'vehicle' END, "
            f"CASE WHEN p.depot_id IS NOT NULL THEN 'depot' END, {announced}) = 'depot' "
            "ORDER BY 1",
        )
        return [str(r["device_id"]) for r in rows]
