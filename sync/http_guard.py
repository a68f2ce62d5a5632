"""Guards in front of every Wayline web app: the coordinator's API, the tablet, the terminal.

:class:`HttpGuard` is plain ASGI middleware (no web framework imported here), so the cloud
and the edge apps share it while importing nothing of each other. Before the app sees a
request it refuses, each with a clear 4xx and a JSON body ``{"error": ...}``:

- a malformed path: a control character (a NUL included) or a ``..`` segment: 400
  (``malformed_path``), so no file lookup ever sees one;
- a body over the limit: 413 (``body_too_large``), at once from ``Content-Length``, else by
  counting the bytes of a streamed (chunked) body as they arrive, so an oversized request
  never sits in memory whole and the connection is closed; a ``Content-Length`` that is not
  a number: 400 (``bad_content_length``);
- a cross-site write: 403 (``cross_origin``). A write (any method but GET, HEAD, OPTIONS)
  that carries the app's session cookie and no ``Authorization`` header must come with an
  ``Origin`` (or, without one, a ``Referer``) of this very host; a write with neither
  credential and a foreign ``Origin`` is refused too (a login form, a pairing code, an API
  open in development). Calls with ``Authorization: Bearer`` are not cookie-authenticated
  and pass: a cross-site form cannot set that header.

:class:`Refusals` counts every refusal by reason (``wayline_http_refused_total{reason}``, see
:meth:`Refusals.family`) and logs it with the method, path and client. The apps count their
own refusals (a locked login, a wrong pairing code) in the same object.
:class:`AttemptLimiter` is the failure counter with lockout that logins and pairing use.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import urllib.parse
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any

from sync.metrics import Family

__all__ = [
    "SAFE_METHODS",
    "AttemptLimiter",
    "HttpGuard",
    "Refusals",
    "cookie_value",
    "json_answer",
    "request_headers",
]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing; every other one is a write."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


class _BodyTooLarge(Exception):
    """Raised inside the app's ``receive`` once a streamed body passed the limit."""


class Refusals:
    """Refused requests by reason, and one log line for each (thread-safe)."""

    def __init__(self, app: str) -> None:
        self.app = app
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def refused(
        self, reason: str, status: int, message: str, *, method: str = "", path: str = "",
        client: str | None = None,
    ) -> None:  # fmt: skip
        """Count one refusal and log it (a warning: the process keeps serving)."""
        with self._lock:
            self._counts[reason] += 1
        log.warning(
            "%s refused %s %r from %s: %d %s (%s)",
            self.app, method, path[:200], client or "?", status, message, reason,
        )  # fmt: skip

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def family(self) -> Family:
        """``wayline_http_refused_total{reason}`` as a library-neutral metric."""
        return Family(
            "wayline_http_refused_total",
            "counter",
            "HTTP requests refused before or instead of being served, by reason "
            "(malformed_path, body_too_large, bad_content_length, cross_origin, login_failed, "
            "login_locked, not_paired, pairing_failed, pairing_locked, message_too_large).",
            label="reason",
            samples=tuple(sorted(self.counts().items())),
        )


class AttemptLimiter:
    """Failures per key in a sliding window; ``max_failures`` of them lock the key.

    A locked key stays locked ``lockout_s`` seconds from the failure that locked it, whatever
    is tried meanwhile. At most ``max_keys`` keys are remembered (the least recently failed
    go first), so a flood of made-up names cannot grow the memory.
    """

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        lockout_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        if max_failures < 1 or window_s <= 0 or lockout_s <= 0:
            raise ValueError("an attempt limiter needs max_failures >= 1 and positive times")
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self._clock = clock
        self._max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._locked: dict[str, float] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it is not locked."""
        now = self._clock()
        with self._lock:
            until = self._locked.get(key)
            if until is None:
                return 0.0
            if until <= now:
                del self._locked[key]
                return 0.0
            return until - now

    def failed(self, key: str) -> float:
        """Record a failure; the lockout in seconds if this one locked the key, else 0."""
        now = self._clock()
        with self._lock:
            times = self._failures.pop(key, None) or deque()
            times.append(now)
            while times and times[0] <= now - self.window_s:
                times.popleft()
            self._failures[key] = times
            while len(self._failures) > self._max_keys:
                self._failures.popitem(last=False)
            if len(times) >= self.max_failures:
                self._locked[key] = now + self.lockout_s
                del self._failures[key]
                if len(self._locked) > self._max_keys:
                    for stale in [k for k, t in self._locked.items() if t <= now]:
                        del self._locked[stale]
                return self.lockout_s
            return 0.0

    def succeeded(self, key: str) -> None:
        """Forget the failures of ``key`` (a good login)."""
        with self._lock:
            self._failures.pop(key, None)


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (the first of a repeated one; cookies joined)."""
    found: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name == "cookie" and name in found:
            found[name] = f"{found[name]}; {value}"
        else:
            found.setdefault(name, value)
    return found


def cookie_value(header: str, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header, if there is one."""
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name and value:
            return value.strip('"')
    return None


def json_answer(
    status: int, body: Mapping[str, Any], headers: Iterable[tuple[str, str]] = ()
) -> tuple[Message, Message]:
    """The two ASGI messages of a JSON answer."""
    data = json.dumps(body).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers),
    ]
    return (
        {"type": "http.response.start", "status": status, "headers": raw},
        {"type": "http.response.body", "body": data},
    )


def _netloc(url: str) -> str | None:
    """``host[:port]`` of an origin or URL, lower case, without the scheme's default port."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    netloc = parts.netloc.lower().rpartition("@")[2]
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if default and netloc.endswith(f":{default}"):
        netloc = netloc[: -len(default) - 1]
    return netloc


def _host(value: str) -> str:
    host = value.strip().lower()
    for port in _DEFAULT_PORTS.values():
        if host.endswith(f":{port}") and not host.endswith("]"):
            return host[: -len(port) - 1]
    return host


class HttpGuard:
    """ASGI middleware that refuses malformed paths, oversized bodies and cross-site writes.

    ``max_body_bytes`` is the limit of every request body; ``body_limits`` gives other limits
    to paths matching a pattern (the first match wins), such as a photo upload.
    ``session_cookie`` is the name of the app's session cookie (None: the app has none).
    ``trusted_origins`` are further origins (``https://ops.example.com``) whose writes are
    taken as the app's own, for a proxy that does not pass the ``Host`` header on.
    """

    def __init__(
        self,
        app: AsgiApp,
        *,
        refusals: Refusals,
        max_body_bytes: int,
        body_limits: Sequence[tuple[str, int]] = (),
        session_cookie: str | None = None,
        trusted_origins: Iterable[str] = (),
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1, not {max_body_bytes}")
        self.app = app
        self.refusals = refusals
        self.max_body_bytes = max_body_bytes
        self.body_limits = [(re.compile(p), n) for p, n in body_limits]
        self.session_cookie = session_cookie
        self.trusted = {n for n in (_netloc(o) for o in trusted_origins) if n}

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.body_limits:
            if pattern.fullmatch(path):
                return limit
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET").upper()
        client = scope.get("client")
        who = client[0] if client else None

        async def refuse(status: int, reason: str, message: str, close: bool = False) -> None:
            self.refusals.refused(reason, status, message, method=method, path=path, client=who)
            extra = [("connection", "close")] if close else []
            for message_out in json_answer(status, {"error": message, "reason": reason}, extra):
                await send(message_out)

        if _CONTROL.search(path) or ".." in path.split("/"):
            await refuse(400, "malformed_path", "malformed path: control characters or '..'")
            return
        headers = request_headers(scope)
        if method not in SAFE_METHODS:
            problem = self._cross_site(headers)
            if problem:
                await refuse(403, "cross_origin", problem)
                return
        limit = self.limit_for(path)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await refuse(400, "bad_content_length", "Content-Length is not a number", True)
                return
            if int(declared) > limit:
                await refuse(413, "body_too_large", _too_large(int(declared), limit), True)
                return
        await self._counted(scope, receive, send, limit, refuse)

    def _cross_site(self, headers: Mapping[str, str]) -> str | None:
        """Why a write is refused as cross-site, or None."""
        if "authorization" in headers:
            return None
        host = _host(headers.get("host", ""))
        origin = headers.get("origin")
        source = origin if origin else headers.get("referer")
        seen = _netloc(source) if source else None
        same = seen is not None and (seen == host or seen in self.trusted)
        with_cookie = self.session_cookie is not None and (
            cookie_value(headers.get("cookie", ""), self.session_cookie) is not None
        )
        if with_cookie and source is None:
            return "a write with the session cookie needs an Origin or Referer header of this site"
        if (with_cookie or origin) and not same:
            return f"cross-site write refused: {source!r} is not this site ({host or 'no Host'})"
        return None

    async def _counted(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        limit: int,
        refuse: Callable[[int, str, str, bool], Awaitable[None]],
    ) -> None:
        """Run the app, counting the body's bytes; past ``limit`` the app's answer is dropped
        and a 413 goes out instead (unless the app had already begun to answer)."""
        received = 0
        over = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # the app's answer to a body it could not read whole: ours goes out
            if message.get("type") == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await refuse(413, "body_too_large", _too_large(received, limit, streamed=True), True)


def _too_large(size: int, limit: int, *, streamed: bool = False) -> str:
    what = f"more than {_size(limit)}" if streamed else _size(size)
    return f"request body of {what} is over the {_size(limit)} limit; send a smaller one"


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MiB"
    if n >= 1024:
        return f"{math.ceil(n / 1024)} KiB"
    return f"{n} bytes"
