"""Who may call the coordinator's API and dashboard: tokens, sessions, roles, carrier scope.

API tokens (:class:`cloud.ops.TokenStore`) are kept in the coordinator's store as salted
digests, never the secret. The dashboard logs people in with a password (scrypt) and a
signed session cookie (:class:`cloud.ops.SessionSigner`) whose session id is also kept in the
store (``dashboard_sessions``): a cookie is taken only while its session is there, unexpired
and not logged out, so a cookie copied before a logout is refused after it. Failed logins
are counted per user name and per client address (:class:`sync.http_guard.AttemptLimiter`):
``login_max_failures`` of them within ``login_lockout_s`` lock the name (four times as many
lock the address) for ``login_lockout_s``, even for the right password. Users come from the
store (``wayline admin create-user``) and the settings, read when the coordinator starts. Roles:
``ops`` (everything, approving included), ``viewer`` (read only), ``integration`` (orders in,
state out, webhooks), ``carrier`` (one carrier's own orders only).

With ``WAYLINE_ENV=development`` and ``open_in_development``, a request with no
credentials at all acts as a development operator, so local tools and the demo keep working;
any credentials sent are still checked. Outside development there is no such bypass.
"""

from __future__ import annotations

import logging
import math
import re
import time
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
from sync.http_guard import AttemptLimiter, Refusals

__all__ = ["COOKIE", "DEV_USER", "Access", "LoginLockedError"]

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
#: How many more failed logins from one client address than for one user name lock it.
ADDRESS_FACTOR = 4
#: Ended and expired sessions are forgotten this long after they expired.
_KEEP_ENDED_MS = 24 * 3600 * 1000


class LoginLockedError(AuthenticationError):
    """Too many failed logins of this user name or from this address: try again later."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


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
        self.refusals = Refusals("coordinator")
        """Refused HTTP requests by reason (``wayline_http_refused_total``)."""
        window = float(settings.login_lockout_s)
        self.failed_names = AttemptLimiter(settings.login_max_failures, window, window)
        self.failed_addresses = AttemptLimiter(
            settings.login_max_failures * ADDRESS_FACTOR, window, window
        )
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

    def login(self, name: str, password: str, client: str | None = None) -> str:
        """The session cookie value for a good login; :class:`LoginLockedError` while the name
        or the address is locked, else :class:`AuthenticationError` for a wrong one."""
        address = f"address:{client or '?'}"
        wait = max(self.failed_names.retry_after(name), self.failed_addresses.retry_after(address))
        if wait > 0:
            self._refused_login("login_locked", name, client, f"locked for {wait:.0f} s more")
            raise LoginLockedError(
                f"too many failed logins; try again in {math.ceil(wait)} s", wait
            )
        try:
            cookie = self.sessions.login(self.users, name, password)
        except AuthenticationError:
            locked = max(self.failed_names.failed(name), self.failed_addresses.failed(address))
            why = f"wrong password or user; locked for {locked:.0f} s" if locked else "wrong"
            self._refused_login("login_failed", name, client, why)
            raise
        self.failed_names.succeeded(name)
        principal = self.sessions.verify(cookie)
        now_ms = int(time.time() * 1000)
        with self.db.store.transaction() as conn:
            conn.execute(
                "DELETE FROM dashboard_sessions WHERE expires_ms < ?", (now_ms - _KEEP_ENDED_MS,)
            )
            conn.execute(
                "INSERT INTO dashboard_sessions (session_id, user_name, created_ms, expires_ms) "
                "VALUES (?, ?, ?, ?)",
                (
                    principal.session_id,
                    principal.name,
                    now_ms,
                    now_ms + self.settings.session_max_age_s * 1000,
                ),
            )
        log.info("dashboard: %s logged in from %s", name, client or "?")
        return cookie

    def _refused_login(self, reason: str, name: str, client: str | None, why: str) -> None:
        status = 429 if reason == "login_locked" else 401
        self.refusals.refused(
            reason, status, f"login of {name[:64]!r}: {why}", method="POST",
            path="/dashboard/login", client=client,
        )  # fmt: skip

    def verify(self, cookie: str) -> Principal:
        """The principal of a session cookie whose session is still open in the store, or
        :class:`AuthenticationError` (tampered, expired, logged out, or from before sessions
        were kept)."""
        principal = self.sessions.verify(cookie)
        rows = self.db.query(
            "SELECT expires_ms, ended_ms FROM dashboard_sessions WHERE session_id = ?",
            (principal.session_id or "",),
        )
        if not rows or rows[0]["ended_ms"] is not None:
            raise AuthenticationError("this session has ended (logged out); log in again")
        if rows[0]["expires_ms"] <= time.time() * 1000:
            raise AuthenticationError("session expired; log in again")
        return principal

    def logout(self, cookie: str | None) -> bool:
        """End the session of ``cookie`` for good; whether there was an open one."""
        if not cookie:
            return False
        try:
            principal = self.sessions.verify(cookie)
        except AuthenticationError:
            return False
        with self.db.store.transaction() as conn:
            cur = conn.execute(
                "UPDATE dashboard_sessions SET ended_ms = ? "
                "WHERE session_id = ? AND ended_ms IS NULL",
                (int(time.time() * 1000), principal.session_id or ""),
            )
        if cur.rowcount:
            log.info("dashboard: %s logged out", principal.name)
        return bool(cur.rowcount)

    def session(self, request: Request) -> Principal | None:
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return None
        try:
            return self.verify(cookie)
        except AuthenticationError:
            return None

    # -- dependencies ----------------------------------------------------------------------

    def need(self, *roles: Role | str) -> Callable[[Request], Principal]:
        """A dependency: the caller, if it has one of ``roles`` (any role when none given)."""
        check = require(*roles, tokens=self.tokens, sessions=self, cookie_name=COOKIE)

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
