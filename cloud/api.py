"""The coordinator's HTTP API (FastAPI; OpenAPI at ``/docs``).

Behind the guards of :mod:`cloud.api_guard`. A route plan whose message to the van would be
over the sync payload limit (``max_payload``; a plan of some 400 stops is) is answered 422
naming the sizes, and nothing is stored: splitting such plans into messages the van puts
together is not done yet.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from cloud.api_dashboard import dashboard_router
from cloud.api_dispatch import dispatch_router
from cloud.api_guard import guard_api
from cloud.api_health import health_router
from cloud.api_ops import ops_router
from cloud.coordinator import Coordinator
from cloud.errors import CloudError, NotFoundError
from cloud.ops import OpsError
from protocol import RoutePlan
from sync import StoreError, SyncError

__all__ = ["create_api"]


def create_api(coordinator: Coordinator) -> FastAPI:
    """The REST API over one coordinator."""
    app = FastAPI(title="Wayline coordinator", version="1")
    access = coordinator.operations.access
    guard = Depends(access.guard_existing())

    @app.exception_handler(CloudError)
    async def _cloud_error(_r: Request, exc: CloudError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(OpsError)
    async def _ops_error(_r: Request, exc: OpsError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(SyncError)
    async def _sync_error(request: Request, exc: SyncError) -> JSONResponse:
        if isinstance(exc, StoreError):
            raise exc  # the store failing is the coordinator's fault: a 500, logged
        # what the sync layer refuses to send: a message over the payload limit
        message = (
            f"{exc}: the van cannot be sent this as one message (raise max_payload on the "
            "coordinator, the broker and the vans, or send fewer stops); nothing was stored"
        )
        access.refusals.refused(
            "message_too_large", 422, str(exc), method=request.method, path=request.url.path,
            client=request.client.host if request.client else None,
        )  # fmt: skip
        return JSONResponse({"error": message}, status_code=422)

    guard_api(app, coordinator)
    app.include_router(health_router(coordinator))
    app.include_router(ops_router(coordinator))
    app.include_router(dispatch_router(coordinator), dependencies=[guard])
    app.include_router(dashboard_router(access, secure_cookie=not access.development))

    @app.get("/v1/vehicles", dependencies=[guard])
    def vehicles() -> list[dict[str, Any]]:
        return coordinator.db.devices()

    @app.get("/v1/events", dependencies=[guard])
    def events(
        src: str | None = None,
        kind: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        return coordinator.db.events(src, kind, limit)

    @app.get("/v1/sync", dependencies=[guard])
    def sync_status() -> dict[str, Any]:
        return coordinator.sync_status()

    @app.post("/v1/routes", status_code=202, dependencies=[guard])
    def send_route(plan: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        try:
            parsed = RoutePlan.model_validate_json(json.dumps(plan))
        except ValidationError as exc:
            err = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in err["loc"]) or "plan"
            return JSONResponse(  # type: ignore[return-value]
                {"error": f"{where}: {err['msg']}"}, status_code=422
            )
        return coordinator.send_plan(parsed)

    @app.get("/v1/routes/{route_id}", dependencies=[guard])
    def get_route(route_id: str) -> dict[str, Any]:
        rows = coordinator.db.query(
            "SELECT route_id, version, vehicle_id, day, plan, created_ms FROM routes "
            "WHERE route_id = ? ORDER BY version DESC LIMIT 1",
            (route_id,),
        )
        if not rows:
            raise NotFoundError(f"no route {route_id!r}")
        row = rows[0]
        row["plan"] = RoutePlan.model_validate_json(row["plan"]).model_dump(mode="json")
        return row

    return app
