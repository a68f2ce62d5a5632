"""A gateway clock that drifts: offset and skewed from true (or simulated) time.

Real gateways boot with a wrong RTC and their oscillators run fast or slow by tens of ppm;
the agent's ``clock=`` takes a :class:`DriftingClock` so its wall times are wrong the way a
real van's are, and the rest of Wayline must not let that reorder facts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["DriftingClock"]


class DriftingClock:
    """``base() + offset_s + (base() - t0) * skew_ppm / 1e6``: wrong, and more so over time."""

    def __init__(
        self,
        base: Callable[[], float] = time.time,
        *,
        offset_s: float = 0.0,
        skew_ppm: float = 0.0,
    ) -> None:
        if abs(skew_ppm) > 1_000_000:
            raise ValueError("skew beyond ±1e6 ppm makes the clock run backwards")
        self.base = base
        self.offset_s = offset_s
        self.skew_ppm = skew_ppm
        self.t0 = base()

    def __call__(self) -> float:
        t = self.base()
        return t + self.offset_s + (t - self.t0) * self.skew_ppm / 1e6

    def error_s(self) -> float:
        """How far this clock is from its base right now."""
        return self() - self.base()
