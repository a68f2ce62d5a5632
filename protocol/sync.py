"""The two control messages of reliable sync: ``ack`` and ``resend_request``.

Both travel against the stream they steer: the cloud acks a vehicle's uplink on that
vehicle's downlink topic, and a vehicle acks the cloud's downlink on its uplink topic.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from protocol.base import WireModel

__all__ = ["Ack", "ResendRequest"]


class Ack(WireModel):
    """Every message of the stream up to and including ``upto`` is durably applied."""

    upto: Annotated[int, Field(ge=0)]


class ResendRequest(WireModel):
    """The receiver found a gap: send again everything from ``from_seq`` on."""

    from_seq: Annotated[int, Field(ge=1)]
