"""What a keyboard-wedge scanner types, made into a barcode or a container label.

A scanner types the code followed by Enter or Tab, sometimes with a prefix or suffix
(STX/ETX, a GS1 group separator, spaces). Those are stripped; what is left must be a plain
code (letters, digits and ``- . _ / : +``, at most 64), anything else is refused with a
message the operator can act on. Lookups are case-insensitive (:func:`key`): a scanner with
caps lock on still finds the parcel.

A container label reads ``C:{vehicle}:{container}`` (printed on the bag, cage or shelf);
scanning it right after a parcel confirms where the parcel went.
"""

from __future__ import annotations

import re
import unicodedata

from edge.errors import BarcodeError

__all__ = ["container_label", "key", "normalise", "parse_container_label"]

_ALLOWED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+-]{0,63}$")
_LABEL = re.compile(r"^C:([A-Za-z0-9][A-Za-z0-9_.-]{0,63}):([A-Za-z0-9][A-Za-z0-9_.-]{0,31})$")


def normalise(raw: str) -> str:
    """The barcode in ``raw`` with whitespace and control characters removed.

    Raises BarcodeError (with what was wrong) for an empty read or other characters.
    """
    if not isinstance(raw, str):
        raise BarcodeError("the scan must be text")
    cleaned = "".join(
        ch for ch in raw if not (ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf"))
    )
    if not cleaned:
        raise BarcodeError("empty scan: nothing but spaces or control characters was read")
    if len(cleaned) > 64:
        raise BarcodeError(f"not a parcel barcode: {len(cleaned)} characters (at most 64)")
    if not _ALLOWED.match(cleaned):
        bad = sorted({ch for ch in cleaned if not re.match(r"[A-Za-z0-9._:/+-]", ch)})
        shown = " ".join(repr(ch) for ch in bad[:5]) or repr(cleaned[:1])
        raise BarcodeError(
            f"not a parcel barcode: {cleaned[:40]!r} has {shown}; scan the label again "
            "or type the code printed under it"
        )
    return cleaned


def key(barcode: str) -> str:
    """The lookup key of a barcode: case does not matter."""
    return barcode.upper()


def container_label(vehicle_id: str, container: str) -> str:
    """The code printed on a container's label."""
    return f"C:{vehicle_id}:{container}"


def parse_container_label(code: str) -> tuple[str, str] | None:
    """(vehicle, container) when ``code`` is a container label, else None."""
    m = _LABEL.match(code)
    if m is None:
        return None
    return m.group(1), m.group(2)
