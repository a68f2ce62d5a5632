"""A simulated gateway's hardware, wired the way a real one is.

:class:`HardwareRig` puts the simulators under a van — its GNSS receiver on a serial line
(a pseudo-terminal), a TCP NMEA feed or a gpsd; its bus as FMS broadcasts or an OBD-II
ECU on a CAN bus another process can open; its cellular modem as a proxy to the broker —
and says where they are in a :class:`HardwareSettings`, the same settings a real gateway's
config file gives. The agent opens them itself, through exactly the code a real gateway
runs; the rig has no other way in::

    rig = HardwareRig(van, broker=BrokerAddress("127.0.0.1", 1883), coverage=zones)
    rig.start()                               # simulators and the modem
    agent = VehicleAgent(
        VehicleSettings(..., broker=rig.broker, hardware=rig.hardware_settings()),
        clock=rig.agent_clock,
    )
    agent.start()                             # opens the GNSS source and the CAN bus
    rig.observe(agent.hardware)               # the agent's counters in rig.stats()
    ...
    agent.stop(); rig.stop()
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from edge.hardware import DEFAULT_FMS_DBC, HardwareInputs, HardwareSettings
from firmware_sim.hardware.can_sim import CanSimulator, shared_bus_spec
from firmware_sim.hardware.clock import DriftingClock
from firmware_sim.hardware.gnss_sim import GnssSimulator
from firmware_sim.hardware.gpsd_sim import GpsdSimulator
from firmware_sim.hardware.modem import CoverageMap, ModemProxy
from firmware_sim.hardware.van import VanModel
from sync import BrokerAddress

__all__ = ["GnssVia", "HardwareRig"]

log = logging.getLogger(__name__)

GnssVia = Literal["pty", "tcp", "gpsd"]
RECONNECT_MIN_S = 0.2
RECONNECT_MAX_S = 2.0


class HardwareRig:
    """Simulated GNSS, CAN and modem under a van, and the settings that point at them."""

    def __init__(
        self,
        van: VanModel,
        *,
        broker: BrokerAddress | None,
        clock: Callable[[], float] = time.time,
        coverage: CoverageMap | None = None,
        period_s: float = 1.0,
        gnss_period_s: float | None = None,
        gnss_via: GnssVia = "pty",
        can_profile: Literal["fms", "obd2"] = "fms",
        dbc: Path = DEFAULT_FMS_DBC,
        workdir: Path | None = None,
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
        self.gnss_via = gnss_via
        self.can_profile = can_profile
        self.dbc = dbc
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="wayline-rig-"))
        fix_period = gnss_period_s if gnss_period_s is not None else min(period_s, 1.0)
        self.gnss_sim: GnssSimulator | None = None
        self.gpsd_sim: GpsdSimulator | None = None
        if gnss_via == "gpsd":
            self.gpsd_sim = GpsdSimulator(van.gnss_state, period_s=fix_period)
        else:
            link = self.workdir / "gnss-tty" if gnss_via == "pty" else None
            self.gnss_sim = GnssSimulator(
                van.gnss_state,
                period_s=fix_period,
                serial_link=link,
                garbage_every=garbage_every,
            )
        self.can_spec = shared_bus_spec()
        self.can_sim = CanSimulator(
            van.can_signals,
            bus=self.can_spec,
            profile=can_profile,
            dbc=dbc,
            period_s=min(fix_period, 0.2),
        )
        self.modem: ModemProxy | None = None
        if broker is not None:
            self.modem = ModemProxy((broker.host, broker.port), online=self._covered)
        self.inputs: HardwareInputs | None = None

    @property
    def broker(self) -> BrokerAddress | None:
        """Where the agent connects: the modem proxy, not the broker itself."""
        return BrokerAddress(*self.modem.address) if self.modem is not None else None

    @property
    def gnss_spec(self) -> str:
        """The GNSS source as a gateway's config names it."""
        if self.gpsd_sim is not None:
            return self.gpsd_sim.address
        assert self.gnss_sim is not None
        return self.gnss_sim.serial_address if self.gnss_via == "pty" else self.gnss_sim.address

    def hardware_settings(self) -> HardwareSettings:
        """What a real gateway's config would say to read this hardware."""
        return HardwareSettings(
            gnss=self.gnss_spec,
            can=self.can_spec,
            can_dbc=self.dbc if self.can_profile == "fms" else None,
            can_profile=self.can_profile,
            telemetry_interval_s=self.period_s,
            reconnect_min_s=RECONNECT_MIN_S,
            reconnect_max_s=RECONNECT_MAX_S,
        )

    def _covered(self) -> bool:
        return self.coverage.online(self.clock(), self.van.position)

    def start(self) -> None:
        """Start the simulated hardware (before the agent, which needs :attr:`broker`)."""
        if self.gnss_sim is not None:
            self.gnss_sim.start()
        if self.gpsd_sim is not None:
            self.gpsd_sim.start()
        self.can_sim.start()
        if self.modem is not None:
            self.modem.start()

    def observe(self, inputs: HardwareInputs) -> None:
        """Show the agent's hardware counters in :meth:`stats` (read only)."""
        self.inputs = inputs

    def stop(self) -> None:
        for part in (self.modem, self.can_sim, self.gpsd_sim, self.gnss_sim):
            if part is None:
                continue
            try:
                part.stop()
            except Exception:
                log.warning("stopping %s failed", type(part).__name__, exc_info=True)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def stats(self) -> dict[str, Any]:
        """Counters of every part, for the sim control API and the day's report."""
        agent_clock_error = self.agent_clock() - self.clock()
        inputs = self.inputs.stats() if self.inputs is not None else {}
        sent = self.gnss_sim.sent if self.gnss_sim is not None else 0
        return {
            "gnss": inputs.get("gnss"),
            "can": inputs.get("can"),
            "reader": inputs.get("reader"),
            "modem": self.modem.stats() if self.modem else None,
            "clock_error_s": round(agent_clock_error, 3),
            "gnss_via": self.gnss_via,
            "can_profile": self.can_profile,
            "nmea_sent": sent,
            "gpsd_sent": self.gpsd_sim.sent if self.gpsd_sim is not None else 0,
            "can_sent": self.can_sim.sent,
            "obd_answered": self.can_sim.answered,
        }
