"""Errors of the cloud planning engine.

Hierarchy::

    PlanningError                 base of everything this package raises
    ├── InvalidProblem            the problem data is inconsistent (sizes, ids, indices)
    └── InvalidParams             the planning parameters are out of range

An order that cannot be served (impossible window, no capacity, no skilled vehicle) is not
an error: it is reported in the result's ``unplanned`` list with its reason. A solver that
finds nothing in time is not an error either: the result's status says ``no_solution``.
"""

from __future__ import annotations

__all__ = ["InvalidParams", "InvalidProblem", "PlanningError"]


class PlanningError(ValueError):
    """Base of the errors raised by ``cloud.planning``."""


class InvalidProblem(PlanningError):
    """The planning problem is malformed: negative size, duplicate id, unknown index."""


class InvalidParams(PlanningError):
    """A planning parameter is out of range or unknown."""
