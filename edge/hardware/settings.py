"""Where a gateway's hardware is: the GNSS source, the CAN bus and how its frames decode.

Built once by the entry point from ``wayline vehicle``'s settings and handed to the vehicle
agent inside ``VehicleSettings.hardware``. Every field may be left out: a gateway without a
GNSS source or a CAN bus still runs its shift, it only sends no telemetry of that kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["HardwareSettings"]


@dataclass(frozen=True, slots=True)
class HardwareSettings:
    """The gateway's inputs, as source strings the operator writes in the config file."""

    gnss: str | None = None
    """NMEA source: ``serial:///dev/ttyACM0?baud=9600``, ``tcp://HOST:PORT`` (raw NMEA) or
    ``gpsd://HOST:PORT`` (gpsd's JSON watch); None: no GNSS."""
    can: str | None = None
    """python-can bus as ``INTERFACE:CHANNEL``, e.g. ``socketcan:can0``; None: no CAN."""
    can_dbc: Path | None = None
    """DBC file the frames decode with (the FMS profile's default is shipped in deploy/)."""
    can_profile: Literal["fms", "obd2"] = "fms"
    """``fms``: FMS-standard J1939 broadcast signals (trucks); ``obd2``: OBD-II PID requests
    on the diagnostic ids (vans where no DBC applies)."""
    telemetry_interval_s: float = 1.0
    """How often a telemetry sample is built from the latest fix and signals."""
