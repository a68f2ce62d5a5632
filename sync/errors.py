"""Errors of the sync layer::

SyncError
├── StoreError        the local SQLite store cannot be opened or written
└── BrokerUrlError    a broker URL that is not ``mqtt://host:port``
"""

from __future__ import annotations

__all__ = ["BrokerUrlError", "StoreError", "SyncError"]


class SyncError(Exception):
    """Base of every error the sync layer raises."""


class StoreError(SyncError):
    """The local store cannot be opened, checked or written."""


class BrokerUrlError(SyncError, ValueError):
    """A broker URL that is not ``mqtt://host[:port]``."""
