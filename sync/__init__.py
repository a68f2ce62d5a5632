"""Sync that loses nothing: the local store, the MQTT link, and reliable ordered streams.

Shared by the edge agents and the cloud coordinator, which meet only through protocol
messages on the wire. See :mod:`sync.node` for the rules it keeps.
"""

from sync.errors import BrokerUrlError, StoreError, SyncError
from sync.mqtt import BrokerAddress, MqttLink, parse_broker_url
from sync.node import Handler, Rejected, SyncNode, SyncSettings, Tx
from sync.store import Store, open_store
from sync.stream import WriteBuffer

__all__ = [
    "BrokerAddress",
    "BrokerUrlError",
    "Handler",
    "MqttLink",
    "Rejected",
    "Store",
    "StoreError",
    "SyncError",
    "SyncNode",
    "SyncSettings",
    "Tx",
    "WriteBuffer",
    "open_store",
    "parse_broker_url",
]
