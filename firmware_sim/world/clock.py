"""Accelerated simulation time.

``SimClock(start, speed)`` is a clock callable (epoch seconds, float) that starts at
``start`` and runs ``speed`` times faster than the machine's clock: at ``speed=120`` a
delivery day of ten hours passes in five minutes. Every process of a demo builds its own
clock from the same ``start`` and ``speed``; they agree because they read the same
machine clock (``time.time``) and only scale the time elapsed since an agreed epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["SimClock"]


class SimClock:
    """Simulated epoch seconds: ``start + (real() - real_start) * speed``."""

    def __init__(
        self,
        start: float,
        speed: float = 1.0,
        *,
        real_start: float | None = None,
        real: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < speed <= 10_000:
            raise ValueError(f"speed must be in (0, 10000], got {speed}")
        self.start = float(start)
        self.speed = float(speed)
        self.real = real
        self.real_start = real() if real_start is None else float(real_start)

    def __call__(self) -> float:
        return self.start + (self.real() - self.real_start) * self.speed

    def now(self) -> float:
        return self()

    def real_seconds(self, sim_seconds: float) -> float:
        """How long ``sim_seconds`` of simulated time take on the machine's clock."""
        return sim_seconds / self.speed

    def sleep(self, sim_seconds: float) -> None:
        """Sleep for ``sim_seconds`` of simulated time."""
        time.sleep(max(0.0, sim_seconds / self.speed))

    def real_at(self, sim_t: float) -> float:
        """The machine time (``time.time`` scale) at which the clock reads ``sim_t``."""
        return self.real_start + (sim_t - self.start) / self.speed
