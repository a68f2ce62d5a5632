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

from cloud.store.composed import CloudStore
from cloud.store.ingest import FINAL
from cloud.store.migrations import MIGRATIONS
from cloud.store.orders import DONE

__all__ = ["DONE", "FINAL", "MIGRATIONS", "CloudStore"]
