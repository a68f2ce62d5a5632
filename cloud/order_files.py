"""Orders from files: CSV, JSON, and Solomon/Homberger instances as a day's orders.

CSV: one row per order with columns ``order_id, depot_id, day, lat, lon`` and optionally
``kind, address, customer, window_start, window_end`` (epoch s), ``service_s, size,
optional, postponement_cost, skills`` (``;``-separated) and one parcel per row as
``parcel_id, barcode, weight_kg``. JSON: a list of orders in the REST body's shape, or
``{"orders": [...]}``.

Solomon/Homberger: customer ``c`` becomes order ``{prefix}{c}``; coordinates map onto the
map around the depot (the file's depot on it, 1 unit = ``unit_m`` metres, rounded to about
1 cm), times start at ``start_s`` seconds into the day with 1 time unit = the travel time of
1 unit at the travel model's speed, so the file's windows keep their meaning; demand is the
order's size and its one parcel's weight in kg. Deterministic: the same file gives the same
orders.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from cloud.errors import InvalidError
from cloud.geo import TravelModel, day_start, solomon_point
from cloud.intake import OrderIn, parse_order
from routing import InstanceError, read_instance

__all__ = ["read_orders_file", "solomon_orders"]


def read_orders_file(path: str | Path) -> list[OrderIn]:
    """Orders from a ``.csv`` or ``.json`` file, validated (the row or index is named)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidError(f"{p}: {exc.strerror}") from None
    if p.suffix.lower() == ".csv":
        rows = [_csv_order(r) for r in csv.DictReader(text.splitlines())]
        return [parse_order(r, f"{p.name} row {k}") for k, r in enumerate(rows, start=2)]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidError(f"{p}: not JSON: {exc}") from None
    items = data.get("orders") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InvalidError(f"{p}: expected a list of orders or {{'orders': [...]}}")
    return [parse_order(r, f"{p.name} item {k}") for k, r in enumerate(items)]


def _csv_order(row: dict[str, str]) -> dict[str, Any]:
    r = {k.strip(): (v or "").strip() for k, v in row.items() if k}
    out: dict[str, Any] = {k: r[k] for k in ("order_id", "depot_id", "day") if k in r}
    for k in ("lat", "lon"):
        out[k] = _number(r.get(k), float, k)
    for k in ("kind", "address", "customer"):
        if r.get(k):
            out[k] = r[k]
    if r.get("window_start") or r.get("window_end"):
        out["window"] = {
            "start": _number(r.get("window_start"), int, "window_start"),
            "end": _number(r.get("window_end"), int, "window_end"),
        }
    for k in ("service_s", "size", "postponement_cost"):
        if r.get(k):
            out[k] = _number(r[k], int, k)
    if r.get("optional"):
        out["optional"] = r["optional"].lower() in ("1", "true", "yes")
    if r.get("skills"):
        out["skills"] = [s for s in r["skills"].split(";") if s]
    if r.get("barcode"):
        out["parcels"] = [
            {
                "parcel_id": r.get("parcel_id") or r["barcode"],
                "barcode": r["barcode"],
                "weight_kg": _number(r.get("weight_kg") or "0", float, "weight_kg"),
            }
        ]
    return out


def _number(value: str | None, kind: type, name: str) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError):
        return value  # the model names the field and says what is wrong


def solomon_orders(
    path: str | Path,
    *,
    depot_id: str,
    depot: tuple[float, float],
    day: str,
    travel: TravelModel,
    unit_m: float = 250.0,
    start_s: int = 8 * 3600,
    prefix: str = "c",
) -> list[OrderIn]:
    """A Solomon/Homberger file's customers as one day's orders at ``depot``."""
    try:
        inst = read_instance(path)
    except (InstanceError, OSError) as exc:
        raise InvalidError(f"{path}: {exc}") from None
    unit_s = unit_m * travel.road_factor * travel.seconds_per_metre()
    d0 = day_start(day) + start_s
    origin = (inst.depot.x, inst.depot.y)
    out = []
    for c in inst.customers[1:]:
        lat, lon = solomon_point(c.x, c.y, origin, depot, unit_m)
        oid = f"{prefix}{c.number}"
        raw = {
            "order_id": oid,
            "depot_id": depot_id,
            "day": day,
            "lat": lat,
            "lon": lon,
            "window": {"start": d0 + round(c.ready * unit_s), "end": d0 + round(c.due * unit_s)},
            "service_s": round(c.service * unit_s),
            "size": c.demand,
            "parcels": [
                {"parcel_id": f"{oid}-p1", "barcode": f"{inst.name}-{oid}", "weight_kg": c.demand}
            ],
        }
        out.append(parse_order(raw, f"{inst.name} customer {c.number}"))
    return out
