"""Errors of the cloud coordinator::

CloudError
├── NotFoundError      an id the coordinator does not know
├── ConflictError      a write that would go back on what is stored (an older plan version)
└── InvalidError       a request that does not hold together
"""

from __future__ import annotations

__all__ = ["CloudError", "ConflictError", "InvalidError", "NotFoundError"]


class CloudError(Exception):
    """Base of every error the coordinator reports to a caller."""

    status = 400


class NotFoundError(CloudError):
    """An id the coordinator does not know."""

    status = 404


class ConflictError(CloudError):
    """A write that would go back on what is stored."""

    status = 409


class InvalidError(CloudError):
    """A request that does not hold together."""

    status = 422
