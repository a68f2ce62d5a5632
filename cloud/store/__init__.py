"""The coordinator's store: every write of the cloud goes through this package.

SQLite (WAL, ``synchronous=FULL``) through the sync layer's store, with numbered migrations
(:mod:`cloud.store.migrations`) recorded in ``schema_migrations``. One module per concept:
device facts (:mod:`~cloud.store.ingest`), the network (:mod:`~cloud.store.network`),
orders (:mod:`~cloud.store.orders`), plans and assignments (:mod:`~cloud.store.plans`),
decisions and triggers (:mod:`~cloud.store.decisions`). Replacing SQLite by a server
database later means replacing this package, not its callers. Writes take the caller's open
connection, so they commit together with whatever else that transaction holds (the stream
cursor of an ingest, the outbox entry of a plan, the decision that made them).
"""

from __future__ import annotations

from cloud.store.decisions import DecisionStore
from cloud.store.ingest import FINAL, DeviceFacts
from cloud.store.migrations import MIGRATIONS
from cloud.store.network import NetworkStore
from cloud.store.orders import DONE, OrderStore
from cloud.store.plans import PlanStore
from sync import Store

__all__ = ["DONE", "FINAL", "MIGRATIONS", "CloudStore"]


class CloudStore(DeviceFacts, NetworkStore, OrderStore, PlanStore, DecisionStore):
    """Reads and writes of the coordinator's state."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.migrate()

    def migrate(self) -> int:
        """Apply the migrations not applied yet; return the schema version."""
        with self.store.transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)"
            )
            have = conn.execute(
                "SELECT coalesce(max(version), 0) FROM schema_migrations"
            ).fetchone()[0]
            for number, script in enumerate(MIGRATIONS, start=1):
                if number > have:
                    for statement in filter(str.strip, script.split(";")):
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (number,))
            return len(MIGRATIONS)
