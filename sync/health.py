"""Is a node ready to do its work: its broker connected and its database writable.

Liveness needs no check (a process that answers HTTP is alive); readiness does, and is the
same on the cloud, a van and a depot:

- ``broker``: the MQTT link is connected (a node with no broker configured is never ready);
- ``database``: a write to the store can start now. A second, short-lived connection opens
  the store's file for writing, takes the write lock (``BEGIN IMMEDIATE``), writes a row
  and rolls back: a read-only file or file system, a missing file, or a lock held longer
  than :data:`WRITE_TIMEOUT_S` fails it; nothing stored changes.

The answer names the checks only. Why a check fails is logged, once when it starts failing
and once when it passes again, never on every probe.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sync.node import SyncNode

__all__ = ["WRITE_TIMEOUT_S", "Readiness", "ReadinessReport", "database_problem"]

log = logging.getLogger(__name__)

WRITE_TIMEOUT_S = 1.0
"""How long the database check waits for the write lock: under the 1 s a Kubernetes probe
waits by default, well over what one ingest batch holds it."""


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    """Each check's outcome by name."""

    checks: dict[str, bool]

    @property
    def ready(self) -> bool:
        return all(self.checks.values())

    def body(self) -> dict[str, Any]:
        """What ``/readyz`` answers: the overall state, each check, and the failing ones."""
        return {
            "status": "ready" if self.ready else "not ready",
            "checks": {name: "ok" if ok else "fail" for name, ok in self.checks.items()},
            "failing": [name for name, ok in self.checks.items() if not ok],
        }


class Readiness:
    """The readiness checks of one node (see the module docstring)."""

    def __init__(self, node: SyncNode, *, write_timeout_s: float = WRITE_TIMEOUT_S) -> None:
        self.node = node
        self.write_timeout_s = write_timeout_s
        self._failing: dict[str, str] = {}
        self._lock = threading.Lock()

    def check(self) -> ReadinessReport:
        broker = self._broker_problem()
        database = database_problem(self.node.store.path, self.write_timeout_s)
        self._note("broker", broker)
        self._note("database", database)
        return ReadinessReport({"broker": broker is None, "database": database is None})

    def _broker_problem(self) -> str | None:
        if self.node.link is None:
            return "no broker configured"
        if not self.node.connected:
            return f"not connected to {self.node.link.broker.url}"
        return None

    def _note(self, name: str, problem: str | None) -> None:
        with self._lock:
            before = self._failing.get(name)
            if problem is None:
                self._failing.pop(name, None)
            else:
                self._failing[name] = problem
        if problem is not None and before is None:
            log.warning("%s not ready: %s: %s", self.node.node_id, name, problem)
        elif problem is None and before is not None:
            log.warning("%s: %s ready again", self.node.node_id, name)


def database_problem(path: Path, timeout_s: float) -> str | None:
    """Why a write to the SQLite file at ``path`` cannot start now, or None if it can."""
    uri = f"file:{urllib.parse.quote(str(path))}?mode=rw"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout_s)
    except sqlite3.Error as exc:
        return f"{path}: {exc}"
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO sync_meta (key, value) VALUES ('ready_probe', 0) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value"
        )
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return f"{path}: {exc}"
    finally:
        conn.close()
    return None
