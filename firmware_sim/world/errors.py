"""Errors of the simulated world::

WorldError            the simulated world cannot be built
└── ScenarioError     a scenario file that is missing, not TOML, or breaks the schema
                      (the message names the file, the table and the key)
"""

from __future__ import annotations

__all__ = ["ScenarioError", "WorldError"]


class WorldError(Exception):
    """Base of the errors of the simulated world."""


class ScenarioError(WorldError, ValueError):
    """A scenario file that cannot be used; the message says where and why."""
