"""The gateway's hardware, simulated beneath the real vehicle agent.

GNSS as NMEA over a loopback socket (:class:`GnssSimulator`), vehicle signals as CAN frames
on a python-can virtual bus (:class:`CanSimulator`), a cellular modem with coverage holes
and tunnels (:class:`ModemProxy`, :class:`CoverageMap`), a drifting clock
(:class:`DriftingClock`), the van itself (:class:`VanModel`, :class:`RouteFollower`), all
wired by :class:`HardwareRig`; power cuts and ignition-off on a gateway process
(:class:`GatewayProcess`); the ``/sim`` control API (:func:`sim_router`).
"""

from firmware_sim.hardware.can_sim import CanSimulator
from firmware_sim.hardware.clock import DriftingClock
from firmware_sim.hardware.control import sim_router
from firmware_sim.hardware.driving import RouteFollower
from firmware_sim.hardware.errors import GatewayProcessError, SimHardwareError, SimSocketError
from firmware_sim.hardware.gnss_sim import GnssSimulator, GnssState, nmea_sentences
from firmware_sim.hardware.modem import CoverageMap, DeadZone, ModemProxy, distance_km
from firmware_sim.hardware.power import GatewayProcess
from firmware_sim.hardware.rig import HardwareRig
from firmware_sim.hardware.van import VanModel

__all__ = [
    "CanSimulator",
    "CoverageMap",
    "DeadZone",
    "DriftingClock",
    "GatewayProcess",
    "GatewayProcessError",
    "GnssSimulator",
    "GnssState",
    "HardwareRig",
    "ModemProxy",
    "RouteFollower",
    "SimHardwareError",
    "SimSocketError",
    "VanModel",
    "distance_km",
    "nmea_sentences",
    "sim_router",
]
