"""Test helpers shared by the test suite and the benchmarks.

Import as ``from tests.helpers import MosquittoBroker, free_port, wait_for``
(the repository root is on ``sys.path`` through pytest's ``pythonpath`` setting).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from firmware_sim.broker import (
    BROKER_CONFIG,
    BrokerError,
    MosquittoBroker,
    free_port,
    mosquitto_executable,
    port_accepts,
)

__all__ = [
    "BROKER_CONFIG",
    "DATA_DIR",
    "REPO_ROOT",
    "BrokerError",
    "MosquittoBroker",
    "free_port",
    "mosquitto_executable",
    "port_accepts",
    "unique_id",
    "wait_for",
]

REPO_ROOT = Path(__file__).resolve().parent.parent

DATA_DIR = Path(os.environ.get("WAYLINE_DATA", REPO_ROOT / "data"))
"""The Solomon and Homberger instances with their best-known solutions: ``data/`` in the
repository (its README cites the sources), or wherever ``WAYLINE_DATA`` points."""

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str | None = None,
) -> T:
    """Call ``predicate`` until it returns something truthy; return that value.

    Raises ``TimeoutError`` (naming ``message`` or the predicate) after ``timeout`` s.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def unique_id(prefix: str = "t") -> str:
    """A short id unique to this run, e.g. for device ids and client ids on a shared broker."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
