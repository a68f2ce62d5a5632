"""The composed store: one object with every part's reads and writes."""

from __future__ import annotations

import logging
import sqlite3

from cloud.store.accounts import AccountStore
from cloud.store.decisions import DecisionStore
from cloud.store.ingest import DeviceFacts
from cloud.store.migrations import MIGRATIONS
from cloud.store.network import NetworkStore
from cloud.store.ops import OpsStore
from cloud.store.orders import OrderStore
from cloud.store.overview import OverviewStore
from cloud.store.plans import PlanStore
from sync import SchemaVersionError, Store, StoreError, run_script

__all__ = ["CloudStore"]

log = logging.getLogger(__name__)


class CloudStore(
    DeviceFacts,
    NetworkStore,
    OrderStore,
    PlanStore,
    DecisionStore,
    OpsStore,
    OverviewStore,
    AccountStore,
):
    """Reads and writes of the coordinator's state."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.migrate()

    def migrate(self) -> int:
        """Apply the migrations not applied yet; return the schema version.

        Each migration runs in its own transaction together with its row in
        ``schema_migrations``: one that fails leaves nothing of itself and the ones before it
        applied. Scripts are split by SQLite's own rule (:func:`sync.run_script`), so a ``;``
        in a string literal or a trigger body stays in its statement. A database from a newer
        Wayline is refused before anything is written.
        """
        have = self._migrations_applied()
        if have > len(MIGRATIONS):
            raise SchemaVersionError(
                f"store {self.store.path} is at cloud schema version {have}, newer than this "
                f"Wayline's {len(MIGRATIONS)}: upgrade Wayline to open it"
            )
        for number, script in enumerate(MIGRATIONS, start=1):
            if number > have:
                self._apply_migration(number, script)
        return len(MIGRATIONS)

    def _migrations_applied(self) -> int:
        with self.store.lock:
            conn = self.store.conn
            if not conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            ).fetchone():
                return 0
            row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
            return int(row.fetchone()[0])

    def _apply_migration(self, number: int, script: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)"
            )
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (number,)
            ).fetchone()
            if done:
                return  # another process applied it while this one waited for the lock
            try:
                run_script(conn, script)
            except (sqlite3.Error, ValueError) as exc:
                raise StoreError(
                    f"store {self.store.path}: cloud migration {number} failed, nothing of it "
                    f"is applied: {exc}"
                ) from exc
            conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (number,))
        log.info("store %s: cloud migration %d applied", self.store.path, number)
