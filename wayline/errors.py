"""The command line's own error: a setting that cannot be used.

Kept apart from :mod:`wayline.settings` (which loads pydantic-settings) so that the command
line can catch it without loading anything.
"""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """A setting that cannot be used; the message is one line naming it and its source.

    The command exits 2 on it, before any agent, store or connection is started."""
