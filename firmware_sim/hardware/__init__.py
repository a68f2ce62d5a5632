"""The gateway's hardware, simulated beneath the real vehicle agent.

GNSS as NMEA on a pseudo-terminal serial line (:class:`PtySerialPort`) or a loopback TCP
feed (:class:`GnssSimulator`), or as gpsd's JSON (:class:`GpsdSimulator`); vehicle signals
as FMS frames encoded with the DBC, or as an OBD-II ECU's answers, on a CAN bus another
process can open (:class:`CanSimulator`, :func:`shared_bus_spec`); a cellular modem with
coverage holes and tunnels (:class:`ModemProxy`, :class:`CoverageMap`); a drifting clock
(:class:`DriftingClock`); the van itself (:class:`VanModel`, :class:`RouteFollower`). All
wired by :class:`HardwareRig`, which hands the agent only the ``HardwareSettings`` naming
them. Power cuts and ignition-off on a gateway process (:class:`GatewayProcess`); the
``/sim`` control API (:func:`sim_router`).
"""

from firmware_sim.hardware.can_sim import CanSimulator, fms_values, shared_bus_spec
from firmware_sim.hardware.clock import DriftingClock
from firmware_sim.hardware.control import sim_router
from firmware_sim.hardware.driving import RouteFollower
from firmware_sim.hardware.errors import GatewayProcessError, SimHardwareError, SimSocketError
from firmware_sim.hardware.gnss_sim import GnssSimulator, GnssState, nmea_sentences
from firmware_sim.hardware.gpsd_sim import GpsdSimulator, tpv_report
from firmware_sim.hardware.modem import CoverageMap, DeadZone, ModemProxy, distance_km
from firmware_sim.hardware.power import GatewayProcess
from firmware_sim.hardware.rig import GnssVia, HardwareRig
from firmware_sim.hardware.serial_port import PtySerialPort
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
    "GnssVia",
    "GpsdSimulator",
    "HardwareRig",
    "ModemProxy",
    "PtySerialPort",
    "RouteFollower",
    "SimHardwareError",
    "SimSocketError",
    "VanModel",
    "distance_km",
    "fms_values",
    "nmea_sentences",
    "shared_bus_spec",
    "sim_router",
    "tpv_report",
]
