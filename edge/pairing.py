"""Pairing a tablet or a terminal with its gateway: a code given once, a session kept.

The driver's tablet and the sorter's terminal reach their gateway over a LAN that others may
share, so the gateway serves its API only to devices paired with it. A device pairs by
sending the gateway's **pairing code** once (``POST /api/pair``, :mod:`edge.web_guard`); it
gets a session token back, as an HTTP-only cookie for a browser and in the answer for a
program, which sends it as ``Authorization: Bearer <token>``.

- The code is ``pairing_code`` from the settings, or else one made at the first start (eight
  digits) and kept in the store, so it survives restarts and power cuts; it is logged when
  the web app starts, for whoever sets up the device.
- A session token is a random id with an HMAC of it under a key derived from a secret kept
  in the store and the code. It needs no table and survives restarts (a tablet stays paired
  through a power cut); changing the code ends every session at once.
- Wrong codes are limited (:class:`sync.http_guard.AttemptLimiter`): ``MAX_FAILURES`` from one
  address within ``LOCKOUT_S`` lock that address for ``LOCKOUT_S``, and ``GLOBAL_FAILURES``
  from anywhere lock pairing for everyone for as long (devices already paired keep working).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets

from edge.errors import EdgeError, SettingsError
from sync import Schema, Step, Store, migrate
from sync.http_guard import AttemptLimiter

__all__ = [
    "CODE_PATTERN",
    "SCHEMA",
    "Pairing",
    "PairingError",
    "PairingLockedError",
    "check_code",
]

log = logging.getLogger(__name__)

CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{6,64}")
"""What a pairing code from the settings must look like."""
MAX_FAILURES = 5
GLOBAL_FAILURES = 50
LOCKOUT_S = 15 * 60.0

SCHEMA = Schema(
    "pairing",
    (
        Step(
            "the pairing code made at first start and the secret sessions are signed with",
            "CREATE TABLE IF NOT EXISTS pairing (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
    ),
    marker="pairing",
    meta_key="pairing_schema",
)
"""The pairing table's steps; its version is the ``pairing_schema`` row of ``sync_meta``."""


class PairingError(EdgeError):
    """A wrong pairing code, or a request from a device that is not paired."""

    status = 401


class PairingLockedError(PairingError):
    """Too many wrong codes: pairing is refused for a while."""

    status = 429

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def check_code(code: str) -> None:
    """:class:`SettingsError` unless ``code`` can be a pairing code."""
    if not CODE_PATTERN.fullmatch(code):
        raise SettingsError(
            "pairing_code must be 6 to 64 letters, digits, '-' or '_' (it is typed on the "
            "tablet or terminal once)"
        )


class Pairing:
    """The gateway's pairing code and the sessions of the devices paired with it."""

    def __init__(self, store: Store, code: str | None, *, device: str) -> None:
        if code is not None:
            check_code(code)
        migrate(store, SCHEMA)
        with store.transaction() as conn:
            kept = dict(conn.execute("SELECT key, value FROM pairing").fetchall())
            if "secret" not in kept:
                kept["secret"] = secrets.token_hex(32)
                conn.execute("INSERT INTO pairing VALUES ('secret', ?)", (kept["secret"],))
            if code is None and "code" not in kept:
                kept["code"] = f"{secrets.randbelow(10**8):08d}"
                conn.execute("INSERT INTO pairing VALUES ('code', ?)", (kept["code"],))
        self.device = device
        self.code = code if code is not None else kept["code"]
        self.from_settings = code is not None
        self._key = hmac.new(
            bytes.fromhex(kept["secret"]), b"wayline-pairing\0" + self.code.encode(), "sha256"
        ).digest()
        self.addresses = AttemptLimiter(MAX_FAILURES, LOCKOUT_S, LOCKOUT_S)
        self.everyone = AttemptLimiter(GLOBAL_FAILURES, LOCKOUT_S, LOCKOUT_S)

    def announce(self, what: str) -> None:
        """Log the code (once, when the web app starts) for whoever pairs the device."""
        if self.from_settings:
            log.info("%s %s: pair it with the pairing_code of the settings", what, self.device)
        else:
            log.info(
                "%s %s: pairing code %s (enter it once on the device; pairing_code in the "
                "settings sets another)",
                what, self.device, self.code,
            )  # fmt: skip

    def pair(self, code: str, client: str | None) -> str:
        """A new session token for a device that gave the right ``code``;
        :class:`PairingLockedError` while locked, :class:`PairingError` for a wrong code."""
        address = client or "?"
        wait = max(self.addresses.retry_after(address), self.everyone.retry_after("*"))
        if wait > 0:
            raise PairingLockedError(
                f"too many wrong pairing codes; try again in {wait:.0f} s", wait
            )
        if not hmac.compare_digest(code.strip().encode(), self.code.encode()):
            locked = max(self.addresses.failed(address), self.everyone.failed("*"))
            if locked:
                raise PairingLockedError(
                    f"wrong pairing code; too many wrong codes, try again in {locked:.0f} s",
                    locked,
                )
            raise PairingError("wrong pairing code")
        self.addresses.succeeded(address)
        log.info("%s paired a device at %s", self.device, address)
        return self._issue()

    def _issue(self) -> str:
        session = secrets.token_urlsafe(18)
        return f"{session}.{self._mac(session)}"

    def _mac(self, session: str) -> str:
        return hmac.new(self._key, session.encode(), hashlib.sha256).hexdigest()[:32]

    def valid(self, token: str | None) -> bool:
        """Whether ``token`` is a session this gateway gave (under its current code)."""
        if not token or len(token) > 200:
            return False
        session, _, mac = token.partition(".")
        return bool(session) and hmac.compare_digest(mac, self._mac(session))
