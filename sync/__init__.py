"""Sync that loses nothing: the local store, the MQTT link, and reliable ordered streams.

Shared by the edge agents and the cloud coordinator, which meet only through protocol
messages on the wire. See :mod:`sync.node` for the rules it keeps.
"""

from sync.errors import BrokerUrlError, SchemaVersionError, StoreError, SyncError
from sync.migrations import Schema, Step, migrate, run_script
from sync.mqtt import BrokerAddress, MqttLink, parse_broker_url
from sync.node import Handler, Rejected, SyncNode, SyncSettings, Tx
from sync.store import SYNC_SCHEMA, Store, open_store
from sync.stream import WriteBuffer

__all__ = [
    "SYNC_SCHEMA",
    "BrokerAddress",
    "BrokerUrlError",
    "Handler",
    "MqttLink",
    "Rejected",
    "Schema",
    "SchemaVersionError",
    "Step",
    "Store",
    "StoreError",
    "SyncError",
    "SyncNode",
    "SyncSettings",
    "Tx",
    "WriteBuffer",
    "migrate",
    "open_store",
    "parse_broker_url",
    "run_script",
]
