"""``wayline admin``: the first ops user, API tokens and devices' broker logins.

``wayline admin create-user --db PATH --name NAME [--email E] --role ROLE [--carrier ID]``
    a dashboard user; the password is asked twice on the terminal or read as one line from
    stdin (``--password-stdin``), never taken from an argument (the process list shows
    arguments to every user of the machine).
``wayline admin create-token --db PATH --name NAME --role ROLE [--carrier ID]``
    an API token, printed once on stdout; the store keeps a salted HMAC of it with
    ``WAYLINE_TOKEN_PEPPER``, so run it with the coordinator's environment.
``wayline admin add-device --id ID --role vehicle|depot --password-file PATH [--db PATH]``
    a device's login in the broker's password file; with ``--db`` its role (and a vehicle's
    ``--fleet``) go in the coordinator's device registry. ``--generate-password`` makes a
    random password and prints it once. Prints the broker URL the device connects to.
``wayline admin add-cloud --password-file PATH``
    the coordinator's own broker login (user ``cloud``).
``wayline admin hash-password [--name NAME]``
    the scrypt hash of a dashboard password, for a user kept in the settings file.

The store is ``--db``, else ``WAYLINE_DB``, else ``db`` in the coordinator's settings file
(``--config``, or ``WAYLINE_CONFIG``): run beside a unit, ``wayline admin ... --config
/etc/wayline/cloud.toml`` with the unit's environment file loaded finds the same store and
token pepper as its coordinator. ``--init`` creates the coordinator's store when there is none
yet. Exit 0 when done; 1 when
the input is refused (a weak password, a duplicate, a malformed name or id, no store); 2 for
usage (flags that do not go together, no terminal to ask on, unsafe ``WAYLINE_*`` settings).
Each refusal is one line on stderr and nothing is written.
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
import tomllib
from pathlib import Path

from cloud.admin import (
    CLOUD_USER,
    DEVICE_ROLES,
    add_cloud_login,
    add_device,
    broker_url,
    check_device,
    check_roles,
    check_user,
    coordinator_store,
    create_token,
    create_user,
    user_password_hash,
)
from cloud.errors import CloudError, InvalidError
from cloud.ops import OpsSettings, Role, SettingsError
from sync import SyncError

__all__ = ["configure", "run"]

EXIT_REFUSED = 1
EXIT_USAGE = 2
#: Characters of a generated device password (``secrets.token_urlsafe``: ~6 bits each).
GENERATED_BYTES = 24


class UsageError(Exception):
    """Flags that do not go together, or nowhere to ask for a password."""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    roles = ", ".join(r.value for r in Role)

    p = sub.add_parser("create-user", help="a dashboard user (the first ops user, ...)")
    _store_flags(p, required=True)
    p.add_argument("--name", required=True, help="login name")
    p.add_argument("--email", help="e-mail address (optional, unique)")
    p.add_argument("--role", action="append", required=True, help=f"{roles}; repeat or a,b")
    p.add_argument("--carrier", help="the carrier id a carrier user is bound to")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password as one line from stdin"
    )

    p = sub.add_parser("create-token", help="an API token, printed once")
    _store_flags(p, required=True)
    p.add_argument("--name", required=True, help="what the token is for, e.g. 'oms'")
    p.add_argument("--role", action="append", required=True, help=f"{roles}; repeat or a,b")
    p.add_argument("--carrier", help="the carrier id a carrier token is bound to")

    p = sub.add_parser("add-device", help="a device's broker login (and registry entry)")
    p.add_argument("--id", required=True, help="device id: the broker user name")
    p.add_argument("--role", required=True, choices=DEVICE_ROLES)
    p.add_argument("--fleet", help="the vehicle's fleet (recorded with --db)")
    p.add_argument("--password-file", required=True, type=Path, help="Mosquitto password file")
    _store_flags(p, required=False)
    _password_flags(p)
    p.add_argument(
        "--broker", help="the broker as devices reach it, e.g. mqtts://broker.example.com:8883"
    )

    p = sub.add_parser("add-cloud", help=f"the coordinator's broker login (user {CLOUD_USER})")
    p.add_argument("--password-file", required=True, type=Path, help="Mosquitto password file")
    _password_flags(p)

    p = sub.add_parser("hash-password", help="a dashboard password's hash, for a settings file")
    p.add_argument("--name", default="", help="the user's login name (not used in the password)")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password as one line from stdin"
    )


def _store_flags(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument(
        "--db",
        type=Path,
        help="the coordinator's SQLite store (else WAYLINE_DB, else db in the --config file)",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=os.environ.get("WAYLINE_CONFIG") or None,
        help="the coordinator's TOML settings file (as wayline cloud --config), for its db",
    )
    p.add_argument("--init", action="store_true", help="create the store if there is none")
    p.set_defaults(db_required=required)


def _resolve_store(args: argparse.Namespace) -> None:
    """``--db``, else ``WAYLINE_DB``, else ``db`` in the coordinator's ``--config`` file: the
    precedence of ``wayline cloud``'s settings, so that an admin command run beside a unit
    finds the store the unit's coordinator uses."""
    if args.db is None and os.environ.get("WAYLINE_DB"):
        args.db = Path(os.environ["WAYLINE_DB"])
    if args.db is None and args.config is not None:
        try:
            with Path(args.config).open("rb") as f:
                db = tomllib.load(f).get("db")
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"--config {args.config}: {exc}") from None
        if db is not None and not isinstance(db, str):
            raise UsageError(f"--config {args.config}: db must be a path, not {db!r}")
        args.db = Path(db) if db else None
    if args.db is None and args.db_required:
        raise UsageError("the coordinator's store is needed: --db, WAYLINE_DB or db in --config")


def _password_flags(p: argparse.ArgumentParser) -> None:
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--password-stdin", action="store_true", help="read the password as one line from stdin"
    )
    how.add_argument(
        "--generate-password", action="store_true", help="make a random password, print it once"
    )


def run(args: argparse.Namespace) -> int:
    command = args.admin_command
    try:
        if hasattr(args, "db_required"):
            _resolve_store(args)
        if command == "create-user":
            return _create_user(args)
        if command == "create-token":
            return _create_token(args)
        if command == "add-device":
            return _add_device(args)
        if command == "hash-password":
            return _hash_password(args)
        return _add_cloud(args)
    except (UsageError, SettingsError) as exc:
        return _fail(command, str(exc), EXIT_USAGE)
    except (CloudError, SyncError) as exc:
        return _fail(command, str(exc), EXIT_REFUSED)
    except OSError as exc:
        return _fail(command, str(exc), EXIT_REFUSED)


def _create_user(args: argparse.Namespace) -> int:
    roles = _roles(args)
    check_user(args.name, args.email, roles, args.carrier)
    with coordinator_store(args.db, create=args.init) as db:
        password = _password(args, f"dashboard user {args.name}")
        row = create_user(
            db,
            name=args.name,
            password=password,
            roles=roles,
            email=args.email,
            carrier_id=args.carrier,
        )
    print(
        f"dashboard user {row['name']} created (roles {str(row['roles']).replace(',', ', ')}); "
        "restart the coordinator for it to log in"
    )
    return 0


def _create_token(args: argparse.Namespace) -> int:
    roles = _roles(args)
    settings = OpsSettings.from_env()
    with coordinator_store(args.db, create=args.init) as db:
        clear, record = create_token(
            db, settings, name=args.name, roles=roles, carrier_id=args.carrier
        )
    print(clear)
    print(
        f"API token {record.token_id} ({record.name}; roles {', '.join(record.roles)}) created. "
        "It is shown only this once; restart the coordinator for it to be accepted.",
        file=sys.stderr,
    )
    return 0


def _add_device(args: argparse.Namespace) -> int:
    if args.init and args.db is None:
        raise UsageError("--init needs --db")
    if args.fleet is not None and args.db is None:
        raise UsageError("--fleet is recorded in the coordinator's registry: give --db too")
    check_device(args.id, args.role, args.fleet)
    url = broker_url(args.broker or "mqtts://BROKER_HOST:8883", args.id)
    password = _password(args, f"device {args.id}")
    if args.db is None:
        login = add_device(args.password_file, device_id=args.id, role=args.role, password=password)
    else:
        with coordinator_store(args.db, create=args.init) as db:
            login = add_device(
                args.password_file,
                device_id=args.id,
                role=args.role,
                password=password,
                fleet_id=args.fleet,
                db=db,
            )
    what = login.role + (f", fleet {login.fleet_id}" if login.fleet_id else "")
    where = f"; registered in {args.db}" if login.registered else ""
    print(f"{login.device_id} ({what}): broker login added to {login.password_file}{where}")
    print(f"broker URL: {url}")
    if args.generate_password:
        print(f"password: {password}  (shown only this once)")
    print("reload the broker to accept it: systemctl reload mosquitto (SIGHUP)")
    return 0


def _add_cloud(args: argparse.Namespace) -> int:
    password = _password(args, f"broker user {CLOUD_USER}")
    add_cloud_login(args.password_file, password=password)
    print(f"{CLOUD_USER}: broker login added to {args.password_file}")
    if args.generate_password:
        print(f"password: {password}  (shown only this once)")
    print("reload the broker to accept it: systemctl reload mosquitto (SIGHUP)")
    return 0


def _hash_password(args: argparse.Namespace) -> int:
    password = _password(args, f"dashboard user {args.name}" if args.name else "the user")
    print(user_password_hash(password, name=args.name))
    return 0


def _roles(args: argparse.Namespace) -> list[str]:
    roles = [r.strip() for given in args.role for r in given.split(",") if r.strip()]
    try:
        check_roles(roles, args.carrier)
    except CloudError as exc:
        raise UsageError(str(exc)) from None
    return roles


def _password(args: argparse.Namespace, who: str) -> str:
    """The password from ``--generate-password``, stdin (one line) or the terminal (twice)."""
    if getattr(args, "generate_password", False):
        return secrets.token_urlsafe(GENERATED_BYTES)
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise UsageError("--password-stdin: no password on stdin (one line expected)")
        return password
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password on: pipe it in with --password-stdin")
    first = getpass.getpass(f"password for {who}: ")
    second = getpass.getpass("the same password again: ")
    if first != second:
        raise InvalidError("the two passwords differ")
    return first


def _fail(command: str, message: str, code: int) -> int:
    print(f"wayline admin {command}: {message}", file=sys.stderr)
    return code
