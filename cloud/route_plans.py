"""Route plans for own vans: built from the order book, compared, stored and sent down.

A van's plan lists its orders' stops (stop id = order id) with windows, service times and
parcels. A new version goes down only when the van's *stop set* changes (a stop added or
removed, or a window or service time changed): a new order of the same stops is not sent,
since the van re-sequences on its own and reports its order back (DESIGN rule 5).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from cloud.geo import day_start
from cloud.store import CloudStore
from protocol import Location, Parcel, PlannedStop, RoutePlan, TimeWindow
from sync import Tx

__all__ = ["build_van_plan", "emit_plan", "stop_set", "with_load_positions", "without_stop"]


def build_van_plan(
    db: CloudStore,
    conn: sqlite3.Connection,
    *,
    vehicle: dict[str, Any],
    depot: dict[str, Any],
    day: str,
    route_id: str,
    version: int,
    order_ids: list[str],
) -> RoutePlan:
    d0 = day_start(day, depot["timezone"])  # shifts are seconds of the depot's local day
    spec = vehicle["spec"]
    rows = db.stops_of(order_ids, conn)
    depth = db.load_positions(
        [p["parcel_id"] for oid in order_ids for p in rows[oid]["parcels"]], conn
    )
    stops = []
    for oid in order_ids:
        s = rows[oid]
        window = None
        if s["window_start"] is not None and s["window_end"] is not None:
            window = TimeWindow(start=s["window_start"], end=s["window_end"])
        stops.append(
            PlannedStop(
                stop_id=s["stop_id"],
                order_id=oid,
                kind=s["kind"],
                location=Location(lat=s["lat"], lon=s["lon"], address=s["address"]),
                window=window,
                service_s=s["service_s"],
                parcels=tuple(
                    Parcel(
                        parcel_id=p["parcel_id"],
                        barcode=p["barcode"],
                        weight_kg=p["weight_kg"],
                        volume_l=p["volume_l"],
                        cold_chain=bool(p["cold_chain"]),
                        load_position=depth.get(p["parcel_id"]),
                    )
                    for p in s["parcels"]
                ),
                customer=s["customer"],
            )
        )
    return RoutePlan(
        route_id=route_id,
        vehicle_id=vehicle["vehicle_id"],
        version=version,
        day=day,
        depot=Location(lat=depot["lat"], lon=depot["lon"], address=depot["address"]),
        start_at=d0 + spec["shift_start_s"],
        end_at=d0 + spec["shift_end_s"],
        capacity_kg=float(min(spec["capacity"], 10_000)),
        stops=tuple(stops),
    )


def with_load_positions(
    db: CloudStore, conn: sqlite3.Connection, plan: RoutePlan
) -> RoutePlan | None:
    """The next version of ``plan`` with each parcel's load position from the depot's
    ``loaded`` scans, so the van's re-sequencer can weigh how deep a parcel sits; None
    when the positions are already what the van has."""
    depth = db.load_positions([p.parcel_id for s in plan.stops for p in s.parcels], conn)
    stops = tuple(
        s.model_copy(
            update={
                "parcels": tuple(
                    p.model_copy(update={"load_position": depth.get(p.parcel_id, p.load_position)})
                    for p in s.parcels
                )
            }
        )
        for s in plan.stops
    )
    if stops == plan.stops:
        return None
    return plan.model_copy(update={"version": plan.version + 1, "stops": stops})


def stop_set(plan: RoutePlan | None) -> set[tuple[Any, ...]]:
    if plan is None:
        return set()
    return {(s.stop_id, s.window, s.service_s, s.parcels) for s in plan.stops}


def without_stop(plan: RoutePlan, stop_id: str) -> RoutePlan:
    """The next version of ``plan`` without one stop (field facts win)."""
    return plan.model_copy(
        update={
            "version": plan.version + 1,
            "stops": tuple(s for s in plan.stops if s.stop_id != stop_id),
        }
    )


def emit_plan(
    db: CloudStore, tx: Tx, plan: RoutePlan, now_ms: int, depot_id: str | None = None
) -> int:
    """Store a plan version and put it in the van's outbox, in the caller's transaction.

    A copy goes to the depot sorter that loads the van (the device named ``depot_id``, when
    it runs an agent), or to every known sorter when the van's depot is not one of them:
    each sorter keeps the plans whose depot is its own and indexes the rest, so it can tell
    a parcel scanned at the wrong depot where it belongs.
    """
    db.save_plan(tx.conn, plan, now_ms)
    sorters = db.depot_devices(tx.conn)
    for sorter in [depot_id] if depot_id in sorters else sorters:
        tx.emit(sorter, plan)
    return tx.emit(plan.vehicle_id, plan).seq
