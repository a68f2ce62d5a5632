"""Bootstrap and administration: the first ops user, API tokens, devices' broker logins.

A production coordinator has no development bypass: without a user or a token every call
is answered 401. These functions make them in the coordinator's store, the same way the
coordinator does (scrypt password hashes; API tokens as salted HMAC digests with the
server-side pepper of :class:`cloud.ops.OpsSettings`), and a device's login in the broker's
password file (:mod:`cloud.mosquitto_passwords`) with its role and fleet in the device
registry. Every input is checked before anything is written; a weak password
(:mod:`cloud.password_policy`), a duplicate or a malformed name is refused with
:class:`~cloud.errors.InvalidError` or :class:`~cloud.errors.ConflictError` and nothing is
stored. ``wayline admin`` (:mod:`cloud.admin_cli`) is the command line on top.

The coordinator reads users and tokens when it starts: restart it after adding some.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cloud.errors import ConflictError, InvalidError, NotFoundError
from cloud.mosquitto_passwords import ITERATIONS, add_entry, read_entries
from cloud.ops import OpsSettings, Role, StoredToken, TokenStore, hash_password
from cloud.password_policy import check_password
from cloud.store import CloudStore
from protocol import TopicError, up_topic
from sync import open_store

__all__ = [
    "CLOUD_USER",
    "DEVICE_ROLES",
    "DeviceLogin",
    "add_cloud_login",
    "add_device",
    "broker_url",
    "check_device",
    "check_roles",
    "check_user",
    "coordinator_store",
    "create_token",
    "create_user",
    "user_password_hash",
]

log = logging.getLogger(__name__)

CLOUD_USER = "cloud"
"""The coordinator's broker user: ``deploy/acl`` gives it every device's topics."""
DeviceRole = Literal["vehicle", "depot"]
DEVICE_ROLES: tuple[DeviceRole, ...] = ("vehicle", "depot")

_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")
_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.@:+-]{0,63}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s.]+")


@dataclass(frozen=True)
class DeviceLogin:
    """A device's broker login as made: who, what, and where it was written."""

    device_id: str
    role: DeviceRole
    fleet_id: str | None
    password_file: Path
    registered: bool
    """Whether the role (and fleet) went into the coordinator's device registry."""


# -- the coordinator's store ---------------------------------------------------------------


@contextlib.contextmanager
def coordinator_store(path: Path, *, create: bool = False) -> Iterator[CloudStore]:
    """The coordinator's store at ``path``, migrated, closed afterwards.

    :class:`NotFoundError` when there is none and ``create`` is false: a mistyped path must
    not leave a new, empty store that the coordinator never reads."""
    path = Path(path)
    if not path.is_file() and not create:
        raise NotFoundError(
            f"no coordinator store at {path} (start the coordinator once, or pass --init)"
        )
    store = open_store(path)
    try:
        yield CloudStore(store)
    finally:
        store.close()


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- people and tokens ---------------------------------------------------------------------


def check_roles(roles: Iterable[str], carrier_id: str | None) -> tuple[Role, ...]:
    """The roles as :class:`Role` values, sorted, or :class:`InvalidError`: at least one, all
    known; the carrier role needs a carrier id and a carrier id allows no other role."""
    wanted: set[Role] = set()
    for r in roles:
        try:
            wanted.add(Role(r))
        except ValueError:
            known = ", ".join(x.value for x in Role)
            raise InvalidError(f"unknown role {r!r:.40}; known: {known}") from None
    if not wanted:
        raise InvalidError("give at least one role")
    if Role.CARRIER in wanted and not carrier_id:
        raise InvalidError("the carrier role needs --carrier (the carrier id it is bound to)")
    if carrier_id is not None:
        if wanted != {Role.CARRIER}:
            raise InvalidError("--carrier goes with the carrier role only")
        _check_id(carrier_id, "carrier id")
    return tuple(sorted(wanted))


def check_user(
    name: str, email: str | None, roles: Iterable[str], carrier_id: str | None
) -> tuple[Role, ...]:
    """The roles of a new user, or :class:`InvalidError` for a malformed name or e-mail or
    roles that do not hold together (checked before anyone is asked for a password)."""
    if not _USER_NAME.fullmatch(name):
        raise InvalidError(
            f"user name {name!r:.70} must be 1-64 letters, digits or _ . @ + -, "
            "starting with a letter or digit"
        )
    if email is not None and (len(email) > 254 or not _EMAIL.fullmatch(email)):
        raise InvalidError(f"e-mail {email!r:.70} is not an e-mail address")
    return check_roles(roles, carrier_id)


def create_user(
    db: CloudStore,
    *,
    name: str,
    password: str,
    roles: Iterable[str],
    email: str | None = None,
    carrier_id: str | None = None,
) -> dict[str, object]:
    """A dashboard user with a scrypt hash of ``password``; the stored row (with the hash).

    Refuses what :func:`check_user` refuses, a weak password, and a name or e-mail already
    taken (names compare without case)."""
    wanted = check_user(name, email, roles, carrier_id)
    check_password(password, context=(name, email or ""))
    row: dict[str, object] = {
        "name": name,
        "email": email,
        "password_hash": hash_password(password),
        "roles": ",".join(wanted),
        "carrier_id": carrier_id,
        "created_ms": _now_ms(),
    }
    with db.store.transaction() as conn:
        taken = conn.execute(
            "SELECT name FROM dashboard_users WHERE lower(name) = lower(?)", (name,)
        ).fetchone()
        if taken is not None:
            raise ConflictError(f"a dashboard user {taken[0]!r} already exists")
        if email is not None and db.dashboard_user_by_email(email, conn) is not None:
            raise ConflictError(f"a dashboard user with e-mail {email} already exists")
        db.add_dashboard_user(conn, row)
    log.info("dashboard user %s created with roles %s", name, row["roles"])
    return row


def user_password_hash(password: str, *, name: str = "", email: str | None = None) -> str:
    """The scrypt hash of a dashboard password, for a user kept in the settings file instead
    of the store; refuses a weak password as :func:`create_user` does."""
    check_password(password, context=(name, email or ""))
    return hash_password(password)


def create_token(
    db: CloudStore,
    settings: OpsSettings,
    *,
    name: str,
    roles: Iterable[str],
    carrier_id: str | None = None,
) -> tuple[str, StoredToken]:
    """A new API token: its clear text (show it once; it is never stored) and its record.

    The record holds a salted HMAC of the secret with ``settings.token_pepper``, so the
    coordinator must run with the same ``WAYLINE_TOKEN_PEPPER``. Refuses a malformed name,
    unknown roles, and a name an unrevoked token already has."""
    if not _TOKEN_NAME.fullmatch(name):
        raise InvalidError(
            f"token name {name!r:.70} must be 1-64 letters, digits, spaces or _ . @ : + -, "
            "starting with a letter or digit"
        )
    wanted = check_roles(roles, carrier_id)
    clear, record = TokenStore(pepper=settings.token_pepper).issue(
        name, wanted, carrier_id=carrier_id
    )
    with db.store.transaction() as conn:
        taken = conn.execute(
            "SELECT token_id FROM api_tokens WHERE lower(name) = lower(?) AND revoked = 0",
            (name,),
        ).fetchone()
        if taken is not None:
            raise ConflictError(f"an API token named {name!r} already exists ({taken[0]})")
        db.put_token(
            conn,
            {
                "token_id": record.token_id,
                "name": record.name,
                "roles": ",".join(record.roles),
                "salt": record.salt,
                "digest": record.digest,
                "carrier_id": record.carrier_id,
                "created_ms": record.created_ms,
                "revoked": 0,
            },
        )
    log.info("API token %s (%s) created with roles %s", record.token_id, name, record.roles)
    return clear, record


# -- devices -------------------------------------------------------------------------------


def check_device(device_id: str, role: str, fleet_id: str | None) -> DeviceRole:
    """The role of a new device, or :class:`InvalidError` for an id that is not a valid
    device id (:func:`protocol.up_topic`) or is the coordinator's, an unknown role, or a
    malformed fleet or one given to a depot (checked before anyone is asked for a password)."""
    try:
        up_topic(device_id)
    except TopicError:
        raise InvalidError(
            f"device id {device_id!r:.70} must be 1-64 letters, digits or _ . -, starting with "
            "a letter or digit (it is the broker user name and a topic level)"
        ) from None
    if device_id.lower() == CLOUD_USER:
        raise InvalidError(f"device id {device_id!r} is the coordinator's own; choose another")
    if role not in DEVICE_ROLES:
        known = ", ".join(DEVICE_ROLES)
        raise InvalidError(f"device role must be one of {known}, not {role!r:.20}")
    if fleet_id is not None:
        if role != "vehicle":
            raise InvalidError("--fleet applies to vehicles only")
        _check_id(fleet_id, "fleet id")
    return role


def add_device(
    password_file: Path,
    *,
    device_id: str,
    role: str,
    password: str,
    fleet_id: str | None = None,
    db: CloudStore | None = None,
    iterations: int = ITERATIONS,
) -> DeviceLogin:
    """A broker login for a device: ``device_id`` as the user name (``deploy/acl`` keeps it to
    its own topics), and its role and fleet in the registry of ``db`` when given.

    Refuses what :func:`check_device` refuses, a weak password, and a device already in the
    password file or the registry; nothing is written then."""
    kind = check_device(device_id, role, fleet_id)
    check_password(
        password, what=f"the password of {device_id}", context=(device_id, fleet_id or "")
    )
    path = Path(password_file)
    if device_id in read_entries(path):
        raise ConflictError(f"{device_id} is already in the password file {path}")
    if db is None:
        add_entry(path, device_id, password, iterations=iterations)
        return DeviceLogin(device_id, kind, fleet_id, path, registered=False)
    with db.store.transaction() as conn:
        if db.registered_device(device_id, conn) is not None:
            raise ConflictError(f"{device_id} is already in the coordinator's device registry")
        db.register_device(
            conn,
            {"device_id": device_id, "role": role, "fleet_id": fleet_id, "created_ms": _now_ms()},
        )
        # Written inside the transaction: if the file cannot be written, the registry
        # entry is rolled back with it.
        add_entry(path, device_id, password, iterations=iterations)
    log.info("device %s registered as %s (fleet %s)", device_id, role, fleet_id)
    return DeviceLogin(device_id, kind, fleet_id, path, registered=True)


def add_cloud_login(password_file: Path, *, password: str, iterations: int = ITERATIONS) -> None:
    """The coordinator's broker login (user ``cloud``); refuses a weak password or a second one."""
    check_password(password, what="the coordinator's broker password", context=(CLOUD_USER,))
    add_entry(Path(password_file), CLOUD_USER, password, iterations=iterations)


def broker_url(base: str, username: str) -> str:
    """``base`` (``mqtts://host:port``) with ``username`` in it: what a device connects to.

    The password stays out: it goes in the device's settings (or after the user name,
    percent-encoded, as ``mqtts://user:password@host:port``)."""
    parsed = urllib.parse.urlsplit(base)
    if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname or parsed.username:
        raise InvalidError(
            f"broker URL must look like mqtts://broker.example.com:8883, got {base!r:.100}"
        )
    user = urllib.parse.quote(username, safe="")
    return urllib.parse.urlunsplit(parsed._replace(netloc=f"{user}@{parsed.netloc}"))


def _check_id(value: str, what: str) -> None:
    if not _ID.fullmatch(value):
        raise InvalidError(
            f"{what} {value!r:.70} must be 1-64 letters, digits or _ . -, starting with a "
            "letter or digit"
        )
