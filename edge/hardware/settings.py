"""Where a gateway's hardware is: the GNSS source, the CAN bus and how its frames decode.

Built once by the entry point from ``wayline vehicle``'s settings and handed to the vehicle
agent inside ``VehicleSettings.hardware``. Every field may be left out: a gateway without a
GNSS source or a CAN bus still runs its shift; telemetry needs both (see
:mod:`edge.hardware.inputs`). The source strings are checked here, so a typo is one clear
line naming the setting before anything starts; a device that is missing, or a DBC that
does not parse, is the running agent's business (retried, or logged and left out).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge.errors import SettingsError
from edge.hardware.errors import HardwareError

__all__ = ["HardwareSettings"]

PROFILES = ("fms", "obd2")


@dataclass(frozen=True, slots=True)
class HardwareSettings:
    """The gateway's inputs, as source strings the operator writes in the config file.

    A refused value raises :class:`SettingsError` as ``hardware.FIELD: what is wrong``.
    """

    gnss: str | None = None
    """GNSS source: ``serial:///dev/ttyACM0?baud=9600`` or a plain device path (NMEA over
    a serial line), ``tcp://HOST:PORT`` (raw NMEA) or ``gpsd://HOST[:PORT]`` (gpsd's JSON
    watch); None: no GNSS."""
    can: str | None = None
    """python-can bus as ``INTERFACE:CHANNEL[?OPTION=VALUE&...]``, e.g. ``socketcan:can0``;
    None: no CAN."""
    can_dbc: Path | None = None
    """DBC file the frames decode with in the ``fms`` profile; None: ``deploy/fms.dbc``."""
    can_profile: Literal["fms", "obd2"] = "fms"
    """``fms``: FMS-standard J1939 broadcast signals (trucks); ``obd2``: OBD-II PID requests
    on the diagnostic ids (vans where no DBC applies)."""
    telemetry_interval_s: float = 1.0
    """How often a telemetry sample is built from the latest fix and signals (and, in the
    ``obd2`` profile, how often the PIDs are asked for)."""
    reconnect_min_s: float = 1.0
    """First wait before reopening a GNSS source or CAN bus that failed or went away."""
    reconnect_max_s: float = 30.0
    """The wait doubles after each failed attempt up to this."""

    def __post_init__(self) -> None:
        from edge.hardware.canbus import parse_can_spec
        from edge.hardware.gnss_sources import parse_gnss_spec

        try:
            if self.gnss is not None:
                parse_gnss_spec(self.gnss)
        except HardwareError as exc:
            raise SettingsError(f"hardware.gnss: {exc}") from None
        try:
            if self.can is not None:
                parse_can_spec(self.can)
        except HardwareError as exc:
            raise SettingsError(f"hardware.can: {exc}") from None
        if self.can_profile not in PROFILES:
            raise SettingsError(
                f"hardware.can_profile: {self.can_profile!r} is not one of {', '.join(PROFILES)}"
            )
        if not 0.05 <= self.telemetry_interval_s <= 3600:
            raise SettingsError("hardware.telemetry_interval_s: must be between 0.05 and 3600 s")
        if not 0 < self.reconnect_min_s <= 3600:
            raise SettingsError("hardware.reconnect_min_s: must be above 0 and at most 3600 s")
        if not self.reconnect_min_s <= self.reconnect_max_s <= 3600:
            raise SettingsError(
                "hardware.reconnect_max_s: must be at least reconnect_min_s and at most 3600 s"
            )
