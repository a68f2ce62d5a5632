"""The dashboard's login: password hashes and a signed session cookie.

Passwords are hashed with scrypt (:func:`hash_password`, :func:`check_password`). A session
is a cookie ``<payload>.<mac>``: base64url JSON (who, roles, carrier, issued at, a random
session id) and an HMAC-SHA256 of it with the session secret from the settings;
:meth:`SessionSigner.verify` refuses one that was tampered with or is older than
``max_age_s``. The coordinator also keeps each session id in its store
(:class:`cloud.api_access.Access`), so that a logout ends the session for good.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cloud.ops.access import Principal, Role, expand
from cloud.ops.errors import AuthenticationError, SettingsError

__all__ = ["DashboardUser", "SessionSigner", "check_password", "hash_password"]

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$<salt hex>$<hash hex>`` for ``password``."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` value."""
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


@dataclass(frozen=True)
class DashboardUser:
    """Someone who logs in to the dashboard."""

    name: str
    password_hash: str
    roles: tuple[Role, ...] = (Role.VIEWER,)
    carrier_id: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Issues and checks signed session cookies."""

    def __init__(self, secret: str, *, max_age_s: int = 12 * 3600):
        if not secret:
            raise SettingsError("the session secret is empty")
        self._key = hashlib.sha256(b"wayline-session\0" + secret.encode()).digest()
        self.max_age_s = max_age_s

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, principal: Principal, *, now: float | None = None) -> str:
        """A cookie value for ``principal``."""
        body = {
            "sub": principal.subject,
            "name": principal.name,
            "roles": sorted(principal.roles),
            "carrier_id": principal.carrier_id,
            "iat": int(time.time() if now is None else now),
            "sid": principal.session_id or secrets.token_urlsafe(16),
        }
        payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
        return f"{payload}.{self._mac(payload)}"

    def verify(self, value: str, *, now: float | None = None) -> Principal:
        """The principal in a cookie, or :class:`AuthenticationError`."""
        payload, _, mac = value.partition(".")
        if not payload or not mac or not hmac.compare_digest(mac, self._mac(payload)):
            raise AuthenticationError("session cookie is not valid; log in again")
        try:
            body = json.loads(_unb64(payload))
            issued = int(body["iat"])
            roles = expand(body["roles"])
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise AuthenticationError("session cookie is not valid; log in again") from exc
        age = (time.time() if now is None else now) - issued
        if age > self.max_age_s or age < -60:
            raise AuthenticationError("session expired; log in again")
        sid = body.get("sid")
        return Principal(
            body["sub"],
            body["name"],
            roles,
            body.get("carrier_id"),
            via="session",
            session_id=sid if isinstance(sid, str) else None,
        )

    def login(
        self,
        users: Mapping[str, DashboardUser] | Iterable[DashboardUser],
        name: str,
        password: str,
    ) -> str:
        """Check a dashboard login; the session cookie value, or :class:`AuthenticationError`."""
        table = users if isinstance(users, Mapping) else {u.name: u for u in users}
        user = table.get(name)
        stored = user.password_hash if user else hash_password("", salt=b"\0" * 16)
        if not check_password(password, stored) or user is None:
            raise AuthenticationError("wrong user name or password")
        principal = Principal(
            f"user:{user.name}", user.name, expand(user.roles), user.carrier_id, via="session"
        )
        return self.issue(principal)
