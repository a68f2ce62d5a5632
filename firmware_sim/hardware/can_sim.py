"""A simulated vehicle bus: the van's signals sent as CAN frames on a python-can bus.

Frames follow the map in :mod:`edge.hardware.canbus` (the one place it is written down). In
simulation the bus is ``virtual``: every bus on the same channel in this process sees them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import can

from edge.hardware import CanBusError, CanSignals, encode_frames, open_bus

__all__ = ["CanSimulator"]

log = logging.getLogger(__name__)


class CanSimulator:
    """Sends ``signals()`` as frames every ``period_s`` on ``interface:channel``."""

    def __init__(
        self,
        signals: Callable[[], CanSignals],
        *,
        channel: str = "vcan0",
        interface: str = "virtual",
        period_s: float = 0.1,
    ) -> None:
        self.signals = signals
        self.period_s = period_s
        self.bus = open_bus(interface, channel)
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="can-sim", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.bus.shutdown()

    def __enter__(self) -> CanSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def send(self, frame: can.Message) -> None:
        """Send one frame (tests use it for odd frames)."""
        try:
            self.bus.send(frame)
        except can.CanError as exc:
            raise CanBusError(f"CAN send failed: {exc}") from exc
        self.sent += 1

    def send_all(self) -> None:
        for frame in encode_frames(self.signals()):
            self.send(frame)

    def _run(self) -> None:
        while True:
            try:
                self.send_all()
            except CanBusError as exc:
                log.warning("%s", exc)
            if self._stop.wait(self.period_s):
                return
