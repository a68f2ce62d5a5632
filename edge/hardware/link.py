"""The state of one hardware input (a GNSS source, a CAN bus) and its retry backoff.

A gateway's inputs come and go: a USB receiver is unplugged, gpsd restarts, ``can0`` is
still down at boot. Each reading thread keeps an :class:`InputLink`: it says when the input
is up or down, and waits before the next attempt with a backoff that doubles from
``min_s`` to ``max_s`` and starts again at ``min_s`` after a success. A change of state is
logged once, in one line naming the input; the attempts in between are only counted, so a
receiver missing all shift long writes one line, not one per second.
"""

from __future__ import annotations

import logging
import threading
from typing import Literal

__all__ = ["InputLink", "LinkState"]

log = logging.getLogger(__name__)

LinkState = Literal["starting", "up", "down"]


class InputLink:
    """Up/down state of the input named ``label``, with its backoff between attempts."""

    def __init__(self, label: str, *, min_s: float, max_s: float, stop: threading.Event) -> None:
        if min_s <= 0 or max_s < min_s:
            raise ValueError("the backoff needs 0 < min_s <= max_s")
        self.label = label
        self.min_s, self.max_s = min_s, max_s
        self._stop = stop
        self._delay = min_s
        self.state: LinkState = "starting"
        self.reason = ""
        self.failures = 0
        """Attempts that failed or connections that dropped, since the start."""
        self.ups = 0
        """Times the input came up (1 after the first success; more after each return)."""

    def up(self, detail: str) -> None:
        """The input works; logged when it was not up before."""
        self._delay = self.min_s
        self.ups += 1
        if self.state != "up":
            again = " again" if self.state == "down" else ""
            log.info("%s: %s%s", self.label, detail, again)
        self.state, self.reason = "up", ""

    def down(self, reason: str) -> None:
        """The input failed or went away; logged when it was not down before."""
        self.failures += 1
        if self.state != "down":
            log.warning(
                "%s: %s; retrying every %g-%g s until it answers",
                self.label,
                reason,
                self.min_s,
                self.max_s,
            )
        self.state, self.reason = "down", reason

    def wait(self) -> bool:
        """Sleep the current backoff (doubling it); True when the input is being stopped."""
        delay = self._delay
        self._delay = min(self._delay * 2, self.max_s)
        return self._stop.wait(delay)
