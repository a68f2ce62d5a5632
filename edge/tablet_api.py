"""The driver tablet's API and web app, served by the vehicle agent over the van's Wi-Fi.

JSON under ``/api``; the tablet's static page (``edge/tablet/``) at ``/``. Every error is
``{"error": ...}`` with a status that says what to do: 401 not paired (the page asks for
the gateway's pairing code, :mod:`edge.web_guard`), 404 unknown stop, 409 already final
(or an event id used for another action), 413 photo or body too large, 422 bad proof or
fields. A request body may be ``http_max_body_bytes``; a delivery, ``max_photo_bytes`` more.

Every POST takes a client-generated ``event_id``. Stop events (arrive, deliver, fail, skip)
are de-duplicated by the agent's store, durably; the route edits (next, move, break) by a
short in-memory memory of recent ids here, so that a retried tap returns the first answer.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from edge.errors import EdgeError, StopFinalError
from edge.health_api import health_router
from edge.metrics import edge_registry
from edge.pairing import Pairing
from edge.vehicle import VehicleAgent
from edge.web_guard import guard_device_app

__all__ = ["TABLET_DIR", "create_tablet_app"]

TABLET_DIR = Path(__file__).resolve().parent / "tablet"
"""The tablet's static files: ``index.html``, ``app.js``, ``app.css``."""

_EventId = Annotated[str, Field(min_length=1, max_length=128)]
_REPLAY_SIZE = 256


class _Fail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str
    event_id: _EventId | None = None
    note: Annotated[str, Field(max_length=2000)] | None = None


class _Simple(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: _EventId | None = None
    note: Annotated[str, Field(max_length=2000)] | None = None


class _Move(BaseModel):
    model_config = ConfigDict(extra="forbid")
    position: Annotated[int, Field(ge=1)]
    reason: Annotated[str, Field(min_length=1, max_length=200)]
    event_id: _EventId | None = None


class _Replay:
    """Answers to recent route edits by event id: a retried tap gets the first answer."""

    def __init__(self, size: int = _REPLAY_SIZE) -> None:
        self._seen: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def run(
        self, event_id: str | None, action: str, do: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        if event_id is None:
            return do()
        with self._lock:
            seen = self._seen.get(event_id)
            if seen is not None:
                if seen[0] != action:
                    raise StopFinalError(f"event {event_id} was already used for another action")
                return {**seen[1], "event_id": event_id, "duplicate": True}
            answer = {**do(), "event_id": event_id, "duplicate": False}
            self._seen[event_id] = (action, answer)
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)
            return answer


def _status(agent: VehicleAgent) -> dict[str, Any]:
    return {**agent.status(), "cloud_online": agent.cloud_online}


def create_tablet_app(agent: VehicleAgent) -> FastAPI:
    """The tablet's API and web app over one agent."""
    app = FastAPI(title=f"Wayline vehicle {agent.vehicle_id}", version="1")
    replay = _Replay()
    registry = edge_registry(agent.node, agent.resequencer)
    settings = agent.settings
    guard_device_app(
        app,
        Pairing(agent.store, settings.pairing_code, device=agent.vehicle_id),
        registry,
        what="tablet app of vehicle",
        max_body_bytes=settings.http_max_body_bytes,
        body_limits=(
            (r"/api/stops/[^/]+/deliver", settings.http_max_body_bytes + settings.max_photo_bytes),
        ),
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

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        return _status(agent)

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
    ) -> Any:
        data = None
        if photo is not None:
            limit = agent.settings.max_photo_bytes
            data = await photo.read(limit + 1)
            if len(data) > limit:
                return JSONResponse(
                    {"error": f"photo is over the {limit // 1024} KiB limit; take a smaller one"},
                    status_code=413,
                )
            if not data:
                data = None  # an empty file part: the driver took no photo
        codes = tuple(c.strip() for c in barcodes.replace(",", "\n").splitlines() if c.strip())
        return agent.deliver(
            stop_id,
            event_id=event_id or None,
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
    def do_next(stop_id: str, body: _Simple | None = None) -> dict[str, Any]:
        event_id = body.event_id if body else None
        return replay.run(event_id, f"next {stop_id}", lambda: agent.do_next(stop_id))

    @app.post("/api/stops/{stop_id}/move")
    def move(stop_id: str, body: _Move) -> dict[str, Any]:
        return replay.run(
            body.event_id,
            f"move {stop_id} {body.position}",
            lambda: agent.move(stop_id, body.position, body.reason),
        )

    @app.post("/api/break")
    def take_break(body: _Simple | None = None) -> dict[str, Any]:
        return replay.run(body.event_id if body else None, "break", agent.take_break)

    app.mount("/", StaticFiles(directory=TABLET_DIR, html=True), name="tablet")
    return app
