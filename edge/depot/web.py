"""The depot terminal's API and web app, served by the depot agent on the sorter's LAN.

JSON under ``/api``; the terminal's static page (``edge/depot/terminal/``, every asset local)
at ``/``. Every error is ``{"error": ...}`` with a status that says what to do: 422 a scan that
is no barcode, 404 an unknown vehicle, 409 a release refused.

- ``POST /api/scan`` ``{"code": "..."}`` → the destination or the instruction to show.
- ``GET /api/status`` → vehicles with progress, open exceptions, open re-sorts, last scans.
- ``GET /api/vehicles/{id}/checklist`` → every parcel of a vehicle: sorted, missing, re-sort.
- ``POST /api/vehicles/{id}/release`` ``{"force": false}`` → ready to depart.
- ``POST /api/exceptions/{id}/handled`` → hide an exception the floor has dealt with.

Every ``/api`` call needs a paired terminal (401 otherwise: the page asks for the depot
agent's pairing code, :mod:`edge.web_guard`); a request body may be ``http_max_body_bytes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from edge.depot.agent import DepotAgent
from edge.errors import EdgeError
from edge.health_api import health_router
from edge.metrics import edge_registry
from edge.pairing import Pairing
from edge.web_guard import guard_device_app

__all__ = ["TERMINAL_DIR", "create_terminal_app"]

TERMINAL_DIR = Path(__file__).resolve().parent / "terminal"
"""The terminal's static files: ``index.html``, ``app.js``, ``app.css``."""


class _Scan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Annotated[str, Field(max_length=512)]


class _Release(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force: bool = False


def create_terminal_app(agent: DepotAgent) -> FastAPI:
    """The terminal's API and web app over one depot agent."""
    app = FastAPI(title=f"Wayline depot {agent.depot_id}", version="1")
    registry = edge_registry(agent.node)
    guard_device_app(
        app,
        Pairing(agent.store, agent.settings.pairing_code, device=agent.depot_id),
        registry,
        what="terminal app of depot",
        max_body_bytes=agent.settings.http_max_body_bytes,
    )
    app.include_router(health_router(agent.node, registry))

    @app.exception_handler(EdgeError)
    async def _edge_error(_r: Request, exc: EdgeError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_r: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        return JSONResponse({"error": f"{where}: {err.get('msg')}"}, status_code=422)

    @app.post("/api/scan")
    def scan(body: _Scan) -> dict[str, Any]:
        return agent.scan(body.code)

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        return agent.status()

    @app.get("/api/vehicles/{vehicle_id}/checklist")
    def checklist(vehicle_id: str) -> dict[str, Any]:
        return agent.checklist(vehicle_id)

    @app.post("/api/vehicles/{vehicle_id}/release")
    def release(vehicle_id: str, body: _Release | None = None) -> dict[str, Any]:
        return agent.release(vehicle_id, force=body.force if body else False)

    @app.post("/api/exceptions/{exception_id}/handled")
    def handled(exception_id: str) -> dict[str, Any]:
        return agent.handle_exception(exception_id)

    app.mount("/", StaticFiles(directory=TERMINAL_DIR, html=True), name="terminal")
    return app
