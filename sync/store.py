"""The local SQLite store of a node and the tables that make sync durable.

Opening a store sets WAL and ``synchronous=FULL`` (DESIGN rule 7: facts survive power loss).
A store that fails its integrity check is quarantined beside itself and what is intact is
copied into a fresh one; nothing is ever deleted. A store another process holds locked is
waited for, never taken for corrupt. The connection runs in autocommit mode and
every write goes through :func:`transaction`, which takes the node's lock and issues
``BEGIN IMMEDIATE`` / ``COMMIT`` itself, so a state change and the message reporting it land
in one transaction (rule 1).

Tables (numbered steps in ``SYNC_SCHEMA``, versioned in ``sync_meta``; see
:mod:`sync.migrations`):

- ``sync_out(peer, next_seq, acked_upto)``: per outgoing stream, the next sequence number
  to give and how far the peer has durably applied.
- ``sync_outbox(peer, seq, id, kind, payload, created_ms)``: encoded envelopes not yet acked.
- ``sync_in(peer, applied_upto)``: per incoming stream, the last sequence number applied.
- ``sync_rejected(peer, seq, kind, reason, at_ms)``: in-order messages the handler refused.
- ``sync_meta(key, value)``: the Lamport clock and other counters.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sync.errors import StoreError
from sync.migrations import Schema, Step, migrate

__all__ = ["SYNC_SCHEMA", "Store", "open_store"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_out (
    peer TEXT PRIMARY KEY, next_seq INTEGER NOT NULL, acked_upto INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sync_outbox (
    peer TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL,
    payload BLOB NOT NULL, created_ms INTEGER NOT NULL, PRIMARY KEY (peer, seq));
CREATE TABLE IF NOT EXISTS sync_in (peer TEXT PRIMARY KEY, applied_upto INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sync_rejected (
    peer TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL,
    at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sync_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

SYNC_SCHEMA = Schema(
    "sync",
    (Step("streams, outbox, rejections and clock", _SCHEMA),),
    marker="sync_outbox",
    meta_key="schema",
)


class Store:
    """A node's SQLite database, its lock, and the explicit transactions around it."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn
        self.lock = threading.RLock()
        self._depth = 0
        self.recovered = False
        """Opened from a quarantined copy: its stream counters may have gone backwards."""

    @contextlib.contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` under the node's lock; nested calls join the outer.

        ``durable=False`` commits without an fsync (WAL, ``synchronous=NORMAL``): only for
        writes that are safe to lose on power loss, such as forgetting acked outbox entries
        (they would be sent again and dropped as duplicates). Facts are always durable.
        """
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            try:
                if not durable:
                    self.conn.execute("PRAGMA synchronous=NORMAL")
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from exc
            finally:
                self._depth = 0
                if not durable:
                    self.conn.execute("PRAGMA synchronous=FULL")

    @contextlib.contextmanager
    def savepoint(self, name: str = "msg") -> Iterator[None]:
        """A savepoint inside the current transaction: undone alone if its block raises."""
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.conn.execute(f"ROLLBACK TO {name}")
            self.conn.execute(f"RELEASE {name}")
            raise
        self.conn.execute(f"RELEASE {name}")

    def read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a query under the lock and return all rows."""
        with self.lock:
            return list(self.conn.execute(sql, params))

    def ensure_schema(self, script: str) -> None:
        """Create tables a caller needs (``CREATE … IF NOT EXISTS`` statements)."""
        with self.lock:
            try:
                self.conn.executescript(script)
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: schema: {exc}") from exc

    def table_names(self) -> list[str]:
        """Names of the tables in this store, in the order SQLite lists them."""
        with self.lock:
            rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            return [name for (name,) in rows]

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


#: How long opening a store waits for another process's lock on it before giving up (and
#: leaving it untouched): a busy store is healthy, never a reason to quarantine it.
LOCK_WAIT_S = 60.0
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _healthy(path: Path, lock_wait_s: float) -> bool:
    """Whether the store passes SQLite's quick check. Waits out another connection's lock;
    raises StoreError if it is still held after ``lock_wait_s``."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=lock_wait_s)
        try:
            row = conn.execute("PRAGMA quick_check").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _BUSY_CODES:
            raise StoreError(
                f"store {path} is locked by another process after {lock_wait_s:g} s "
                "of waiting; left as it is"
            ) from None
        return False
    return bool(row) and row[0] == "ok"


def _quarantine(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            shutil.move(src, f"{target}{suffix}")
    return target


def _recover(bad: Path, conn: sqlite3.Connection) -> int:
    """Copy every row still readable from a quarantined store; return how many."""
    try:
        src = sqlite3.connect(f"file:{bad}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.DatabaseError:
        return 0
    try:
        tables = src.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='table' AND sql IS NOT NULL "
            "AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    except sqlite3.DatabaseError:
        tables = []
    copied = 0
    for name, sql in tables:
        try:
            conn.execute(sql.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
        except sqlite3.DatabaseError as exc:
            log.error("recovering table %s from %s: cannot create it: %s", name, bad, exc)
            continue
        rows = _scan(src, name) if "WITHOUT ROWID" in sql.upper() else _probe(src, name)
        for row in rows:
            marks = ",".join("?" * len(row))
            conn.execute(f'INSERT OR IGNORE INTO "{name}" VALUES ({marks})', row)
            copied += 1
    _copy_rest(src, conn, bad)
    src.close()
    return copied


def _copy_rest(src: sqlite3.Connection, conn: sqlite3.Connection, bad: Path) -> None:
    """Indexes, triggers and the schema version of a quarantined store, after its rows."""
    try:
        others = src.execute(
            "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger', 'view') "
            "AND sql IS NOT NULL"
        ).fetchall()
        version = int(src.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        log.error("recovering the schema of %s: %s", bad, exc)
        return
    for name, sql in others:
        try:
            conn.execute(sql)
        except sqlite3.DatabaseError as exc:
            log.error("recovering %s from %s: %s", name, bad, exc)
    conn.execute(f"PRAGMA user_version = {version}")


def _scan(src: sqlite3.Connection, name: str) -> Iterator[tuple[object, ...]]:
    """Rows of a table in order until the first unreadable page."""
    try:
        cur = src.execute(f'SELECT * FROM "{name}"')
        while (row := cur.fetchone()) is not None:
            yield row
    except sqlite3.DatabaseError as exc:
        log.error("recovering table %s stopped at a damaged page: %s", name, exc)


def _probe(
    src: sqlite3.Connection, name: str, limit: int = 10_000_000
) -> Iterator[tuple[object, ...]]:
    """Rows of a rowid table found by looking each one up from the root of its tree, so a
    damaged page loses only the rows on it, not the rows after it."""
    rowid, misses = 0, 0
    while rowid < limit and misses < 64:
        try:
            row = src.execute(
                f'SELECT rowid, * FROM "{name}" WHERE rowid > ? ORDER BY rowid LIMIT 1', (rowid,)
            ).fetchone()
        except sqlite3.DatabaseError:
            misses += 1
            rowid += 1 << min(misses, 20)  # step over the damaged stretch, faster each time
            continue
        if row is None:
            return
        misses = 0
        rowid = int(row[0])
        yield row[1:]


def open_store(path: str | Path, *, lock_wait_s: float = LOCK_WAIT_S) -> Store:
    """Open (or create) a node's store; quarantine and recover it if it is corrupt, wait for
    it if another process holds it locked (up to ``lock_wait_s``; then StoreError).

    The sync tables are brought to this code's schema (:data:`SYNC_SCHEMA`); a store from a
    newer Wayline raises :class:`~sync.errors.SchemaVersionError` and is left untouched.
    """
    p = Path(path)
    recovered = False
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists() and not p.is_file():
            raise StoreError(f"cannot open store {p}: not a regular file")
        if p.exists() and not _healthy(p, lock_wait_s):
            bad = _quarantine(p)
            conn = _connect(p)
            copied = _recover(bad, conn)
            recovered = True
            log.critical(
                "store %s failed its integrity check: quarantined as %s, %d rows recovered",
                p,
                bad,
                copied,
            )
        else:
            conn = _connect(p)
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"cannot open store {p}: {exc}") from exc
    store = Store(p, conn)
    store.recovered = recovered
    try:
        migrate(store, SYNC_SCHEMA)
    except BaseException:
        store.close()
        raise
    return store
