"""Probes and metrics of a van's tablet server and a depot's terminal server.

- ``/healthz``: liveness. 200 whenever the process answers; nothing else is checked, so a
  van out of coverage is never restarted for it.
- ``/readyz``: readiness. 200 when the broker is connected and the store takes a write,
  else 503; the body names the checks and nothing else (:mod:`sync.health`).
- ``/metrics``: Prometheus text from the app's own registry (:mod:`edge.metrics`).

None of them asks for credentials (unlike ``/api``, which only a paired device may call:
:mod:`edge.web_guard`): they say nothing about parcels or people.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from sync import SyncNode
from sync.health import Readiness

__all__ = ["health_router"]


def health_router(node: SyncNode, registry: CollectorRegistry) -> APIRouter:
    """``/healthz``, ``/readyz`` over ``node`` and ``/metrics`` from ``registry``."""
    router = APIRouter(tags=["health"])
    readiness = Readiness(node)

    @router.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz() -> JSONResponse:
        report = readiness.check()
        return JSONResponse(report.body(), status_code=200 if report.ready else 503)

    @router.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
