"""Which passwords Wayline refuses: too short, common, or made of guessable parts.

A person's dashboard password and a device's broker password pass the same check
(:func:`weakness`), in the spirit of NIST SP 800-63B: a minimum length and a screen
against common choices, no rules about character classes. "Guessable parts" are common
words and names (``password``, ``qwerty``, ``summer``, ``wayline``...), keyboard and
alphabet runs (``1234``, ``asdf``, ``cba``), years, runs of one character, and the words
of the account itself (its name, e-mail, device id, fleet): what is left after removing
them, also with look-alike digits read as letters (``p@ssw0rd``), must still be long and
varied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from cloud.errors import InvalidError

__all__ = ["MIN_LENGTH", "check_password", "weakness"]

MIN_LENGTH = 12
MAX_LENGTH = 256
#: What must be left, in characters and distinct characters, once guessable parts are gone.
MIN_REST = 8
MIN_DISTINCT = 5

_COMMON = """
    password passwort passe contrasena senha wachtwoord qwerty qwertz azerty letmein welcome
    admin administrator root login logon master secret private dragon monkey football
    baseball soccer hockey iloveyou lovely sunshine princess shadow superman batman trustno
    starwars whatever freedom hello charlie michael jennifer jordan hunter ranger buster
    summer winter spring autumn changeme default guest test testing demo example sample
    wayline mosquitto mqtt broker vehicle depot cloud fleet delivery parcel company server
    system computer internet access secure security user device manager operator dispatch
    january february march april june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday
"""
COMMON_WORDS = frozenset(_COMMON.split())
"""Words (and names) a password must not be built on."""
_RUNS = (
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "qwertzuiop",
    "yxcvbnm",
    "azertyuiop",
    "1qaz2wsx3edc4rfv",
)
_LOOK_ALIKE = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t",
                              "@": "a", "$": "s", "!": "i", "|": "l"})  # fmt: skip
_YEAR = re.compile(r"(19|20)[0-9]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def weakness(password: str, *, context: Iterable[str] = ()) -> str | None:
    """Why ``password`` is refused, in a few words, or None when it is acceptable.

    ``context``: words of the account (name, e-mail, device id...) it must not be built on.
    """
    if len(password) < MIN_LENGTH:
        return f"is {len(password)} characters; at least {MIN_LENGTH} needed"
    if len(password) > MAX_LENGTH:
        return f"is {len(password)} characters; at most {MAX_LENGTH}"
    if _CONTROL.search(password):
        return "contains control characters"
    if password.strip() != password:
        return "starts or ends with white space"
    words = set(COMMON_WORDS)
    for item in context:
        for part in re.split(r"[^a-z0-9]+", item.lower()):
            if len(part) >= 3:
                words.add(part)
    lowered = password.lower()
    rests = [
        _strip_guessable(lowered, words),
        _strip_guessable(lowered.translate(_LOOK_ALIKE), words),
    ]
    rest = min(rests, key=len)
    if len(rest) < MIN_REST or len(set(rest)) < MIN_DISTINCT:
        return "is built from common words, names, sequences or repeats"
    return None


def check_password(password: str, *, what: str = "password", context: Iterable[str] = ()) -> None:
    """Raise :class:`InvalidError` (``"<what> <why>"``) for a password :func:`weakness` refuses."""
    why = weakness(password, context=context)
    if why is not None:
        raise InvalidError(f"{what} {why}")


def _strip_guessable(text: str, words: set[str]) -> str:
    for word in sorted(words, key=len, reverse=True):
        text = text.replace(word, "\0")
    text = _YEAR.sub("\0", text)
    text = _strip_runs(text)
    return re.sub(r"(.)\1{2,}", "", text).replace("\0", "")


def _strip_runs(text: str) -> str:
    """``text`` without runs of three or more characters that follow a keyboard row or the
    alphabet or digits, forwards or backwards."""
    out: list[str] = []
    i = 0
    while i < len(text):
        j = i + 1
        while j < len(text) and _in_run(text[i : j + 1]):
            j += 1
        if j - i >= 3:
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _in_run(piece: str) -> bool:
    return any(piece in run or piece in run[::-1] for run in _RUNS)
