"""The driver's feet: a loop that steers the simulated van toward the agent's next stop.

The driver follows the tablet: the next stop the agent shows is where the van goes. The
loop steps the :class:`VanModel` by the simulated time elapsed, so at ``speed=120`` a
kilometre at 30 km/h takes a second of machine time. Before any route the van waits where
it is; when the first route arrives a van that has not moved yet starts from its depot.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from firmware_sim.hardware.van import VanModel

__all__ = ["RouteFollower"]

log = logging.getLogger(__name__)


class RouteFollower:
    """Every ``period_s`` (machine time): read the agent's status and drive toward ``next``."""

    def __init__(
        self,
        van: VanModel,
        status: Callable[[], dict[str, Any]],
        *,
        clock: Callable[[], float],
        period_s: float = 0.2,
    ) -> None:
        self.van = van
        self.status = status
        self.clock = clock
        self.period_s = period_s
        self.at_target = False
        self._placed = False
        self._last = clock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="driver", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def step(self) -> None:
        now = self.clock()
        dt_s, self._last = now - self._last, now
        status = self.status()
        route = status.get("route")
        if route is None:
            self.van.step(dt_s, None)
            return
        if not self._placed:
            self._placed = True
            if not self.van.moved and route.get("depot_lat") is not None:
                self.van.place(route["depot_lat"], route["depot_lon"])
        if not self.van.snapshot()["follow"]:
            return
        nxt = status.get("next")
        target = (nxt["lat"], nxt["lon"]) if nxt else (route["depot_lat"], route["depot_lon"])
        self.at_target = self.van.step(dt_s, target)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.step()
            except Exception:
                log.warning("simulated driving step failed", exc_info=True)
