"""The coordinator's REST API for the network, orders, planning and decisions.

Orders are idempotent by the caller's id: ``POST /v1/orders`` with the same id and body
answers the same (201 both times); the same id with a different body is 409. Bad input is
422 with a one-line reason; an unknown id 404. A day left out of a request is the depot's local
day now (:mod:`cloud.local_days`). ``POST /v1/plan`` for a depot's day that is planned already
(by the schedule at its cut-off, or an earlier call) answers that plan's decision.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field

from cloud.coordinator import Coordinator
from cloud.decisions import replay
from cloud.errors import ConflictError, InvalidError, NotFoundError
from cloud.geo import day_of
from cloud.intake import WindowIn, cancel, parse_order, reschedule, take_orders
from cloud.network import FleetIn, VehicleIn, parse_depot, validate_spec, validate_terms
from cloud.store import DONE

__all__ = ["dispatch_router"]

log = logging.getLogger(__name__)


class PlanRequest(BaseModel):
    day: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    depot_ids: list[str] | None = None
    approved_by: str = "api"


class AssignRequest(BaseModel):
    order_ids: list[str] = Field(min_length=1, max_length=1000)
    vehicle_id: str
    approved_by: str = Field(min_length=1, max_length=200)
    handover: bool = False


class OutcomeRequest(BaseModel):
    status: Literal["delivered", "failed", "picked_up"]
    by: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=200)


class StatusRequest(BaseModel):
    day: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    reason: str = ""


def dispatch_router(c: Coordinator) -> APIRouter:
    r = APIRouter(prefix="/v1")
    db = c.db

    def today(day: str | None, depot_id: str | None) -> str:
        return day or day_of(c.clock(), db.depot_zone(depot_id or ""))

    @r.post("/depots", status_code=201)
    def put_depot(raw: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        try:
            depot = parse_depot(raw)
        except InvalidError as exc:
            log.warning("depot refused: %s", exc)
            raise
        with c.store.transaction() as conn:
            db.put_depot(
                conn, depot.depot_id, depot.name, depot.lat, depot.lon, depot.address,
                c.now_ms(), timezone=depot.timezone, cutoff=depot.cutoff,
            )  # fmt: skip
        return {
            **depot.model_dump(),
            "timezone": depot.timezone or db.default_timezone,
            "cutoff": depot.cutoff or db.default_cutoff,
        }

    @r.get("/depots")
    def depots() -> list[dict[str, Any]]:
        return db.depots()

    @r.post("/fleets", status_code=201)
    def put_fleet(fleet: FleetIn) -> dict[str, Any]:
        terms = validate_terms(fleet.kind, fleet.terms)
        with c.store.transaction() as conn:
            if db.depot(fleet.depot_id, conn) is None:
                raise InvalidError(f"unknown depot {fleet.depot_id!r}")
            db.put_fleet(conn, fleet.fleet_id, fleet.kind, fleet.depot_id, terms, c.now_ms())
        return {**fleet.model_dump(), "terms": terms}

    @r.get("/fleets")
    def fleets() -> list[dict[str, Any]]:
        return db.fleets()

    @r.post("/fleets/{fleet_id}/vehicles", status_code=201)
    def put_vehicle(fleet_id: str, vehicle: VehicleIn) -> dict[str, Any]:
        f = db.fleet(fleet_id)
        if f is None:
            raise NotFoundError(f"no fleet {fleet_id!r}")
        spec = validate_spec(f["kind"], vehicle.spec)
        with c.store.transaction() as conn:
            db.put_vehicle(conn, vehicle.vehicle_id, fleet_id, spec, c.now_ms())
        return {"vehicle_id": vehicle.vehicle_id, "fleet_id": fleet_id, "spec": spec}

    @r.post("/fleets/{fleet_id}/outage")
    def fleet_down(fleet_id: str, req: StatusRequest, rebalance: bool = True) -> dict[str, Any]:
        c.dispatch.fleet_status(fleet_id, "down", today(req.day, _fleet_depot(c, fleet_id)))
        return {"fleet_id": fleet_id, "status": "down", "rebalanced": _maybe(c, rebalance)}

    @r.post("/fleets/{fleet_id}/restore")
    def fleet_up(fleet_id: str, req: StatusRequest, rebalance: bool = True) -> dict[str, Any]:
        c.dispatch.fleet_status(fleet_id, "up", today(req.day, _fleet_depot(c, fleet_id)))
        return {"fleet_id": fleet_id, "status": "up", "rebalanced": _maybe(c, rebalance)}

    @r.post("/vehicles/{vehicle_id}/breakdown")
    def breakdown(vehicle_id: str, req: StatusRequest, rebalance: bool = True) -> dict[str, Any]:
        day = today(req.day, _vehicle_depot(c, vehicle_id))
        if not c.dispatch.vehicle_status(vehicle_id, "broken", day, req.reason):
            raise NotFoundError(f"no vehicle {vehicle_id!r}")
        return {"vehicle_id": vehicle_id, "status": "broken", "rebalanced": _maybe(c, rebalance)}

    @r.post("/orders", status_code=201)
    def post_order(order: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        return take_orders(c.store, db, [parse_order(order)], c.now_ms())[0]

    @r.post("/orders/batch", status_code=201)
    def post_orders(orders: Annotated[list[dict[str, Any]], Body()]) -> list[dict[str, Any]]:
        parsed = [parse_order(o, f"item {k}") for k, o in enumerate(orders)]
        return take_orders(c.store, db, parsed, c.now_ms())

    @r.get("/orders")
    def list_orders(
        day: str | None = None,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[dict[str, Any]]:
        return db.orders_list(day, status, limit)

    @r.get("/orders/{order_id}")
    def get_order(order_id: str) -> dict[str, Any]:
        row = db.order(order_id)
        if row is None:
            raise NotFoundError(f"no order {order_id!r}")
        row.pop("body", None)
        return {**row, "assignment": db.assignment(order_id)}

    @r.delete("/orders/{order_id}")
    def cancel_order(order_id: str) -> dict[str, Any]:
        return cancel(c.store, db, order_id, c.now_ms())

    @r.post("/orders/{order_id}/reschedule")
    def reschedule_order(order_id: str, window: WindowIn) -> dict[str, Any]:
        return reschedule(c.store, db, order_id, window, c.now_ms())

    @r.post("/orders/{order_id}/outcome")
    def order_outcome(order_id: str, req: OutcomeRequest) -> dict[str, Any]:
        """A 3PL's or courier's system reports what happened at a stop (a field fact)."""
        with c.store.transaction() as conn:
            row = db.order(order_id, conn)
            if row is None:
                raise NotFoundError(f"no order {order_id!r}")
            if row["status"] in DONE:
                if row["status"] == req.status:
                    return {"order_id": order_id, "status": req.status, "duplicate": True}
                raise ConflictError(f"order {order_id!r} is already {row['status']}")
            db.set_order_status(conn, order_id, req.status, req.reason, c.now_ms(), req.by)
        return {"order_id": order_id, "status": req.status, "duplicate": False}

    @r.post("/vehicles/{vehicle_id}/restore")
    def vehicle_back(vehicle_id: str, req: StatusRequest, rebalance: bool = True) -> dict[str, Any]:
        day = today(req.day, _vehicle_depot(c, vehicle_id))
        if not c.dispatch.vehicle_status(vehicle_id, "active", day, req.reason):
            raise NotFoundError(f"no vehicle {vehicle_id!r}")
        return {"vehicle_id": vehicle_id, "status": "active", "rebalanced": _maybe(c, rebalance)}

    @r.post("/assign")
    def assign(req: AssignRequest) -> dict[str, Any]:
        return c.dispatch.reassign(req.order_ids, req.vehicle_id, req.approved_by, req.handover)

    @r.get("/assignments")
    def assignments(vehicle_id: str) -> list[dict[str, Any]]:
        return db.assignments(vehicle_id=vehicle_id)

    @r.post("/plan")
    def plan_day(req: PlanRequest) -> list[dict[str, Any]]:
        return c.dispatch.plan_day(req.day, req.depot_ids, f"api:{req.approved_by}")

    @r.post("/rebalance")
    def rebalance() -> list[dict[str, Any]]:
        return c.dispatch.rebalance_pending()

    @r.get("/decisions")
    def decisions(
        kind: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[dict[str, Any]]:
        return db.decisions(kind, limit)

    @r.get("/decisions/{decision_id}")
    def decision(decision_id: str) -> dict[str, Any]:
        d = db.decision(decision_id)
        if d is None:
            raise NotFoundError(f"no decision {decision_id!r}")
        return d

    @r.post("/decisions/{decision_id}/replay")
    def replay_decision(decision_id: str) -> dict[str, Any]:
        return replay(db, decision_id)

    return r


def _fleet_depot(c: Coordinator, fleet_id: str) -> str | None:
    f = c.db.fleet(fleet_id)
    return None if f is None else str(f["depot_id"])


def _vehicle_depot(c: Coordinator, vehicle_id: str) -> str | None:
    v = c.db.vehicle(vehicle_id)
    return None if v is None else str(v["depot_id"])


def _maybe(c: Coordinator, rebalance: bool) -> list[dict[str, Any]]:
    return c.dispatch.rebalance_pending() if rebalance else []
