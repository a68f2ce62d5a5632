"""Errors raised by the protocol package.

Every way a payload or a topic can be refused is one of these, so a receiver catches
``ProtocolError`` alone and never anything else::

    ProtocolError
    ├── MalformedError       bytes that are not a msgpack envelope
    ├── OversizeError        a payload over the receiver's size limit
    ├── VersionError         a schema version this receiver does not speak
    ├── UnknownKindError     a message kind this receiver does not know
    ├── SchemaError          a known kind whose fields have wrong types or values
    ├── TopicError           a topic outside ``wayline/v1/{device}/up|down|state``
    └── SourceError          an envelope whose ``src`` is not the device of its topic
"""

from __future__ import annotations

__all__ = [
    "MalformedError",
    "OversizeError",
    "ProtocolError",
    "SchemaError",
    "SourceError",
    "TopicError",
    "UnknownKindError",
    "VersionError",
]


class ProtocolError(ValueError):
    """A message or topic refused by the protocol; ``reason`` is a short machine label."""

    reason = "protocol"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedError(ProtocolError):
    """The bytes are not a msgpack map shaped like an envelope."""

    reason = "malformed"


class OversizeError(ProtocolError):
    """The payload is larger than the receiver accepts."""

    reason = "oversize"


class VersionError(ProtocolError):
    """The envelope's schema version has a major this receiver does not speak."""

    reason = "version"


class UnknownKindError(ProtocolError):
    """The envelope's kind is not one this receiver knows."""

    reason = "unknown_kind"


class SchemaError(ProtocolError):
    """A known kind with missing fields, wrong types or out-of-range values."""

    reason = "schema"


class TopicError(ProtocolError):
    """A topic that is not one of Wayline's, or a device id that cannot be in one."""

    reason = "topic"


class SourceError(ProtocolError):
    """An envelope whose ``src`` is not the device its topic belongs to (a forged sender)."""

    reason = "src_mismatch"
