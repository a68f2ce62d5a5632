"""Errors of the gateway's hardware interface::

EdgeError                  (edge.errors)
└── HardwareError          a receiver or bus the gateway cannot use
    ├── GnssSourceError    an NMEA line source that cannot be opened (bad spec, no device)
    └── CanBusError        a CAN bus that cannot be opened or written

A bad sentence or a bad frame is never an error: it is counted and skipped.
"""

from __future__ import annotations

from edge.errors import EdgeError

__all__ = ["CanBusError", "GnssSourceError", "HardwareError"]


class HardwareError(EdgeError):
    """Base of the errors of the gateway's receivers and vehicle bus."""

    status = 503


class GnssSourceError(HardwareError):
    """The NMEA line source cannot be opened: a bad spec, a missing device, a refused port."""


class CanBusError(HardwareError):
    """The CAN bus cannot be opened or a frame cannot be sent on it."""
