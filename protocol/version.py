"""Schema versions: ``MAJOR.MINOR`` in every envelope's ``v``.

A minor version only adds optional fields, so a receiver accepts any minor of its own major:
fields newer than it knows are dropped before validation. A different major is refused with
a reason that names both versions.
"""

from __future__ import annotations

import re

from protocol.errors import VersionError

__all__ = ["MAJOR", "MINOR", "SCHEMA_VERSION", "parse_version"]

MAJOR = 1
MINOR = 0
SCHEMA_VERSION = f"{MAJOR}.{MINOR}"

_VERSION = re.compile(r"([0-9]{1,4})\.([0-9]{1,4})")


def parse_version(v: object) -> tuple[int, int]:
    """Return ``(major, minor)`` of a version this receiver can read, or raise VersionError."""
    if not isinstance(v, str) or not (m := _VERSION.fullmatch(v)):
        raise VersionError(f"schema version must look like '1.0', got {v!r:.40}")
    major, minor = int(m.group(1)), int(m.group(2))
    if major != MAJOR:
        raise VersionError(
            f"schema version {v} is not supported: this receiver speaks {MAJOR}.x "
            f"(up to {SCHEMA_VERSION})"
        )
    return major, minor
