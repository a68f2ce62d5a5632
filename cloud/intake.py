"""Order intake: one order or a batch, idempotent by the caller's order id.

The same id with the same body gets the same answer again; the same id with a different body
is a :class:`ConflictError` (409). A batch is one transaction: any bad order (impossible
window, unknown depot, negative size, an id twice in the batch, a barcode already taken)
refuses the whole batch with the order's id in the message, and nothing is written.
An order's ``day`` is its depot's local day (:mod:`cloud.local_days`); left out, it is the
depot's local day of the window's start, or of the moment the order arrives when it has no
window. An order for a region whose day is already planned queues a ``new_order`` trigger, so
the next rebalance places it (mid-day orders). Cancellations and customer reschedules queue
their trigger the same way; a field fact (delivered, failed, ...) is final and refuses both.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cloud.errors import ConflictError, InvalidError, NotFoundError
from cloud.geo import day_of, day_start
from cloud.network import first_error
from cloud.store import DONE, CloudStore
from sync import Store

__all__ = ["OrderIn", "ParcelIn", "WindowIn", "cancel", "reschedule", "take_orders"]

_Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]
_NonNegF = Annotated[float, Field(ge=0, le=10_000, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParcelIn(_Strict):
    parcel_id: _Id
    barcode: Annotated[str, Field(min_length=1, max_length=64)]
    weight_kg: _NonNegF = 0.0
    volume_l: _NonNegF = 0.0
    cold_chain: bool = False


class WindowIn(_Strict):
    """When service may start, in epoch seconds."""

    start: Annotated[int, Field(ge=0, lt=2**40)]
    end: Annotated[int, Field(ge=0, lt=2**40)]

    @model_validator(mode="after")
    def _ordered(self) -> WindowIn:
        if self.end < self.start:
            raise ValueError("impossible window: it ends before it starts")
        return self


class OrderIn(_Strict):
    """An order as a caller sends it. ``size`` (capacity units; default: total kg, rounded
    up) is what counts against a vehicle's capacity."""

    order_id: _Id
    depot_id: Annotated[str, Field(min_length=1, max_length=64)]
    day: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    """The depot's local day (None: the local day of the window's start, or of arrival)."""
    kind: Literal["delivery", "pickup"] = "delivery"
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    address: Annotated[str, Field(max_length=500)] | None = None
    customer: Annotated[str, Field(max_length=200)] | None = None
    window: WindowIn | None = None
    service_s: Annotated[int, Field(ge=0, le=86_400)] = 120
    size: Annotated[int, Field(ge=0)] | None = None
    parcels: Annotated[list[ParcelIn], Field(max_length=200)] = Field(default_factory=list)
    skills: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=16)] = Field(
        default_factory=list
    )
    optional: bool = False
    postponement_cost: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _consistent(self) -> OrderIn:
        ids = [p.parcel_id for p in self.parcels]
        if len(set(ids)) != len(ids):
            raise ValueError("a parcel id appears twice in the order")
        if self.day is not None:
            try:
                day_start(self.day)
            except ValueError:
                raise ValueError(f"no such day {self.day}") from None
        return self

    def day_at(self, zone_name: str, now_s: float) -> str:
        """The order's day in its depot's zone; its window must fall on it."""
        start = self.window.start if self.window is not None else now_s
        day = self.day or day_of(start, zone_name)
        if self.window is not None:
            d0 = day_start(day, zone_name)
            if self.window.end < d0 or self.window.start >= d0 + 2 * 86_400:
                raise InvalidError(
                    f"order {self.order_id!r}: impossible window: it does not fall on {day}"
                )
        return day

    def record(self) -> dict[str, Any]:
        """The order as stored: every default filled in, ``size`` resolved."""
        data = self.model_dump(mode="json")
        if data["size"] is None:
            data["size"] = math.ceil(sum(p.weight_kg for p in self.parcels))
        data["skills"] = sorted(set(data["skills"]))
        return data


def parse_order(raw: Any, where: str = "order") -> OrderIn:
    try:
        return OrderIn.model_validate(raw)
    except ValidationError as exc:
        oid = raw.get("order_id") if isinstance(raw, dict) else None
        raise InvalidError(first_error(exc, f"{where} {oid!r}" if oid else where)) from None


def take_orders(
    store: Store, db: CloudStore, orders: list[OrderIn], now_ms: int
) -> list[dict[str, Any]]:
    """Store a batch of orders in one transaction; return one answer per order, in order."""
    seen: set[str] = set()
    for o in orders:
        if o.order_id in seen:
            raise InvalidError(f"order {o.order_id!r} appears twice in this batch")
        seen.add(o.order_id)
    answers: list[dict[str, Any]] = []
    with store.transaction() as conn:
        depots = {o.depot_id for o in orders}
        unknown = sorted(d for d in depots if db.depot(d, conn) is None)
        if unknown:
            bad = next(o.order_id for o in orders if o.depot_id in unknown)
            raise InvalidError(f"order {bad!r}: unknown depot {unknown[0]!r}")
        zones = {d: db.depot_zone(d, conn) for d in depots}
        days = [o.day_at(zones[o.depot_id], now_ms / 1000) for o in orders]
        regions = {(o.depot_id, d) for o, d in zip(orders, days, strict=True)}
        planned = {r: _planned(conn, *r) for r in regions}
        for o, day in zip(orders, days, strict=True):
            answers.append(_take_one(conn, db, o, day, now_ms, planned[(o.depot_id, day)]))
    return answers


def _take_one(
    conn: sqlite3.Connection, db: CloudStore, o: OrderIn, day: str, now_ms: int, planned: bool
) -> dict[str, Any]:
    record = o.record()
    sha = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
    have = db.order(o.order_id, conn)
    if have is not None:
        if have["body_sha"] != sha:
            raise ConflictError(
                f"order {o.order_id!r} exists with a different body; use a new order id"
            )
        return dict(json.loads(have["answer"]))
    answer = {"order_id": o.order_id, "depot_id": o.depot_id, "day": day, "accepted": True}
    try:
        db.insert_order(conn, {**record, "day": day}, sha, answer, now_ms)
    except sqlite3.IntegrityError as exc:
        raise ConflictError(
            f"order {o.order_id!r}: a parcel id or barcode is taken ({exc})"
        ) from None
    if planned:
        db.add_trigger(conn, "new_order", o.depot_id, day, o.order_id, {}, now_ms)
    return answer


def _planned(conn: sqlite3.Connection, depot_id: str, day: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM decisions WHERE region = ? AND kind IN ('plan', 'rebalance') LIMIT 1",
        (f"{depot_id}/{day}",),
    ).fetchone()
    return row is not None


def cancel(store: Store, db: CloudStore, order_id: str, now_ms: int) -> dict[str, Any]:
    """Cancel an order not yet done; the next rebalance takes it off its route."""
    with store.transaction() as conn:
        row = _open_order(db, conn, order_id)
        if row["status"] == "cancelled":
            return {"order_id": order_id, "status": "cancelled"}
        db.set_order_status(conn, order_id, "cancelled", "cancelled by the customer", now_ms)
        db.add_trigger(conn, "cancellation", row["depot_id"], row["day"], order_id, {}, now_ms)
    return {"order_id": order_id, "status": "cancelled"}


def reschedule(
    store: Store, db: CloudStore, order_id: str, window: WindowIn, now_ms: int
) -> dict[str, Any]:
    """A customer's new window; the next rebalance re-plans the order's region."""
    with store.transaction() as conn:
        row = _open_order(db, conn, order_id)
        if row["status"] == "cancelled":
            raise ConflictError(f"order {order_id!r} is cancelled")
        d0 = day_start(row["day"], db.depot_zone(row["depot_id"], conn))
        if window.end < d0 or window.start >= d0 + 2 * 86_400:
            raise InvalidError(f"impossible window: it does not fall on {row['day']}")
        db.set_window(conn, order_id, window.start, window.end)
        detail = {"start": window.start, "end": window.end}
        db.add_trigger(conn, "reschedule", row["depot_id"], row["day"], order_id, detail, now_ms)
    return {"order_id": order_id, "window": detail}


def _open_order(db: CloudStore, conn: sqlite3.Connection, order_id: str) -> dict[str, Any]:
    row = db.order(order_id, conn)
    if row is None:
        raise NotFoundError(f"no order {order_id!r}")
    if row["status"] in DONE and row["status"] != "cancelled":
        raise ConflictError(f"order {order_id!r} is already {row['status']}: a field fact is final")
    return row
