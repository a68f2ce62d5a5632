"""Errors of the gateway's hardware interface::

EdgeError                  (edge.errors)
└── HardwareError          a receiver, bus or description the gateway cannot use
    ├── GnssSourceError    a GNSS source that cannot be opened or read (bad spec, no device,
    │                      refused port, device gone)
    ├── CanBusError        a CAN bus that cannot be opened, read or written (bad spec, no
    │                      interface, interface down)
    └── DbcError           a DBC file that cannot be read or parsed

A bad sentence or a bad frame is never an error: it is counted and skipped.
"""

from __future__ import annotations

from edge.errors import EdgeError

__all__ = ["CanBusError", "DbcError", "GnssSourceError", "HardwareError"]


class HardwareError(EdgeError):
    """Base of the errors of the gateway's receivers and vehicle bus."""

    status = 503


class GnssSourceError(HardwareError):
    """The GNSS source cannot be used: a bad spec, a missing device, a refused port, a drop."""


class CanBusError(HardwareError):
    """The CAN bus cannot be opened, read or written, or its spec does not parse."""


class DbcError(HardwareError):
    """The DBC file the CAN frames decode with is missing or does not parse."""
