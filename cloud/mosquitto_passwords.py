"""Mosquitto password files: the entries ``mosquitto_passwd`` writes, written safely.

An entry is ``username:$7$<iterations>$<salt>$<hash>``: PBKDF2-HMAC-SHA512 of the password
over a 12-byte random salt, the 64-byte result and the salt in standard base64 with
padding, as Mosquitto 2.0's ``mosquitto_passwd -H sha512-pbkdf2`` writes them (its default
of 101 iterations: the broker derives the hash again at every CONNECT, so a fleet that
reconnects at once after a broker restart pays it thousands of times; device passwords are
long and random, which is what keeps them from being guessed).

:func:`add_entry` adds one user to a file (created if missing): it holds an exclusive lock
on the file's directory while it reads the file, refuses a user already in it, writes the
whole file to a temporary file beside it with the same mode and owner, and renames it over
the original, so the broker, which re-reads the file on SIGHUP, never sees half a file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cloud.errors import ConflictError, InvalidError

__all__ = ["ITERATIONS", "add_entry", "encode_password", "read_entries", "verify_password"]

log = logging.getLogger(__name__)

ITERATIONS = 101
"""PBKDF2 iterations of a new entry: ``mosquitto_passwd``'s own default (Mosquitto 2.0)."""
SALT_BYTES = 12
SCHEME = "7"
NEW_FILE_MODE = 0o600


def encode_password(
    password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None
) -> str:
    """The ``$7$...`` hash of ``password`` for a Mosquitto password file."""
    if iterations < 1:
        raise InvalidError(f"PBKDF2 iterations must be positive, got {iterations}")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"${SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (False for any other or a broken one)."""
    try:
        _, scheme, iterations, salt, digest = encoded.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt, validate=True), int(iterations)
        )
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(actual, expected)


def read_entries(path: Path) -> dict[str, str]:
    """The users of a password file and their hashes (empty when the file does not exist).

    Blank lines and ``#`` comments are skipped; any other line without ``user:hash`` is
    refused with :class:`InvalidError` naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidError(f"cannot read the password file {path}: {exc}") from None
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed:
            raise InvalidError(f"{path}:{number}: not a 'user:hash' line of a password file")
        entries[user] = hashed
    return entries


def add_entry(path: Path, username: str, password: str, *, iterations: int = ITERATIONS) -> None:
    """Add ``username`` to the password file at ``path``, atomically (see the module).

    :class:`ConflictError` if the user is already in the file; nothing is written then."""
    if not username or ":" in username or any(c in username for c in "\r\n\0"):
        raise InvalidError(f"user name {username!r:.70} cannot go in a password file")
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise InvalidError(f"no folder {folder} for the password file")
    with _locked(folder):
        entries = read_entries(path)
        if username in entries:
            raise ConflictError(f"{username} is already in the password file {path}")
        try:
            old = path.read_bytes()
        except FileNotFoundError:
            old = b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        line = f"{username}:{encode_password(password, iterations=iterations)}\n".encode()
        _replace(path, old + line)
    log.info("added %s to the password file %s", username, path)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder``: two admins adding at once never lose an entry."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _replace(path: Path, content: bytes) -> None:
    """Write ``content`` to a temporary file beside ``path`` and rename it over ``path``."""
    try:
        before = path.stat()
    except FileNotFoundError:
        before = None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), stat.S_IMODE(before.st_mode) if before else NEW_FILE_MODE)
            if before and (before.st_uid, before.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(out.fileno(), before.st_uid, before.st_gid)
                except PermissionError:
                    raise InvalidError(
                        f"cannot keep the owner of {path} (uid {before.st_uid}); run as that "
                        "user or root"
                    ) from None
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
