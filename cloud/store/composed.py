"""The composed store: one object with every part's reads and writes."""

from __future__ import annotations

from cloud.store.accounts import AccountStore
from cloud.store.decisions import DecisionStore
from cloud.store.ingest import DeviceFacts
from cloud.store.migrations import MIGRATIONS
from cloud.store.network import NetworkStore
from cloud.store.ops import OpsStore
from cloud.store.orders import OrderStore
from cloud.store.overview import OverviewStore
from cloud.store.plans import PlanStore
from sync import Store

__all__ = ["CloudStore"]


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
