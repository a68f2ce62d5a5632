"""Topic builders and parsers: ``wayline/v1/{device}/up|down|state``.

One uplink topic per device, so MQTT's per-topic ordering holds for each device's stream.
"""

from __future__ import annotations

import functools
import re
from typing import Literal, NamedTuple

from protocol.errors import TopicError

__all__ = [
    "PREFIX",
    "Direction",
    "Topic",
    "down_topic",
    "parse_topic",
    "state_topic",
    "subscription",
    "up_topic",
]

PREFIX = "wayline/v1"
Direction = Literal["up", "down", "state"]
_DEVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DIRECTIONS: tuple[Direction, ...] = ("up", "down", "state")


class Topic(NamedTuple):
    """A parsed topic: which device, which direction."""

    device: str
    direction: Direction


def _checked(device: str) -> str:
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise TopicError(f"device id {device!r:.70} is not a valid topic level")
    return device


def up_topic(device: str) -> str:
    """Where ``device`` publishes its stream to the cloud."""
    return f"{PREFIX}/{_checked(device)}/up"


def down_topic(device: str) -> str:
    """Where the cloud publishes its stream (and acks) to ``device``."""
    return f"{PREFIX}/{_checked(device)}/down"


def state_topic(device: str) -> str:
    """The retained online/offline state of ``device``; the offline one is its last will."""
    return f"{PREFIX}/{_checked(device)}/state"


def subscription(direction: Direction, device: str = "+") -> str:
    """A subscription filter, for one device or (default) every device."""
    if direction not in _DIRECTIONS:
        raise TopicError(f"direction must be one of {_DIRECTIONS}, not {direction!r:.20}")
    level = device if device == "+" else _checked(device)
    return f"{PREFIX}/{level}/{direction}"


def parse_topic(topic: str) -> Topic:
    """Split a Wayline topic into device and direction, or raise TopicError."""
    if not isinstance(topic, str):
        raise TopicError(f"a topic is a string, not {type(topic).__name__}")
    return _parse(topic)


@functools.lru_cache(maxsize=65_536)
def _parse(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != PREFIX or parts[3] not in _DIRECTIONS:
        raise TopicError(f"not a Wayline topic: {topic!r:.100}")
    direction: Direction = parts[3]
    return Topic(_checked(parts[2]), direction)
