"""Telemetry from the gateway's hardware: a GNSS fix and the CAN signals, every period.

``HardwareReader`` samples the latest fix and the latest vehicle signals every
``period_s`` and hands a :class:`protocol.Telemetry` to a callback (the agent's
``telemetry``). It never invents a signal: no sample is sent without a recent fix, nor
without recent bus signals that include the odometer and the ignition (the wire requires
both), and each skipped sample is counted with its reason. Speed comes from the vehicle bus
(wheel speed) when present, else from GNSS. An optional signal outside what the wire
accepts (a cargo sensor reading 120 degC) is sent as unknown rather than losing the sample.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from pydantic import ValidationError

from edge.hardware.canbus import CanSignals
from edge.hardware.fix import Fix
from protocol import Telemetry

__all__ = ["FixSource", "HardwareReader", "SignalSource", "build_sample"]

log = logging.getLogger(__name__)

MAX_FIX_AGE_S = 5.0
MAX_SIGNAL_AGE_S = 5.0
REQUIRED_SIGNALS = frozenset({"odometer_km", "ignition"})
"""Bus signals a sample cannot go without (the wire has no "unknown" for them)."""


class FixSource(Protocol):
    """Something that knows the latest GNSS fix (a :class:`GnssReceiver`)."""

    def latest(self, max_age_s: float | None = None) -> Fix | None: ...


class SignalSource(Protocol):
    """Something that knows the latest vehicle signals (a :class:`CanReader`)."""

    def signals(self) -> CanSignals: ...


def build_sample(at_ms: int, fix: Fix, signals: CanSignals) -> Telemetry:
    """One telemetry sample from a fix and the vehicle's signals."""
    speed = signals.speed_kmh if signals.speed_kmh is not None else (fix.speed_kmh or 0.0)
    return Telemetry(
        at=at_ms,
        lat=round(fix.lat, 7),
        lon=round(fix.lon, 7),
        speed_kmh=round(min(max(speed, 0.0), 400.0), 2),
        heading_deg=round(fix.heading_deg or 0.0, 2) % 360.0,
        odometer_km=signals.odometer_km or 0.0,
        fuel_pct=_within(signals.fuel_pct, 0.0, 100.0),
        charge_pct=_within(signals.charge_pct, 0.0, 100.0),
        door_open=signals.door_open,
        ignition=bool(signals.ignition),
        temperature_c=_within(signals.temperature_c, -60.0, 90.0),
    )


def _within(value: float | None, low: float, high: float) -> float | None:
    """An optional signal the wire accepts, or None (unknown) when it is out of range."""
    if value is None or not low <= value <= high:
        return None
    return round(value, 3)


class HardwareReader:
    """Samples the receivers every ``period_s`` in its own thread; stops cleanly."""

    def __init__(
        self,
        gnss: FixSource,
        can: SignalSource,
        on_sample: Callable[[Telemetry], None],
        *,
        period_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        max_fix_age_s: float = MAX_FIX_AGE_S,
        max_signal_age_s: float = MAX_SIGNAL_AGE_S,
    ) -> None:
        if period_s <= 0:
            raise ValueError("the sampling period must be positive")
        self.gnss, self.can, self.on_sample = gnss, can, on_sample
        self.period_s = period_s
        self.clock = clock
        self.max_fix_age_s = max_fix_age_s
        self.max_signal_age_s = max_signal_age_s
        self.stats = {"samples": 0, "no_fix": 0, "no_signals": 0, "rejected": 0, "failed": 0}
        self.last: Telemetry | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hardware-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def __enter__(self) -> HardwareReader:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sample(self) -> Telemetry | None:
        """Take one sample now and hand it on; None (and a count) when it cannot be taken."""
        fix = self.gnss.latest(self.max_fix_age_s)
        if fix is None:
            self.stats["no_fix"] += 1
            return None
        signals = self.can.signals()
        stale = time.monotonic() - signals.updated_at > self.max_signal_age_s
        if stale or not signals.seen >= REQUIRED_SIGNALS:
            self.stats["no_signals"] += 1
            return None
        try:
            sample = build_sample(int(self.clock() * 1000), fix, signals)
        except ValidationError as exc:
            self.stats["rejected"] += 1
            log.warning("hardware sample out of range: %s", exc.errors()[0]["msg"])
            return None
        try:
            self.on_sample(sample)
        except Exception:
            self.stats["failed"] += 1
            log.exception("the telemetry callback failed")
            return None
        self.stats["samples"] += 1
        self.last = sample
        return sample

    def _run(self) -> None:
        next_at = time.monotonic()
        while True:
            next_at += self.period_s
            if self._stop.wait(max(0.0, next_at - time.monotonic())):
                return
            self.sample()
            next_at = max(next_at, time.monotonic() - self.period_s)
