"""Probes and metrics of the coordinator: ``/healthz``, ``/readyz``, ``/metrics``.

- ``/healthz``: liveness. 200 whenever the process answers; it checks nothing else, so a
  broker outage never gets the coordinator restarted.
- ``/readyz``: readiness. 200 when the broker is connected and the database takes a write,
  else 503; the body names the checks and nothing else (:mod:`sync.health`).
- ``/metrics``: Prometheus text from the coordinator's own registry (:mod:`cloud.metrics`).
  Operations data, so it takes the API's credentials: a token with the ``viewer`` (or
  ``ops``) role as ``Authorization: Bearer``, which Prometheus sends from a
  ``credentials_file``. In development with no credentials it is open, like the rest.

The probes need no credentials: load balancers, systemd and Kubernetes call them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cloud.ops import Role
from sync.health import Readiness

if TYPE_CHECKING:
    from cloud.coordinator import Coordinator

__all__ = ["health_router"]


def health_router(coordinator: Coordinator) -> APIRouter:
    """The probes (open) and the metrics (a viewer's or operator's token)."""
    router = APIRouter(tags=["health"])
    readiness = Readiness(coordinator.node)
    scraper = Depends(coordinator.operations.access.need(Role.VIEWER, Role.OPS))

    @router.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz() -> JSONResponse:
        report = readiness.check()
        return JSONResponse(report.body(), status_code=200 if report.ready else 503)

    @router.get("/metrics", dependencies=[scraper])
    def metrics() -> Response:
        return Response(
            generate_latest(coordinator.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    return router
