"""Errors of the edge agents; each is a clear answer to a caller (the tablet, the terminal)::

EdgeError
├── UnknownStopError       a stop id that is not on this vehicle's route
├── StopFinalError         a stop already delivered, failed, picked up or skipped
├── NoRouteError           no route plan has arrived yet
├── ProofError             proof of delivery that cannot be accepted (photo too big, not an image)
├── SettingsError          settings that make no sense (bad id, bad address)
├── BarcodeError           a depot scan that is not a barcode (junk characters, empty)
├── UnknownVehicleError    a vehicle no route plan at this depot names
└── ReleaseError           a load release refused (parcels missing, already released)
"""

from __future__ import annotations

__all__ = [
    "BarcodeError",
    "EdgeError",
    "InputError",
    "NoRouteError",
    "ProofError",
    "ReleaseError",
    "SettingsError",
    "StopFinalError",
    "UnknownStopError",
    "UnknownVehicleError",
]


class EdgeError(Exception):
    """Base of every error an edge agent reports to its caller."""

    status = 400


class UnknownStopError(EdgeError):
    """The stop id is not on this vehicle's current route."""

    status = 404


class StopFinalError(EdgeError):
    """The stop already has a final outcome; field facts do not change."""

    status = 409


class NoRouteError(EdgeError):
    """No route plan has reached this vehicle yet."""

    status = 409


class ProofError(EdgeError):
    """Proof of delivery that cannot be stored: a photo too large or not an image."""

    status = 422


class InputError(EdgeError):
    """A request whose fields do not fit the protocol (an unknown reason, a too-long note)."""

    status = 422


class SettingsError(EdgeError):
    """Agent settings that cannot work."""


class BarcodeError(EdgeError):
    """A depot scan that is no barcode: empty, too long, or with characters none carries."""

    status = 422


class UnknownVehicleError(EdgeError):
    """A vehicle that no route plan at this depot names."""

    status = 404


class ReleaseError(EdgeError):
    """A load release refused: parcels still missing (without force) or already released."""

    status = 409
