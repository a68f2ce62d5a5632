"""Who may come in: dashboard users and the device registry.

Dashboard users are stored with their scrypt hash (:func:`cloud.ops.hash_password`), never a
password; the coordinator reads them when it starts. The device registry records what each
device is (vehicle or depot, and a vehicle's fleet) when its broker login is made
(``wayline admin add-device``); it is separate from ``devices``, which holds what devices
announce about themselves.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from cloud.store.base import StoreBase

__all__ = ["AccountStore"]


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
