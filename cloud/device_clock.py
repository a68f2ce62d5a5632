"""Device time is advisory: when the coordinator takes a device's clock, and when its own.

A device stamps its presence (``state.at``) and its samples (``telemetry.at``) with its own
clock, and a gateway's clock can be anywhere: ten years ahead after a bad GNSS fix, back in
1970 after a boot without a real-time clock. Status, liveness and positions order what a
device reports by these times, so one wild value would decide them for good: a van whose
clock ran ahead stayed "offline" with a frozen position after its clock was corrected,
because nothing it sent afterwards was newer than what was stored.

So the coordinator uses the device's time only where it is plausible (not before
:data:`TIME_FLOOR_MS`, not more than :data:`AHEAD_MAX_MS` ahead of the coordinator's clock)
and its own receive time otherwise; and a stored time that is ahead of the coordinator's
clock when something new arrives (stored by a clock running ahead, or before this rule)
no longer wins over it. Facts keep the device's times as reported (the event log, a stop's
``at``): only recency is decided here.
"""

from __future__ import annotations

import logging

__all__ = ["AHEAD_MAX_MS", "TIME_FLOOR_MS", "DeviceClocks", "advisory_ms"]

log = logging.getLogger(__name__)

TIME_FLOOR_MS = 1_577_836_800_000
"""2020-01-01T00:00:00Z: no Wayline device reports anything from before it."""
AHEAD_MAX_MS = 5 * 60_000
"""How far ahead of the coordinator's clock a device's may run and still be taken."""


def advisory_ms(device_ms: int, now_ms: int) -> int:
    """``device_ms`` if it is plausible at ``now_ms`` (the coordinator's clock), else ``now_ms``."""
    if TIME_FLOOR_MS <= device_ms <= now_ms + AHEAD_MAX_MS:
        return device_ms
    return now_ms


class DeviceClocks:
    """:func:`advisory_ms` for each device, telling when a device's clock goes wrong and
    when it is right again (once each, not per message: a van reports every few seconds).

    Used by the ingest worker alone; ``implausible`` counts the times replaced."""

    def __init__(self) -> None:
        self.implausible = 0
        self._off: set[str] = set()

    def taken(self, device: str, device_ms: int, now_ms: int) -> int:
        """The time to order ``device``'s report by (see :func:`advisory_ms`)."""
        at = advisory_ms(device_ms, now_ms)
        if at != device_ms:
            self.implausible += 1
            if device not in self._off:
                self._off.add(device)
                log.warning(
                    "%s reports time %d, %+.0f s from the coordinator's clock: its status and "
                    "position go by receive time until its clock is plausible again",
                    device,
                    device_ms,
                    (device_ms - now_ms) / 1000,
                )
        elif device in self._off:
            self._off.discard(device)
            log.info("%s's clock is plausible again", device)
        return at
