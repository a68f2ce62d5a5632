"""The guards of the tablet's and the terminal's web apps: pairing, body limits, CSRF.

:func:`guard_device_app` puts in front of an app:

- :class:`sync.http_guard.HttpGuard`: malformed paths (400), bodies over the limit (413,
  before anything is parsed), cross-site writes (403: a write with the pairing cookie must
  come from a page of this gateway);
- :class:`PairedOnly`: every ``/api/`` call but ``POST /api/pair`` needs a paired device's
  session (:mod:`edge.pairing`), as the ``wayline_paired`` cookie or ``Authorization: Bearer``;
  else 401 ``{"error": ..., "pair": true}``, and the page asks for the pairing code.

The page itself, its assets and ``/healthz``, ``/readyz``, ``/metrics`` stay open: they say
nothing about parcels or people. Every refusal is logged and counted in the app's registry as
``wayline_http_refused_total{reason}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from pydantic import BaseModel, ConfigDict, Field

from edge.pairing import Pairing, PairingError, PairingLockedError
from sync.http_guard import (
    AsgiApp,
    HttpGuard,
    Receive,
    Refusals,
    Scope,
    Send,
    cookie_value,
    json_answer,
    request_headers,
)

__all__ = ["COOKIE", "PairedOnly", "guard_device_app"]

COOKIE = "wayline_paired"
"""The session cookie of a paired tablet or terminal."""
COOKIE_MAX_AGE_S = 400 * 86400
"""As long as browsers keep a cookie: a device stays paired until the code changes."""
PAIR_PATH = "/api/pair"


class _PairRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Annotated[str, Field(min_length=1, max_length=200)]


def session_of(headers: dict[str, str]) -> str | None:
    """The session token a request carries: ``Authorization: Bearer`` or the cookie."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return cookie_value(headers.get("cookie", ""), COOKIE)


class PairedOnly:
    """ASGI middleware: ``/api/`` calls only from paired devices (module docstring)."""

    def __init__(self, app: AsgiApp, *, pairing: Pairing, refusals: Refusals) -> None:
        self.app = app
        self.pairing = pairing
        self.refusals = refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/api/") or path == PAIR_PATH:
            await self.app(scope, receive, send)
            return
        if self.pairing.valid(session_of(request_headers(scope))):
            await self.app(scope, receive, send)
            return
        message = f"this device is not paired with {self.pairing.device}: enter its pairing code"
        client = scope.get("client")
        self.refusals.refused(
            "not_paired", 401, message, method=scope.get("method", ""), path=path,
            client=client[0] if client else None,
        )  # fmt: skip
        for out in json_answer(401, {"error": message, "pair": True}):
            await send(out)


def guard_device_app(
    app: FastAPI,
    pairing: Pairing,
    registry: CollectorRegistry,
    *,
    what: str,
    max_body_bytes: int,
    body_limits: tuple[tuple[str, int], ...] = (),
) -> Refusals:
    """Add ``POST /api/pair`` and the guards to ``app`` (before its catch-all static files);
    their refusals are counted in ``registry``. ``what`` names the app in the log. The app's
    ``state.pairing`` and ``state.refusals`` are the two objects (tools and tests read them)."""
    refusals = Refusals(f"{what} {pairing.device}")

    @app.post(PAIR_PATH)
    def pair(request: Request, body: _PairRequest) -> JSONResponse:
        """Pair this device: the gateway's pairing code in, a session out (cookie and token)."""
        client = request.client.host if request.client else None
        try:
            token = pairing.pair(body.code, client)
        except PairingLockedError as exc:
            refusals.refused("pairing_locked", 429, str(exc), method="POST", path=PAIR_PATH,
                             client=client)  # fmt: skip
            wait = str(max(1, round(exc.retry_after_s)))
            return JSONResponse(
                {"error": str(exc), "pair": True}, status_code=429, headers={"Retry-After": wait}
            )
        except PairingError as exc:
            refusals.refused("pairing_failed", 401, str(exc), method="POST", path=PAIR_PATH,
                             client=client)  # fmt: skip
            return JSONResponse({"error": str(exc), "pair": True}, status_code=401)
        out = JSONResponse({"paired": True, "device": pairing.device, "token": token})
        out.set_cookie(
            COOKIE, token, max_age=COOKIE_MAX_AGE_S, httponly=True, samesite="strict", path="/"
        )
        return out

    app.add_middleware(PairedOnly, pairing=pairing, refusals=refusals)
    app.add_middleware(
        HttpGuard,
        refusals=refusals,
        max_body_bytes=max_body_bytes,
        body_limits=body_limits,
        session_cookie=COOKIE,
    )
    registry.register(_RefusalCollector(refusals))
    app.state.pairing = pairing
    app.state.refusals = refusals
    pairing.announce(what)
    return refusals


class _RefusalCollector:
    """``wayline_http_refused_total{reason}``, read at each scrape."""

    def __init__(self, refusals: Refusals) -> None:
        self.refusals = refusals

    def collect(self) -> Iterator[Metric]:
        family = self.refusals.family()
        metric = CounterMetricFamily(family.name, family.help, labels=["reason"])
        for reason, value in family.samples:
            metric.add_metric([reason], value)
        yield metric
