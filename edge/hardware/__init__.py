"""The gateway's hardware as the vehicle agent reads it: GNSS over NMEA, signals over CAN.

A real gateway points :class:`GnssReceiver` at its receiver (a serial device or gpsd's raw
NMEA port) and :class:`CanReader` at SocketCAN; the simulator serves the same sentences and
frames from :mod:`firmware_sim.hardware`. :class:`HardwareReader` joins both into
``protocol.Telemetry`` samples for ``VehicleAgent.telemetry``.
"""

from edge.hardware.canbus import (
    BODY_ID,
    CARGO_TEMP_ID,
    ENERGY_ID,
    FRAME_IDS,
    ODOMETER_ID,
    SPEED_ID,
    CanReader,
    CanSignals,
    decode_frame,
    encode_frames,
    open_bus,
)
from edge.hardware.errors import CanBusError, GnssSourceError, HardwareError
from edge.hardware.gnss import Fix, GnssReceiver, NmeaParser, open_line_source
from edge.hardware.reader import FixSource, HardwareReader, SignalSource, build_sample

__all__ = [
    "BODY_ID",
    "CARGO_TEMP_ID",
    "ENERGY_ID",
    "FRAME_IDS",
    "ODOMETER_ID",
    "SPEED_ID",
    "CanBusError",
    "CanReader",
    "CanSignals",
    "Fix",
    "FixSource",
    "GnssReceiver",
    "GnssSourceError",
    "HardwareError",
    "HardwareReader",
    "NmeaParser",
    "SignalSource",
    "build_sample",
    "decode_frame",
    "encode_frames",
    "open_bus",
    "open_line_source",
]
