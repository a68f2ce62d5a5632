"""A simulated gateway's hardware, wired the way a real one is.

:class:`HardwareRig` puts the simulators on one side (the van's GNSS on a loopback TCP
feed, its bus on a python-can virtual channel, the cellular modem as a proxy to the broker)
and the real receivers on the other (:mod:`edge.hardware`), so the agent reads simulated
hardware through exactly the code a real gateway runs::

    rig = HardwareRig(van, broker=BrokerAddress("127.0.0.1", 1883), coverage=zones)
    rig.start()                               # simulators and the modem
    agent = VehicleAgent(settings(broker=rig.broker), clock=rig.agent_clock)
    rig.attach(agent.telemetry)               # receivers and the sampling thread
    ...
    rig.stop()
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from edge.hardware import CanReader, GnssReceiver, HardwareReader
from firmware_sim.hardware.can_sim import CanSimulator
from firmware_sim.hardware.clock import DriftingClock
from firmware_sim.hardware.gnss_sim import GnssSimulator
from firmware_sim.hardware.modem import CoverageMap, ModemProxy
from firmware_sim.hardware.van import VanModel
from protocol import Telemetry
from sync import BrokerAddress

__all__ = ["HardwareRig"]

log = logging.getLogger(__name__)


class HardwareRig:
    """Simulated GNSS, CAN and modem under a van, and the real receivers above them."""

    def __init__(
        self,
        van: VanModel,
        *,
        broker: BrokerAddress | None,
        clock: Callable[[], float] = time.time,
        coverage: CoverageMap | None = None,
        period_s: float = 1.0,
        gnss_period_s: float | None = None,
        can_channel: str | None = None,
        clock_offset_s: float = 0.0,
        clock_skew_ppm: float = 0.0,
        garbage_every: int = 0,
    ) -> None:
        self.van = van
        self.clock = clock
        """True (simulated) time: what the world and the coverage map use."""
        self.agent_clock: Callable[[], float] = (
            DriftingClock(clock, offset_s=clock_offset_s, skew_ppm=clock_skew_ppm)
            if clock_offset_s or clock_skew_ppm
            else clock
        )
        """What the agent believes the time is (offset and skewed when asked)."""
        self.coverage = coverage or CoverageMap()
        self.period_s = period_s
        fix_period = gnss_period_s if gnss_period_s is not None else min(period_s, 1.0)
        self.gnss_sim = GnssSimulator(
            van.gnss_state, period_s=fix_period, garbage_every=garbage_every
        )
        self.can_channel = can_channel or f"wayline-{uuid.uuid4().hex[:8]}"
        self.can_sim = CanSimulator(
            van.can_signals, channel=self.can_channel, period_s=min(fix_period, 0.2)
        )
        self.modem: ModemProxy | None = None
        if broker is not None:
            self.modem = ModemProxy((broker.host, broker.port), online=self._covered)
        self.gnss: GnssReceiver | None = None
        self.can: CanReader | None = None
        self.reader: HardwareReader | None = None

    @property
    def broker(self) -> BrokerAddress | None:
        """Where the agent connects: the modem proxy, not the broker itself."""
        return BrokerAddress(*self.modem.address) if self.modem is not None else None

    def _covered(self) -> bool:
        return self.coverage.online(self.clock(), self.van.position)

    def start(self) -> None:
        """Start the simulated hardware (before the agent, which needs :attr:`broker`)."""
        self.gnss_sim.start()
        self.can_sim.start()
        if self.modem is not None:
            self.modem.start()

    def attach(self, on_sample: Callable[[Telemetry], None]) -> HardwareReader:
        """Start the real receivers and sample them into ``on_sample`` every period."""
        self.gnss = GnssReceiver(self.gnss_sim.address, reconnect_s=0.2)
        self.can = CanReader("virtual", self.can_channel)
        self.gnss.start()
        self.can.start()
        self.reader = HardwareReader(
            self.gnss,
            self.can,
            on_sample,
            period_s=self.period_s,
            clock=self.agent_clock,
            max_fix_age_s=max(5.0, 3 * self.period_s),
        )
        self.reader.start()
        return self.reader

    def stop(self) -> None:
        for part in (self.reader, self.gnss, self.can, self.modem, self.can_sim, self.gnss_sim):
            if part is None:
                continue
            try:
                part.stop()
            except Exception:
                log.warning("stopping %s failed", type(part).__name__, exc_info=True)

    def stats(self) -> dict[str, Any]:
        """Counters of every part, for the sim control API and the day's report."""
        agent_clock_error = self.agent_clock() - self.clock()
        return {
            "gnss": self.gnss.stats if self.gnss else None,
            "can": dict(self.can.stats) if self.can else None,
            "reader": dict(self.reader.stats) if self.reader else None,
            "modem": self.modem.stats() if self.modem else None,
            "clock_error_s": round(agent_clock_error, 3),
            "nmea_sent": self.gnss_sim.sent,
            "can_sent": self.can_sim.sent,
        }
