"""The operations API: the exception queue and its approvals, customer notifications and
windows, outgoing webhooks, carrier-scoped orders, API tokens, and the dashboard's summary.

Every route needs a role (:mod:`cloud.api_access`). An approval for an exception someone
already decided answers 409 naming who decided it and how.

A webhook target belongs to whoever registered it (its ``owner``: the API token, or the
dashboard user): an integration lists, reads and removes only its own, and another's is 404
as if it were not there; ``ops`` sees and manages them all. A target's URL, and a customer's
``webhook_url``, must be a public ``https`` address unless the coordinator's
``webhook_allow_private`` setting allows others (:mod:`cloud.ops.webhook_addresses`).
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from cloud.coordinator import Coordinator
from cloud.errors import InvalidError, NotFoundError
from cloud.ops import DeliveryError, Principal, Role, visible_to
from cloud.ops.webhook_addresses import check_target

__all__ = ["ops_router"]


class DecideRequest(BaseModel):
    why: str = Field(default="", max_length=2000)
    by: str | None = Field(default=None, max_length=200)
    """Defaults to the caller's name."""


class OverrideRequest(DecideRequest):
    option: str = Field(min_length=1, max_length=100)


class TaskDoneRequest(BaseModel):
    note: str = Field(default="", max_length=2000)
    by: str | None = Field(default=None, max_length=200)


class TargetRequest(BaseModel):
    url: str = Field(min_length=8, max_length=2000)
    events: list[str] = Field(default_factory=list, max_length=10)


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    roles: list[Literal["ops", "viewer", "integration", "carrier"]] = Field(min_length=1)
    carrier_id: str | None = None


class ContactRequest(BaseModel):
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    push_token: str | None = Field(default=None, max_length=400)
    webhook_url: str | None = Field(default=None, max_length=2000)
    preferences: list[Literal["email", "sms", "push", "webhook", "log"]] = Field(
        default_factory=lambda: ["email"], min_length=1
    )


def ops_router(c: Coordinator) -> APIRouter:
    r = APIRouter(prefix="/v1")
    ops = c.operations
    db = c.db
    access = ops.access
    reader = Depends(access.need(Role.VIEWER, Role.INTEGRATION, Role.OPS, Role.CARRIER))
    staff = Depends(access.need(Role.VIEWER, Role.INTEGRATION, Role.OPS))
    operator = Depends(access.need(Role.OPS))
    integrator = Depends(access.need(Role.OPS, Role.INTEGRATION))

    def scoped(p: Principal, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return visible_to(p, items, lambda i: i.get("carrier_id"))

    def owns(p: Principal, target: dict[str, Any]) -> bool:
        return Role.OPS in p.roles or target.get("owner") == p.subject

    def own_target(p: Principal, target_id: str) -> None:
        """404 unless ``target_id`` is a target ``p`` may see (removed ones included)."""
        rows = db.query("SELECT owner FROM webhook_targets WHERE target_id = ?", (target_id,))
        if not rows or not owns(p, rows[0]):
            raise NotFoundError(f"no webhook target {target_id!r}")

    # -- exceptions ------------------------------------------------------------------------

    @r.get("/exceptions", tags=["exceptions"])
    def exceptions(
        p: Annotated[Principal, reader],
        queue: bool = True,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[dict[str, Any]]:
        """The queue (items waiting for a person), or all items / one status."""
        return scoped(p, db.exception_items(status, limit, queue=queue and status is None))

    @r.get("/exceptions/stats", tags=["exceptions"])
    def exception_stats(_p: Annotated[Principal, staff]) -> dict[str, Any]:
        """Incidents by the policy's action and the share resolved without a person."""
        return ops.exceptions.stats()

    @r.get("/exceptions/{item_id}", tags=["exceptions"])
    def exception(item_id: str, p: Annotated[Principal, reader]) -> dict[str, Any]:
        item = db.exception_item(item_id)
        if item is None or not scoped(p, [item]):
            raise NotFoundError(f"no exception {item_id!r}")
        return {
            **item,
            "incidents": db.incidents_of(item_id),
            "actions": db.actions_of(item_id),
        }

    @r.get("/actions", tags=["exceptions"])
    def actions(
        _p: Annotated[Principal, staff],
        status: Literal["queued", "waiting", "done", "failed", "skipped"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """What exception decisions carried out, newest first, with their outcome."""
        return db.actions(status, limit)

    @r.get("/tasks", tags=["exceptions"])
    def tasks(
        _p: Annotated[Principal, staff],
        status: Literal["open", "done"] | None = "open",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Instructions ops staff carry out themselves (call a driver, bring a parcel back)."""
        return db.tasks(status, limit)

    @r.post("/tasks/{task_id}/done", tags=["exceptions"])
    def task_done(
        task_id: str, p: Annotated[Principal, operator], req: TaskDoneRequest | None = None
    ) -> dict[str, Any]:
        """Mark a task done; 409 if someone already did."""
        req = req or TaskDoneRequest()
        return ops.finish_task(task_id, f"ops:{req.by or p.name}", req.note)

    def _decide(item_id: str, verb: str, p: Principal, req: DecideRequest, option: str | None):
        by = req.by or p.name
        return ops.exceptions.decide(item_id, verb, by, req.why, option)

    @r.post("/exceptions/{item_id}/approve", tags=["exceptions"])
    def approve(
        item_id: str, p: Annotated[Principal, operator], req: DecideRequest | None = None
    ) -> dict[str, Any]:
        """Carry out the recommended option; recorded with who and why."""
        return _decide(item_id, "approve", p, req or DecideRequest(), None)

    @r.post("/exceptions/{item_id}/reject", tags=["exceptions"])
    def reject(
        item_id: str, p: Annotated[Principal, operator], req: DecideRequest
    ) -> dict[str, Any]:
        """Carry out nothing; a reason is required."""
        return _decide(item_id, "reject", p, req, None)

    @r.post("/exceptions/{item_id}/override", tags=["exceptions"])
    def override(
        item_id: str, p: Annotated[Principal, operator], req: OverrideRequest
    ) -> dict[str, Any]:
        """Carry out another offered option; a reason is required."""
        return _decide(item_id, "override", p, req, req.option)

    # -- customers -------------------------------------------------------------------------

    @r.get("/notifications", tags=["customers"])
    def notifications(
        p: Annotated[Principal, reader],
        order_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[dict[str, Any]]:
        """Customer notifications, each with the ETA change that caused it."""
        rows = db.notifications(order_id, limit)
        if p.carrier_id is not None:
            rows = [n for n in rows if db.carrier_of(n["order_id"]) == p.carrier_id]
        return rows

    @r.get("/orders/{order_id}/eta", tags=["customers"])
    def order_eta(order_id: str, p: Annotated[Principal, reader]) -> dict[str, Any]:
        """The customer-facing window beside the operational ETA."""
        access.check_carrier(p, order_id)
        found = ops.etas.window_of(order_id)
        if found is None:
            raise NotFoundError(f"no ETA for order {order_id!r} yet")
        return found

    @r.put("/customers/{customer_id}/contact", tags=["customers"])
    def put_contact(
        customer_id: str, req: ContactRequest, _p: Annotated[Principal, integrator]
    ) -> dict[str, Any]:
        """How a customer prefers to hear about their delivery (first working one is used)."""
        if req.webhook_url is not None:
            try:
                check_target(req.webhook_url, allow_private=ops.settings.webhook_allow_private)
            except DeliveryError as exc:
                raise InvalidError(f"webhook_url refused: {exc.reason}") from None
        row = {"customer_id": customer_id, **req.model_dump(), "updated_ms": c.now_ms()}
        with c.store.transaction() as conn:
            db.put_contact(conn, row)
        return row

    # -- carriers --------------------------------------------------------------------------

    @r.get("/carrier/orders", tags=["carriers"])
    def carrier_orders(
        p: Annotated[Principal, reader], carrier_id: str | None = None
    ) -> list[dict[str, Any]]:
        """A carrier's orders: its own for a carrier token; any carrier's for staff."""
        if p.carrier_id is not None:
            if carrier_id not in (None, p.carrier_id):
                raise HTTPException(403, f"{p.name} is scoped to carrier {p.carrier_id}")
            carrier_id = p.carrier_id
        if carrier_id is None:
            raise HTTPException(422, "carrier_id is required")
        return db.carrier_orders(carrier_id)

    # -- webhooks --------------------------------------------------------------------------

    @r.post("/webhooks", status_code=201, tags=["webhooks"])
    def add_target(req: TargetRequest, p: Annotated[Principal, integrator]) -> dict[str, Any]:
        """Register a target; events: delivery.confirmed, exception.raised, eta.changed (none:
        all). The answer holds the signing secret, shown once."""
        return ops.register_target(req.url, req.events, p.name, p.carrier_id, owner=p.subject)

    @r.get("/webhooks", tags=["webhooks"])
    def targets(p: Annotated[Principal, integrator]) -> list[dict[str, Any]]:
        """The caller's targets (every one for ``ops``), each with its deliveries by status
        (pending, delivered, failed)."""
        return [t for t in ops.webhook_targets() if owns(p, t)]

    @r.get("/webhooks/{target_id}/deliveries", tags=["webhooks"])
    def deliveries(
        target_id: str,
        p: Annotated[Principal, integrator],
        status: Literal["pending", "delivered", "failed"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """A target's deliveries, newest first, with attempts and the last error."""
        own_target(p, target_id)
        return ops.webhook_deliveries(target_id, status, limit)

    @r.post("/webhooks/deliveries/{delivery_id}/redeliver", tags=["webhooks"])
    def redeliver(delivery_id: str, p: Annotated[Principal, integrator]) -> dict[str, Any]:
        """Send a failed delivery again now, with the same webhook-id (409 if not failed)."""
        row = db.webhook_delivery(delivery_id)
        if row is None:
            raise NotFoundError(f"no webhook delivery {delivery_id!r}")
        try:
            own_target(p, row["target_id"])
        except NotFoundError:
            raise NotFoundError(f"no webhook delivery {delivery_id!r}") from None
        return ops.redeliver(delivery_id)

    @r.delete("/webhooks/{target_id}", tags=["webhooks"])
    def remove_target(target_id: str, p: Annotated[Principal, integrator]) -> dict[str, Any]:
        """Stop one of the caller's targets (404 for another's)."""
        own_target(p, target_id)
        ops.remove_target(target_id)
        return {"target_id": target_id, "active": False}

    # -- tokens ----------------------------------------------------------------------------

    @r.post("/tokens", status_code=201, tags=["access"])
    def issue_token(req: TokenRequest, _p: Annotated[Principal, operator]) -> dict[str, Any]:
        """A new API token; the clear text is in this answer only."""
        clear, record = access.issue(req.name, req.roles, carrier_id=req.carrier_id)
        return {
            "token": clear,
            "token_id": record.token_id,
            "roles": list(record.roles),
            "carrier_id": record.carrier_id,
        }

    @r.delete("/tokens/{token_id}", tags=["access"])
    def revoke_token(token_id: str, _p: Annotated[Principal, operator]) -> dict[str, Any]:
        access.revoke(token_id)
        return {"token_id": token_id, "revoked": True}

    @r.get("/whoami", tags=["access"])
    def whoami(p: Annotated[Principal, reader]) -> dict[str, Any]:
        return access.describe(p)

    # -- dashboard -------------------------------------------------------------------------

    @r.get("/dashboard/summary", tags=["dashboard"])
    def summary(p: Annotated[Principal, staff], q: str | None = None) -> dict[str, Any]:
        """Everything the ops dashboard shows, in one read."""
        vehicles = db.vehicle_overview()
        for v in vehicles:
            v["pending_sync"] = c.node.pending(v["vehicle_id"])
        routes = [
            {
                "vehicle_id": plan.vehicle_id,
                "route_id": plan.route_id,
                "version": plan.version,
                "depot": [plan.depot.lat, plan.depot.lon],
                "stops": [[s.stop_id, s.location.lat, s.location.lon] for s in plan.stops],
            }
            for plan in db.current_plans()
        ]
        done = {
            r["stop_id"]: r["status"] for r in db.query("SELECT stop_id, status FROM stop_facts")
        }
        for route in routes:
            for s in route["stops"]:
                s.append(done.get(s[0], "open"))
        return {
            "now_ms": c.now_ms(),
            "user": access.describe(p),
            "sync": {"connected": c.node.connected, "pending_down": c.node.pending()},
            "depots": db.depots(),
            "vehicles": vehicles,
            "routes": routes,
            "orders": db.orders_by_state(),
            "fleets": db.fleet_overview(),
            "queue": db.exception_items(queue=True, limit=100),
            "stats": ops.exceptions.stats(),
            "decisions": db.search_decisions(q, 50),
            "actions": db.recent_actions(20),
            "tasks": db.tasks("open", 50),
            "notifications": db.notifications(None, 20),
        }

    return r
