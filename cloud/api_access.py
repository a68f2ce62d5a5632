"""Who may call the coordinator's API and dashboard: tokens, sessions, roles, carrier scope.

API tokens (:class:`cloud.ops.TokenStore`) are kept in the coordinator's store as salted
digests, never the secret. The dashboard logs people in with a password (scrypt) and a
signed session cookie (:class:`cloud.ops.SessionSigner`); users come from the store
(``wayline admin create-user``) and the settings, read when the coordinator starts. Roles:
``ops`` (everything, approving included), ``viewer`` (read only), ``integration`` (orders in,
state out, webhooks), ``carrier`` (one carrier's own orders only).

With ``WAYLINE_ENV=development`` and ``open_in_development``, a request with no
credentials at all acts as a development operator, so local tools and the demo keep working;
any credentials sent are still checked. Outside development there is no such bypass.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import HTTPException, Request

from cloud.ops import (
    AuthenticationError,
    DashboardUser,
    OpsSettings,
    Principal,
    Role,
    SessionSigner,
    StoredToken,
    TokenStore,
    hash_password,
    require,
)
from cloud.store import CloudStore

__all__ = ["COOKIE", "DEV_USER", "Access"]

log = logging.getLogger(__name__)

COOKIE = "wayline_session"
DEV_USER = ("ops", "wayline-dev")
"""The dashboard login that exists only in development when no users are configured."""

_DEV_PRINCIPAL = Principal(
    "development",
    "development (no credentials)",
    frozenset({Role.OPS, Role.VIEWER, Role.INTEGRATION}),
    via="development",
)
_CARRIER_PATHS = (
    ("GET", re.compile(r"^/v1/orders/(?P<order_id>[^/]+)$")),
    ("POST", re.compile(r"^/v1/orders/(?P<order_id>[^/]+)/outcome$")),
)


class Access:
    """Tokens, dashboard users and sessions, and the FastAPI dependencies that check them."""

    def __init__(
        self,
        db: CloudStore,
        settings: OpsSettings,
        users: Iterable[DashboardUser] = (),
        *,
        open_in_development: bool = True,
    ) -> None:
        self.db = db
        self.settings = settings
        self.development = settings.env == "development"
        self.open = self.development and open_in_development
        records = [
            StoredToken(
                token_id=r["token_id"],
                name=r["name"],
                roles=tuple(Role(x) for x in r["roles"].split(",")),
                salt=r["salt"],
                digest=r["digest"],
                carrier_id=r["carrier_id"],
                created_ms=r["created_ms"],
                revoked=bool(r["revoked"]),
            )
            for r in db.tokens()
        ]
        self.tokens = TokenStore(records, pepper=settings.token_pepper)
        self.sessions = SessionSigner(settings.session_secret, max_age_s=settings.session_max_age_s)
        stored = [
            DashboardUser(
                r["name"],
                r["password_hash"],
                tuple(Role(x) for x in r["roles"].split(",")),
                r["carrier_id"],
            )
            for r in db.dashboard_users()
        ]
        self.users = {u.name: u for u in (*stored, *users)}
        if not self.users and self.development:
            name, password = DEV_USER
            self.users[name] = DashboardUser(name, hash_password(password), (Role.OPS,))
            log.warning("development: dashboard login %r with the development password", name)

    # -- tokens ----------------------------------------------------------------------------

    def issue(
        self, name: str, roles: Iterable[Role | str], *, carrier_id: str | None = None
    ) -> tuple[str, StoredToken]:
        """A new API token (clear text shown once) and its stored record."""
        clear, record = self.tokens.issue(name, roles, carrier_id=carrier_id)
        self._save(record)
        return clear, record

    def revoke(self, token_id: str) -> None:
        self.tokens.revoke(token_id)
        for record in self.tokens.records():
            if record.token_id == token_id:
                self._save(record)

    def _save(self, r: StoredToken) -> None:
        with self.db.store.transaction() as conn:
            self.db.put_token(
                conn,
                {
                    "token_id": r.token_id,
                    "name": r.name,
                    "roles": ",".join(r.roles),
                    "salt": r.salt,
                    "digest": r.digest,
                    "carrier_id": r.carrier_id,
                    "created_ms": r.created_ms,
                    "revoked": int(r.revoked),
                },
            )

    # -- dashboard -------------------------------------------------------------------------

    def login(self, name: str, password: str) -> str:
        """The session cookie value for a good login, or :class:`AuthenticationError`."""
        return self.sessions.login(self.users, name, password)

    def session(self, request: Request) -> Principal | None:
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return None
        try:
            return self.sessions.verify(cookie)
        except AuthenticationError:
            return None

    # -- dependencies ----------------------------------------------------------------------

    def need(self, *roles: Role | str) -> Callable[[Request], Principal]:
        """A dependency: the caller, if it has one of ``roles`` (any role when none given)."""
        check = require(*roles, tokens=self.tokens, sessions=self.sessions, cookie_name=COOKIE)

        def dependency(request: Request) -> Principal:
            anonymous = "authorization" not in request.headers and COOKIE not in request.cookies
            if anonymous and self.open:
                return _DEV_PRINCIPAL
            return check(request)

        return dependency

    def guard_existing(self) -> Callable[[Request], Principal]:
        """The dependency for the network/orders/planning API that predates roles.

        Reading needs ``viewer``, ``integration`` or ``ops``; order writes ``integration`` or
        ``ops``; everything else ``ops``. A carrier token may read only its own orders
        (``GET /v1/orders/{id}``) and report their outcome; see ``/v1/carrier/orders``.
        """
        anyone = self.need()

        def dependency(request: Request) -> Principal:
            p = anyone(request)
            method, path = request.method, request.url.path
            if p.carrier_id is not None or p.roles == {Role.CARRIER}:
                for verb, pattern in _CARRIER_PATHS:
                    m = pattern.match(path)
                    if m and method == verb:
                        self.check_carrier(p, m.group("order_id"))
                        return p
                raise HTTPException(
                    403, f"{p.name} is a carrier token: use GET /v1/carrier/orders for its orders"
                )
            if method in ("GET", "HEAD"):
                wanted = {Role.VIEWER, Role.INTEGRATION, Role.OPS}
            elif path.startswith("/v1/orders"):
                wanted = {Role.INTEGRATION, Role.OPS}
            else:
                wanted = {Role.OPS}
            if not p.roles & wanted:
                have = ", ".join(sorted(p.roles)) or "none"
                raise HTTPException(
                    403,
                    f"{p.name} has roles [{have}]; {method} {path} needs one of "
                    f"[{', '.join(sorted(wanted))}]",
                )
            return p

        return dependency

    def check_carrier(self, p: Principal, order_id: str) -> None:
        """403 unless a carrier principal's carrier serves ``order_id``."""
        if p.carrier_id is None:
            return
        if self.db.carrier_of(order_id) != p.carrier_id:
            raise HTTPException(
                403,
                f"{p.name} is scoped to carrier {p.carrier_id}; order {order_id} is not "
                "one of its orders",
            )

    def describe(self, p: Principal) -> dict[str, Any]:
        return {"name": p.name, "roles": sorted(p.roles), "carrier_id": p.carrier_id, "via": p.via}
