"""API tokens, roles and the carrier scope; a FastAPI dependency that enforces them.

Tokens look like ``wl_<id>_<secret>``: the id finds the stored record, the secret is
checked against a salted HMAC-SHA256 digest (plus an optional server-side pepper from the
settings); the secret itself is never stored. Roles:

- ``ops``: everything, including approving escalations (implies ``viewer``);
- ``viewer``: read-only dashboards and API;
- ``integration``: other systems (OMS/ERP/TMS) creating orders and reading their state;
- ``carrier``: a 3PL or gig platform; the token is bound to one carrier id and sees only
  that carrier's resources (:func:`ensure_carrier_access`, :func:`visible_to`).

:func:`require` builds the FastAPI dependency: it returns the :class:`Principal` or answers
401 (no or bad credentials) or 403 (no role for this) with a message that says which.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol, TypeVar

from fastapi import HTTPException, Request

from cloud.ops.errors import AccessError, AuthenticationError, ForbiddenError

__all__ = [
    "Principal",
    "Role",
    "SessionVerifier",
    "StoredToken",
    "TokenStore",
    "ensure_carrier_access",
    "require",
    "visible_to",
]

T = TypeVar("T")
TOKEN_PREFIX = "wl"


class Role(StrEnum):
    """What a caller may do."""

    OPS = "ops"
    VIEWER = "viewer"
    INTEGRATION = "integration"
    CARRIER = "carrier"


#: Roles a role carries with it.
IMPLIED: dict[Role, frozenset[Role]] = {Role.OPS: frozenset({Role.VIEWER})}


def expand(roles: Iterable[Role | str]) -> frozenset[Role]:
    """The roles with those they imply."""
    base = {Role(r) for r in roles}
    return frozenset(base.union(*(IMPLIED.get(r, frozenset()) for r in base)))


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token or a dashboard session, with roles and maybe a carrier."""

    subject: str
    name: str
    roles: frozenset[Role]
    carrier_id: str | None = None
    via: str = "token"
    session_id: str | None = None
    """The dashboard session a cookie names (None for a token)."""


@dataclass(frozen=True)
class StoredToken:
    """A token as stored: never the secret, only its salted digest."""

    token_id: str
    name: str
    roles: tuple[Role, ...]
    salt: str
    digest: str
    carrier_id: str | None = None
    created_ms: int = 0
    revoked: bool = False


def _check_roles(roles: tuple[Role, ...], carrier_id: str | None) -> None:
    if not roles:
        raise AccessError("a token needs at least one role")
    if Role.CARRIER in roles and not carrier_id:
        raise AccessError("a carrier token must be bound to a carrier id")
    if carrier_id and roles != (Role.CARRIER,):
        raise AccessError("a token bound to a carrier may have the carrier role only")


class TokenStore:
    """Issues, checks and revokes API tokens; ``records()`` is what to persist."""

    def __init__(self, records: Iterable[StoredToken] = (), *, pepper: str | bytes = b""):
        self._pepper = pepper.encode() if isinstance(pepper, str) else pepper
        self._records = {r.token_id: r for r in records}
        self._lock = threading.Lock()

    def _digest(self, salt: str, secret: str) -> str:
        key = bytes.fromhex(salt) + self._pepper
        return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()

    def issue(
        self, name: str, roles: Iterable[Role | str], *, carrier_id: str | None = None
    ) -> tuple[str, StoredToken]:
        """A new token: the clear text (show it once) and the record to store."""
        wanted = tuple(sorted({Role(r) for r in roles}))
        _check_roles(wanted, carrier_id)
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        record = StoredToken(
            token_id=token_id,
            name=name,
            roles=wanted,
            salt=salt,
            digest=self._digest(salt, secret),
            carrier_id=carrier_id,
            created_ms=int(time.time() * 1000),
        )
        with self._lock:
            self._records[token_id] = record
        return f"{TOKEN_PREFIX}_{token_id}_{secret}", record

    def authenticate(self, token: str) -> Principal:
        """The principal of a clear-text token, or :class:`AuthenticationError`."""
        prefix, _, rest = token.strip().partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != TOKEN_PREFIX or not token_id or not secret:
            raise AuthenticationError("not a Wayline API token (expected wl_<id>_<secret>)")
        with self._lock:
            record = self._records.get(token_id)
        if record is None or not hmac.compare_digest(
            record.digest, self._digest(record.salt, secret)
        ):
            raise AuthenticationError("unknown or wrong API token")
        if record.revoked:
            raise AuthenticationError(f"API token {record.token_id} ({record.name}) was revoked")
        return Principal(record.token_id, record.name, expand(record.roles), record.carrier_id)

    def revoke(self, token_id: str) -> None:
        with self._lock:
            record = self._records.get(token_id)
            if record is None:
                raise AuthenticationError(f"no API token {token_id}")
            self._records[token_id] = replace(record, revoked=True)

    def records(self) -> list[StoredToken]:
        with self._lock:
            return list(self._records.values())


def ensure_carrier_access(principal: Principal, resource_carrier_id: str | None) -> None:
    """Refuse a carrier-scoped principal a resource of another carrier (or of none)."""
    if principal.carrier_id is None:
        return
    if resource_carrier_id != principal.carrier_id:
        raise ForbiddenError(
            f"{principal.name} is scoped to carrier {principal.carrier_id}; "
            "this resource belongs to another carrier"
        )


def visible_to(
    principal: Principal, items: Iterable[T], carrier_of: Callable[[T], str | None]
) -> list[T]:
    """The items a principal may see: all, or only its carrier's for a carrier token."""
    if principal.carrier_id is None:
        return list(items)
    return [item for item in items if carrier_of(item) == principal.carrier_id]


class SessionVerifier(Protocol):
    """Turns a session cookie into a principal (:class:`cloud.ops.sessions.SessionSigner`)."""

    def verify(self, value: str) -> Principal: ...


def require(
    *roles: Role | str,
    tokens: TokenStore,
    sessions: SessionVerifier | None = None,
    cookie_name: str = "wayline_session",
) -> Callable[[Request], Principal]:
    """A FastAPI dependency: the caller's :class:`Principal` if it has one of ``roles``.

    Credentials: ``Authorization: Bearer <token>``, or the dashboard's session cookie when a
    ``sessions`` signer (:class:`cloud.ops.sessions.SessionSigner`) is given. No role listed
    means any authenticated caller.
    """
    needed = frozenset(Role(r) for r in roles)

    def dependency(request: Request) -> Principal:
        try:
            principal = _authenticate(request, tokens, sessions, cookie_name)
        except AuthenticationError as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        if needed and not principal.roles & needed:
            have = ", ".join(sorted(principal.roles)) or "none"
            want = ", ".join(sorted(needed))
            raise HTTPException(
                403, f"{principal.name} has roles [{have}]; this needs one of [{want}]"
            )
        return principal

    return dependency


def _authenticate(
    request: Request, tokens: TokenStore, sessions: SessionVerifier | None, cookie_name: str
) -> Principal:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("use 'Authorization: Bearer <token>'")
        return tokens.authenticate(token)
    cookie = request.cookies.get(cookie_name)
    if sessions is not None and cookie:
        return sessions.verify(cookie)
    raise AuthenticationError("no credentials: send 'Authorization: Bearer <token>' or log in")
