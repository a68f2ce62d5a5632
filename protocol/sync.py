"""The two control messages of reliable sync: ``ack`` and ``resend_request``, and the
bound every stream counter on the wire keeps.

Both messages travel against the stream they steer: the cloud acks a vehicle's uplink on
that vehicle's downlink topic, and a vehicle acks the cloud's downlink on its uplink topic.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from protocol.base import WireModel

__all__ = ["COUNTER_LIMIT", "Ack", "ResendRequest", "StreamCounter"]

COUNTER_LIMIT = 2**53
"""Every ``seq``, ``lc``, ``upto`` and ``from_seq`` is below this. No honest sender gets near
it (a million messages a second would take 285 years), a receiver's ``+ 1`` stays far from
SQLite's signed 64-bit limit, and a double (a JavaScript client) holds every value exactly."""

StreamCounter = Annotated[int, Field(ge=0, lt=COUNTER_LIMIT)]
"""A stream counter on the wire: a sequence number, a Lamport clock, an ack."""


class Ack(WireModel):
    """Every message of the stream up to and including ``upto`` is durably applied."""

    upto: StreamCounter


class ResendRequest(WireModel):
    """The receiver found a gap: send again everything from ``from_seq`` on."""

    from_seq: Annotated[int, Field(ge=1, lt=COUNTER_LIMIT)]
