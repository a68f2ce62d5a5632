"""What every part of the coordinator's store shares: the sync store and row reads."""

from __future__ import annotations

import sqlite3
from typing import Any

from sync import Store

__all__ = ["StoreBase"]


class StoreBase:
    """Reads as dicts, on the caller's connection (inside its transaction) or under the lock."""

    store: Store

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
        with self.store.lock:
            return self.rows(self.store.conn, sql, params)

    def rows(
        self, conn: sqlite3.Connection | None, sql: str, params: tuple[object, ...] = ()
    ) -> list[dict[str, Any]]:
        if conn is None:
            return self.query(sql, params)
        cur = conn.execute(sql, params)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def one(
        self, conn: sqlite3.Connection | None, sql: str, params: tuple[object, ...] = ()
    ) -> dict[str, Any] | None:
        found = self.rows(conn, sql, params)
        return found[0] if found else None

    @staticmethod
    def upsert(conn: sqlite3.Connection, table: str, key: str, row: dict[str, Any]) -> None:
        """Insert ``row`` into ``table``, or update every other column where ``key`` matches.

        ``table`` and the column names come from code, never from a caller's input."""
        cols = ", ".join(row)
        updates = ", ".join(f"{k} = excluded.{k}" for k in row if k != key)
        conn.execute(
            f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(row))}) "
            f"ON CONFLICT({key}) DO UPDATE SET {updates}",
            tuple(row.values()),
        )
