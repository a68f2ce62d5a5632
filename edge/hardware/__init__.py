"""The gateway's hardware as the vehicle agent reads it: GNSS and the vehicle's CAN bus.

:class:`HardwareSettings` names the inputs (a serial device, a TCP NMEA feed or gpsd for
GNSS; a python-can bus with the FMS profile's DBC or the OBD-II PID profile for CAN);
:class:`HardwareInputs` runs them for ``VehicleAgent``: :class:`GnssReceiver`,
:class:`CanReader` with a :class:`DbcDecoder` or :class:`ObdDecoder`, and the
:class:`HardwareReader` that joins both into ``protocol.Telemetry`` samples. The simulator
(:mod:`firmware_sim.hardware`) serves the same inputs — a pseudo-terminal, a TCP feed, a
gpsd, a shared CAN bus — and nothing else.

python-can, cantools and pyserial are loaded only when a bus or a serial device is used.
"""

from edge.hardware.canbus import (
    IGNORED,
    CanReader,
    CanSignals,
    CanSpec,
    FrameDecoder,
    open_bus,
    parse_can_spec,
)
from edge.hardware.dbc import DEFAULT_FMS_DBC, FMS_FIELDS, DbcDecoder, FieldSource, load_dbc
from edge.hardware.errors import CanBusError, DbcError, GnssSourceError, HardwareError
from edge.hardware.fix import Fix
from edge.hardware.gnss import FixParser, GnssReceiver, NmeaParser
from edge.hardware.gnss_sources import (
    DeviceSource,
    GnssSource,
    GpsdSource,
    LinesSource,
    TcpNmeaSource,
    parse_gnss_spec,
)
from edge.hardware.gpsd import GpsdParser
from edge.hardware.inputs import HardwareInputs
from edge.hardware.link import InputLink
from edge.hardware.obd import (
    PIDS,
    REPLY_IDS,
    REQUEST_ID,
    ObdDecoder,
    Pid,
    reply_frame,
    request_frame,
)
from edge.hardware.reader import FixSource, HardwareReader, SignalSource, build_sample
from edge.hardware.settings import HardwareSettings

__all__ = [
    "DEFAULT_FMS_DBC",
    "FMS_FIELDS",
    "IGNORED",
    "PIDS",
    "REPLY_IDS",
    "REQUEST_ID",
    "CanBusError",
    "CanReader",
    "CanSignals",
    "CanSpec",
    "DbcDecoder",
    "DbcError",
    "DeviceSource",
    "FieldSource",
    "Fix",
    "FixParser",
    "FixSource",
    "FrameDecoder",
    "GnssReceiver",
    "GnssSource",
    "GnssSourceError",
    "GpsdParser",
    "GpsdSource",
    "HardwareError",
    "HardwareInputs",
    "HardwareReader",
    "HardwareSettings",
    "InputLink",
    "LinesSource",
    "NmeaParser",
    "ObdDecoder",
    "Pid",
    "SignalSource",
    "TcpNmeaSource",
    "build_sample",
    "load_dbc",
    "open_bus",
    "parse_can_spec",
    "parse_gnss_spec",
    "reply_frame",
    "request_frame",
]
