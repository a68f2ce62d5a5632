"""Numbered schema steps for the tables of a node's store, each applied atomically with its
version, so a store in the field is upgraded in place by the next Wayline that opens it.

A store file holds the tables of two owners, and each keeps its own list of steps
(:class:`Schema`) and its own version, so neither needs the other's history:

- the node's **book** (a van's route, a depot's parcels) numbers the file: its version is the
  file's ``PRAGMA user_version``, in the SQLite header;
- the **sync layer** (streams, outbox, clock; the same in every node's store, the cloud's
  too) keeps its version in the ``schema`` row of its own ``sync_meta`` table.

:func:`sync.open_store` brings the sync tables up to date; the book brings its own when it is
built on the store (``RouteBook(store)``, ``DepotBook(store)``). A sync change is one step
appended to sync's list and reaches every kind of store; a book change is one step appended
to that book's list.

The rules of a step list:

- Step 1 is the schema as it stood when stores began to carry versions, written with
  ``IF NOT EXISTS``. A store from before then (its tables present, version 0) is adopted as
  version 1: step 1 finds every table there and changes nothing.
- Later steps are appended and never edited once released. A step is SQL, optionally
  followed by a Python ``backfill`` for data moves the SQL cannot express.
- Each step runs in one ``BEGIN IMMEDIATE`` … ``COMMIT`` together with its version bump
  (both ``user_version`` and ``sync_meta`` are transactional): a power cut or an error
  mid-step leaves the store at the version before the step with every row intact.
- A store whose version is newer than the code's list is refused with
  :class:`~sync.errors.SchemaVersionError` before anything is written; an older Wayline
  must not guess at tables it does not know.

Statements of a script are split with :func:`sqlite3.complete_statement`, not on ``;``: a
``;`` inside a string literal, a comment or a trigger body belongs to its statement. They run
one at a time on the open transaction (:meth:`sqlite3.Connection.executescript` would commit
it first). A step cannot switch ``PRAGMA foreign_keys`` (SQLite ignores that inside a
transaction); rebuild a table with the foreign keys of the new table in mind.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sync.errors import SchemaVersionError, StoreError

if TYPE_CHECKING:
    from sync.store import Store

__all__ = ["Schema", "Step", "migrate", "run_script", "split_statements", "stored_version"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Step:
    """One numbered change of a schema: SQL, then an optional backfill, in one transaction."""

    summary: str
    sql: str = ""
    backfill: Callable[[sqlite3.Connection], None] | None = None


@dataclass(frozen=True, slots=True)
class Schema:
    """The ordered steps of one owner's tables and where its version is kept.

    ``marker`` is a table step 1 creates: present at version 0, it marks a store written
    before versions. ``meta_key`` is ``None`` for the file's ``PRAGMA user_version``, else
    the key of the version's row in ``sync_meta``.
    """

    name: str
    steps: tuple[Step, ...]
    marker: str
    meta_key: str | None = None

    @property
    def version(self) -> int:
        """The version this code writes: the number of its last step."""
        return len(self.steps)

    def extended(self, *steps: Step) -> Schema:
        """This schema with ``steps`` appended (tests add a future step this way)."""
        return Schema(self.name, self.steps + steps, self.marker, self.meta_key)


def split_statements(script: str) -> list[str]:
    """The statements of an SQL script, each ending at the ``;`` that completes it.

    A last statement without its ``;`` is kept; comments and blanks between statements are
    dropped. An unfinished statement at the end (an open string or trigger) is an error.
    """
    found: list[str] = []
    start = 0
    for at, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : at + 1]):
            found.append(script[start : at + 1])
            start = at + 1
    rest = script[start:]
    if rest.strip():
        if not sqlite3.complete_statement(rest + "\n;"):
            raise ValueError(f"unfinished SQL statement at the end of a script: {rest.strip()!r}")
        found.append(rest + "\n;")
    return [s.strip() for s in found if s.strip() != ";"]


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run each statement of ``script`` on ``conn`` inside the caller's open transaction."""
    for statement in split_statements(script):
        conn.execute(statement)


def stored_version(conn: sqlite3.Connection, schema: Schema) -> int:
    """The version of ``schema`` the store on ``conn`` is at (0: not versioned yet)."""
    if schema.meta_key is None:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    if not _has_table(conn, "sync_meta"):
        return 0
    row = conn.execute("SELECT value FROM sync_meta WHERE key = ?", (schema.meta_key,)).fetchone()
    return int(row[0]) if row else 0


def _set_version(conn: sqlite3.Connection, schema: Schema, number: int) -> None:
    if schema.meta_key is None:
        conn.execute(f"PRAGMA user_version = {int(number)}")
    else:
        conn.execute(
            "INSERT INTO sync_meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (schema.meta_key, number),
        )


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def migrate(store: Store, schema: Schema) -> int:
    """Bring ``schema``'s tables in ``store`` to the code's version; return that version.

    Raises :class:`SchemaVersionError` (nothing written) for a store newer than the code and
    :class:`StoreError` naming the step if a step fails (the store stays at the step before).
    """
    with store.lock:
        try:
            have = stored_version(store.conn, schema)
            legacy = have == 0 and _has_table(store.conn, schema.marker)
        except sqlite3.Error as exc:
            raise StoreError(
                f"store {store.path}: cannot read its {schema.name} schema version: {exc}"
            ) from exc
        if have > schema.version:
            raise SchemaVersionError(
                f"store {store.path} is at {schema.name} schema version {have}, newer than "
                f"this Wayline's {schema.version}: upgrade Wayline to open it"
            )
        if legacy:
            log.info(
                "store %s: adopting its %s tables as schema version 1", store.path, schema.name
            )
        for number, step in enumerate(schema.steps, start=1):
            if number > have:
                _apply(store, schema, number, step)
        return schema.version


def _apply(store: Store, schema: Schema, number: int, step: Step) -> None:
    with store.transaction() as conn:
        if stored_version(conn, schema) >= number:
            return  # another process took this step while we waited for the write lock
        try:
            run_script(conn, step.sql)
            if step.backfill is not None:
                step.backfill(conn)
            _set_version(conn, schema, number)
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(
                f"store {store.path}: {schema.name} schema step {number} "
                f"({step.summary}) failed, the store stays at version {number - 1}: {exc}"
            ) from exc
    log.info(
        "store %s: %s schema now at version %d (%s)", store.path, schema.name, number, step.summary
    )
