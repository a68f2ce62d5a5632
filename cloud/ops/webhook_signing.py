"""Webhook signatures: Standard Webhooks 1.0, and the ``Wayline-Signature`` scheme before it.

Standard Webhooks (https://www.standardwebhooks.com), what every delivery carries:

- ``webhook-id``: the delivery's id (``msg_…``), the same on every retry of it, so a
  receiver drops what it has already processed;
- ``webhook-timestamp``: this attempt's time in unix seconds;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` over ``"{id}.{timestamp}.{body}"``,
  several separated by spaces during a secret rotation.

A target's secret looks like ``whsec_<base64>``; the HMAC key is the base64-decoded part, so
a ready verifier (the ``standardwebhooks`` package, ``Webhook(secret).verify(body,
headers)``) takes it as it is. Targets registered before Wayline adopted the standard have a
plain secret whose key is its UTF-8 bytes, as it always was; :func:`standard_secret` gives
its ``whsec_`` form for such a verifier.

Kept for receivers written against the earlier scheme (Stripe's):
``Wayline-Signature: t=<unix seconds>,v1=<hex>``, HMAC-SHA256 with the same key over
``f"{t}."`` and the body, checked by :func:`verify`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

from cloud.ops.errors import SignatureError

__all__ = [
    "ID_HEADER_STD",
    "REPLAY_WINDOW_S",
    "SECRET_PREFIX",
    "SIGNATURE_HEADER",
    "SIGNATURE_HEADER_STD",
    "TIMESTAMP_HEADER_STD",
    "new_secret",
    "sign",
    "sign_standard",
    "signing_key",
    "standard_headers",
    "standard_secret",
    "verify",
    "verify_standard",
]

SIGNATURE_HEADER = "Wayline-Signature"
ID_HEADER_STD = "webhook-id"
TIMESTAMP_HEADER_STD = "webhook-timestamp"
SIGNATURE_HEADER_STD = "webhook-signature"
SECRET_PREFIX = "whsec_"
#: Seconds a signature's timestamp may differ from the receiver's clock.
REPLAY_WINDOW_S = 300
_SECRET_BYTES = 32  # the standard asks for 24 to 64 random bytes


def new_secret() -> str:
    """A new target's signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def signing_key(secret: str | bytes) -> bytes:
    """The HMAC key of a secret: a ``whsec_`` secret's decoded bytes, else its UTF-8 bytes."""
    if isinstance(secret, bytes):
        return secret
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("a whsec_ secret must be base64 after the prefix") from None
    return secret.encode()


def standard_secret(secret: str | bytes) -> str:
    """The ``whsec_`` form of a secret, for a Standard Webhooks verifier."""
    if isinstance(secret, str) and secret.startswith(SECRET_PREFIX):
        return secret
    return SECRET_PREFIX + base64.b64encode(signing_key(secret)).decode()


def sign_standard(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``webhook-signature`` entry: ``v1,<base64 HMAC-SHA256>``."""
    if "." in msg_id:
        raise ValueError(f"a webhook id must not contain '.': {msg_id!r}")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def standard_headers(
    secret: str | bytes, msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt, and ``Wayline-Signature``."""
    return {
        ID_HEADER_STD: msg_id,
        TIMESTAMP_HEADER_STD: str(timestamp),
        SIGNATURE_HEADER_STD: sign_standard(secret, msg_id, timestamp, body),
        SIGNATURE_HEADER: sign(secret, body, timestamp),
    }


def _check_window(timestamp: int, now: float | None, tolerance_s: float) -> None:
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(
            f"signature timestamp is {abs(now - timestamp):.0f} s from now, outside the "
            f"{tolerance_s:g} s window (a replay, or a skewed clock)"
        )


def verify_standard(
    secret: str | bytes,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    tolerance_s: float = REPLAY_WINDOW_S,
) -> str:
    """Check a received delivery's Standard Webhooks headers; return its ``webhook-id``.

    Raises :class:`SignatureError` for a missing header, a timestamp outside the window, or
    no ``v1`` signature that matches."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get(ID_HEADER_STD)
    stamp = lower.get(TIMESTAMP_HEADER_STD)
    signatures = lower.get(SIGNATURE_HEADER_STD)
    if not (msg_id and stamp and signatures):
        raise SignatureError(
            f"{ID_HEADER_STD}, {TIMESTAMP_HEADER_STD} and {SIGNATURE_HEADER_STD} are required"
        )
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER_STD}: {stamp!r} is not unix seconds") from None
    _check_window(timestamp, now, tolerance_s)
    expected = sign_standard(secret, msg_id, timestamp, body).encode()
    for candidate in signatures.split(" "):
        if candidate.startswith("v1,") and hmac.compare_digest(expected, candidate.encode()):
            return msg_id
    raise SignatureError("signature does not match the body (tampered, or a wrong secret)")


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The ``Wayline-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(signing_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str | bytes,
    body: bytes,
    header: str | None,
    *,
    now: float | None = None,
    tolerance_s: float = REPLAY_WINDOW_S,
) -> int:
    """Check a ``Wayline-Signature``; return its timestamp or raise :class:`SignatureError`."""
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError(
                    f"{SIGNATURE_HEADER}: t={value!r} is not a timestamp"
                ) from None
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError(f"{SIGNATURE_HEADER} must be 't=<seconds>,v1=<hex>'")
    _check_window(timestamp, now, tolerance_s)
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("signature does not match the body (tampered, or a wrong secret)")
    return timestamp
