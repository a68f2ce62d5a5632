"""The driver tablet's API, served by the vehicle agent over the van's Wi-Fi.

JSON under ``/api``; every error is ``{"error": ...}`` with a status that says what to do:
404 unknown stop, 409 already final, 413/422 bad proof or fields.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from edge.errors import EdgeError
from edge.vehicle import VehicleAgent

__all__ = ["create_tablet_app"]


class _Fail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str
    event_id: Annotated[str, Field(max_length=128)] | None = None
    note: Annotated[str, Field(max_length=2000)] | None = None


class _Simple(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: Annotated[str, Field(max_length=128)] | None = None
    note: Annotated[str, Field(max_length=2000)] | None = None


class _Move(BaseModel):
    model_config = ConfigDict(extra="forbid")
    position: Annotated[int, Field(ge=1)]
    reason: Annotated[str, Field(min_length=1, max_length=200)]


def create_tablet_app(agent: VehicleAgent) -> FastAPI:
    """The tablet's web app over one agent."""
    app = FastAPI(title=f"Wayline vehicle {agent.vehicle_id}", version="1")

    @app.exception_handler(EdgeError)
    async def _edge_error(_r: Request, exc: EdgeError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        return agent.status()

    @app.post("/api/stops/{stop_id}/arrive")
    def arrive(stop_id: str, body: _Simple | None = None) -> dict[str, Any]:
        return agent.arrive(stop_id, event_id=body.event_id if body else None)

    @app.post("/api/stops/{stop_id}/deliver")
    async def deliver(
        stop_id: str,
        event_id: Annotated[str | None, Form(max_length=128)] = None,
        recipient: Annotated[str | None, Form(max_length=120)] = None,
        signature_svg: Annotated[str | None, Form(max_length=32_000)] = None,
        barcodes: Annotated[str, Form(max_length=4000)] = "",
        note: Annotated[str | None, Form(max_length=2000)] = None,
        photo: Annotated[UploadFile | None, File()] = None,
    ) -> dict[str, Any]:
        data = None
        if photo is not None:
            data = await photo.read(agent.settings.max_photo_bytes + 1)
        codes = tuple(c.strip() for c in barcodes.replace(",", "\n").splitlines() if c.strip())
        return agent.deliver(
            stop_id,
            event_id=event_id,
            recipient=recipient or None,
            signature_svg=signature_svg or None,
            photo=data,
            barcodes=codes,
            note=note or None,
        )

    @app.post("/api/stops/{stop_id}/fail")
    def fail(stop_id: str, body: _Fail) -> dict[str, Any]:
        return agent.fail(stop_id, body.reason, event_id=body.event_id, note=body.note)

    @app.post("/api/stops/{stop_id}/skip")
    def skip(stop_id: str, body: _Simple | None = None) -> dict[str, Any]:
        return agent.skip(
            stop_id, event_id=body.event_id if body else None, note=body.note if body else None
        )

    @app.post("/api/stops/{stop_id}/next")
    def do_next(stop_id: str) -> dict[str, Any]:
        return agent.do_next(stop_id)

    @app.post("/api/stops/{stop_id}/move")
    def move(stop_id: str, body: _Move) -> dict[str, Any]:
        return agent.move(stop_id, body.position, body.reason)

    @app.post("/api/break")
    def take_break() -> dict[str, Any]:
        return agent.take_break()

    return app
