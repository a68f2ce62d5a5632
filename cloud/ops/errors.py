"""Errors of Wayline's operations building blocks::

OpsError
├── PolicyError            a policy file that does not hold together (with its line)
├── ApprovalError          an approval request that cannot be carried out
│   ├── AlreadyDecidedError    a decision for an escalation someone already decided
│   └── UnknownOptionError     an override naming an option the escalation does not offer
├── DeliveryError          a message or webhook that did not get through (``retryable``)
├── SignatureError         a webhook signature that is missing, malformed, wrong or too old
├── AccessError            a caller that may not do what it asks
│   ├── AuthenticationError    no credentials, or credentials we do not accept (401)
│   └── ForbiddenError         valid credentials without the role or scope (403)
└── SettingsError          settings that are unsafe or incomplete for this environment
"""

from __future__ import annotations

__all__ = [
    "AccessError",
    "AlreadyDecidedError",
    "ApprovalError",
    "AuthenticationError",
    "DeliveryError",
    "ForbiddenError",
    "OpsError",
    "PolicyError",
    "SettingsError",
    "SignatureError",
    "UnknownOptionError",
]


class OpsError(Exception):
    """Base of every error the operations building blocks report to a caller."""

    status = 400


class PolicyError(OpsError):
    """A policy file that does not hold together; ``line`` is the line at fault (or None)."""

    status = 422

    def __init__(self, message: str, *, path: str = "<policy>", line: int | None = None):
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")
        self.message = message


class ApprovalError(OpsError):
    """An approval request that cannot be carried out."""

    status = 409


class AlreadyDecidedError(ApprovalError):
    """A decision for an escalation that someone already decided."""


class UnknownOptionError(ApprovalError):
    """An override naming an option the escalation does not offer."""

    status = 422


class DeliveryError(OpsError):
    """A message or webhook that did not get through; ``retryable`` if trying again may help."""

    status = 502

    def __init__(self, reason: str, *, retryable: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class SignatureError(OpsError):
    """A webhook signature that is missing, malformed, wrong or outside the replay window."""

    status = 401


class AccessError(OpsError):
    """A caller that may not do what it asks."""

    status = 403


class AuthenticationError(AccessError):
    """No credentials, or credentials Wayline does not accept."""

    status = 401


class ForbiddenError(AccessError):
    """Valid credentials without the role or the carrier scope the request needs."""

    status = 403


class SettingsError(OpsError):
    """Settings that are unsafe or incomplete for the environment they run in."""

    status = 500
