"""Errors of the sync layer::

SyncError
├── StoreError        the local SQLite store cannot be opened or written
│   └── SchemaVersionError  a store written by a newer Wayline than this one
└── BrokerUrlError    a broker URL or its TLS files that cannot be used
"""

from __future__ import annotations

__all__ = ["BrokerUrlError", "SchemaVersionError", "StoreError", "SyncError"]


class SyncError(Exception):
    """Base of every error the sync layer raises."""


class StoreError(SyncError):
    """The local store cannot be opened, checked or written."""


class SchemaVersionError(StoreError):
    """A store whose schema version is newer than this code's; it is left untouched."""


class BrokerUrlError(SyncError, ValueError):
    """A broker URL that is not ``mqtt[s]://[user[:password]@]host[:port]``, or whose
    certificate files are missing."""
