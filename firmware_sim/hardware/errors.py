"""Errors of the simulated gateway hardware::

SimHardwareError         a simulated receiver, bus, modem or gateway process that cannot run
├── SimSocketError       a simulator cannot listen on its loopback port
└── GatewayProcessError  a simulated gateway process did not start or answer
"""

from __future__ import annotations

__all__ = ["GatewayProcessError", "SimHardwareError", "SimSocketError"]


class SimHardwareError(Exception):
    """Base of the errors of the simulated hardware."""


class SimSocketError(SimHardwareError):
    """A simulator (GNSS feed, modem proxy) cannot listen on its loopback port."""


class GatewayProcessError(SimHardwareError):
    """A simulated gateway process did not start, or exited, or did not answer."""
