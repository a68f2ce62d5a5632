"""A region's planning inputs as plain JSON, and the planning problem rebuilt from them.

The snapshot is what a plan or rebalance decision records as its inputs: points, the travel
model, orders (windows as seconds of the day), vehicles with their cost models, the current
plan (warm start), what is pinned and why. :func:`problem_from_snapshot` turns it into a
:class:`cloud.planning.PlanningProblem` the same way every time, so replaying a decision
solves exactly the problem it solved.

**Loaded** (never moved to another van without an explicit hand-over): an order is loaded on
own van ``V`` when a ``loaded`` parcel scan put one of its parcels on ``V``, or when ``V``
has left the depot (a field fact on its route, or a position more than
``DEPARTED_M`` from the depot) and ``V`` had applied a plan version that held the order
(its sequence reports name a version at or after the one that gave it the order). A loaded
order is pinned to its van with its window relaxed (the van's own re-sequencing handles it);
if that van is broken down or gone, the order is held out with the reason "needs a
hand-over" until an operator hands it over (:func:`cloud.dispatch.Dispatcher.reassign`).
"""

from __future__ import annotations

import json
from typing import Any

from cloud.geo import TravelModel, day_start, haversine_m, matrices, matrices_sha, project_xy
from cloud.planning import (
    Carrier,
    GigCourier,
    Order,
    OrderKind,
    OwnVan,
    PlanningParams,
    PlanningProblem,
    SolverChoice,
    Vehicle,
)
from cloud.store import CloudStore

__all__ = [
    "DEPARTED_M",
    "build_snapshot",
    "params_from_dict",
    "problem_from_snapshot",
    "route_id_for",
]

DEPARTED_M = 500.0
"""A van further than this from its depot has left it."""


def route_id_for(vehicle_id: str, day: str) -> str:
    return f"{vehicle_id}-{day}"


def build_snapshot(
    db: CloudStore,
    depot_id: str,
    day: str,
    now_epoch_s: int,
    travel: TravelModel,
    stability_cost: int,
) -> dict[str, Any]:
    """The inputs of one region's plan, read from the store."""
    depot = db.depot(depot_id)
    assert depot is not None
    d0 = day_start(day, depot["timezone"])  # seconds of the depot's local day
    now = max(0, now_epoch_s - d0)
    home = (depot["lat"], depot["lon"])
    points: list[tuple[float, float]] = [home]

    def point(p: tuple[float, float]) -> int:
        points.append((round(p[0], 7), round(p[1], 7)))
        return len(points) - 1

    orders = db.region_orders(depot_id, day)
    by_id = {o["order_id"]: o for o in orders}
    current = {a["order_id"]: a for a in db.assignments(order_ids=list(by_id))}
    parcels = {
        k: {p["parcel_id"] for p in s["parcels"]} for k, s in db.stops_of(list(by_id)).items()
    }

    vehicles: list[dict[str, Any]] = []
    pinned: dict[str, str] = {}
    held: dict[str, str] = {}
    plan: dict[str, list[str]] = {}
    for f in db.fleets(depot_id):
        if f["kind"] == "3pl":
            t = f["terms"]
            up = f["status"] == "up"
            if up:
                vehicles.append(
                    {
                        "type": "carrier",
                        "id": f["fleet_id"],
                        "fleet": f["fleet_id"],
                        "depot": 0,
                        "price_per_stop": _carrier_price(t),
                        "daily_stops": t["daily_stops"],
                        "cutoff": t["cutoff_s"],
                    }
                )
    for v in db.fleet_vehicles(depot_id):
        vid, spec, terms = v["vehicle_id"], v["spec"], v["terms"]
        usable = v["status"] == "active" and v["fleet_status"] == "up"
        mine = [a for a in current.values() if a["vehicle_id"] == vid]
        if v["kind"] == "own":
            rid = route_id_for(vid, day)
            departed, start = _departure(db, vid, rid, home)
            applied = db.applied_version(vid, rid)
            on_van = db.loaded_parcels(vid)
            for a in mine:
                oid = a["order_id"]
                loaded = bool(parcels.get(oid, set()) & on_van) or (
                    departed and a["since_version"] is not None and applied >= a["since_version"]
                )
                if loaded and usable:
                    pinned[oid] = vid
                elif loaded:
                    held[oid] = f"loaded on {vid}, which is {v['status']}: needs a hand-over"
            if not usable:
                continue
            vehicles.append(
                {
                    "type": "own",
                    "id": vid,
                    "fleet": v["fleet_id"],
                    "depot": 0,
                    "start": point(start) if start is not None else None,
                    "capacity": spec["capacity"],
                    "shift_start": spec["shift_start_s"],
                    "shift_end": spec["shift_end_s"],
                    "fixed_cost": terms["fixed_cost"],
                    "cost_per_km": terms["cost_per_km"],
                    "cost_per_hour": terms["cost_per_hour"],
                    "skills": sorted(spec["skills"]),
                }
            )
            reported = [s[0] for s in db.reported_order(vid, rid)]
        else:
            if not usable:
                continue
            vehicles.append(
                {
                    "type": "gig",
                    "id": vid,
                    "fleet": v["fleet_id"],
                    "start": point((spec["lat"], spec["lon"])),
                    "capacity": spec["capacity"],
                    "available_from": spec["available_from_s"],
                    "available_until": spec["available_until_s"],
                    "price_per_drop": terms["price_per_drop"],
                    "skills": sorted(spec["skills"]),
                }
            )
            reported = []
        rank = {sid: k for k, sid in enumerate(reported)}
        mine.sort(key=lambda a: (rank.get(a["order_id"], len(rank)), a["position"]))
        if mine:
            plan[vid] = [a["order_id"] for a in mine if a["order_id"] not in held]
    for f in db.fleets(depot_id):
        if f["kind"] == "3pl" and f["status"] == "up":
            mine = sorted(
                (a for a in current.values() if a["vehicle_id"] == f["fleet_id"]),
                key=lambda a: a["position"],
            )
            if mine:
                plan[f["fleet_id"]] = [a["order_id"] for a in mine]

    out_orders = []
    for o in orders:
        oid = o["order_id"]
        if oid in held:
            continue
        ready = 0 if o["window_start"] is None else max(0, o["window_start"] - d0)
        due = None if o["window_end"] is None else max(0, o["window_end"] - d0)
        if oid in pinned:
            due = None  # loaded: it stays on its van, which re-sequences on its own
        out_orders.append(
            {
                "id": oid,
                "location": point((o["lat"], o["lon"])),
                "demand": o["size"],
                "kind": o["kind"],
                "ready": ready,
                "due": due,
                "service": o["service_s"],
                "optional": bool(o["optional"]),
                "postponement_cost": o["postponement_cost"],
                "skills": json.loads(o["skills"]),
                "pinned": pinned.get(oid),
            }
        )
    usable_ids = {v["id"] for v in vehicles}
    return {
        "depot_id": depot_id,
        "day": day,
        "day_start": d0,
        "now": now,
        "travel": {"speed_kmh": travel.speed_kmh, "road_factor": travel.road_factor},
        "points": [list(p) for p in points],
        "orders": out_orders,
        "vehicles": vehicles,
        "current_plan": {k: v for k, v in plan.items() if k in usable_ids},
        "previous": {oid: a["vehicle_id"] for oid, a in sorted(current.items())},
        "held": held,
        "stability_cost": stability_cost,
    }


def _carrier_price(t: dict[str, Any]) -> int:
    return int(t["price_per_stop"] + round((1 - t["on_time_rate"]) * t["late_cost"]))


def _departure(
    db: CloudStore, vid: str, rid: str, home: tuple[float, float]
) -> tuple[bool, tuple[float, float] | None]:
    pos = db.position_of(vid)
    away = pos is not None and haversine_m(home, (pos["lat"], pos["lon"])) > DEPARTED_M
    departed = away or db.facts_on_route(vid, rid) > 0
    return departed, ((pos["lat"], pos["lon"]) if away and pos else None)


def problem_from_snapshot(snap: dict[str, Any]) -> tuple[PlanningProblem, str]:
    """The planning problem of a snapshot, and the SHA-256 of its travel matrices."""
    travel = TravelModel(**snap["travel"])
    points = [tuple(p) for p in snap["points"]]
    dur, dist = matrices(points, travel)  # type: ignore[arg-type]
    orders = tuple(
        Order(
            id=o["id"],
            location=o["location"],
            demand=o["demand"],
            kind=OrderKind(o["kind"]),
            ready=o["ready"],
            due=o["due"],
            service=o["service"],
            optional=o["optional"],
            postponement_cost=o["postponement_cost"],
            skills=frozenset(o["skills"]),
            pinned_vehicle=o["pinned"],
        )
        for o in snap["orders"]
    )
    problem = PlanningProblem(
        durations=dur,
        distances=dist,
        orders=orders,
        vehicles=tuple(_vehicle(v) for v in snap["vehicles"]),
        now=snap["now"],
        coordinates=project_xy(points, points[0]),  # type: ignore[arg-type]
        current_plan=snap["current_plan"],
        stability_cost=snap["stability_cost"],
    )
    return problem, matrices_sha(dur, dist)


def _vehicle(v: dict[str, Any]) -> Vehicle:
    skills = frozenset(v.get("skills", ()))
    if v["type"] == "own":
        return OwnVan(
            id=v["id"],
            depot=v["depot"],
            capacity=v["capacity"],
            shift_start=v["shift_start"],
            shift_end=v["shift_end"],
            fixed_cost=v["fixed_cost"],
            cost_per_km=v["cost_per_km"],
            cost_per_hour=v["cost_per_hour"],
            skills=skills,
            start=v["start"],
            fleet=v["fleet"],
        )
    if v["type"] == "carrier":
        return Carrier(
            id=v["id"],
            depot=v["depot"],
            price_per_stop=v["price_per_stop"],
            daily_stops=v["daily_stops"],
            cutoff=v["cutoff"],
            fleet=v["fleet"],
        )
    return GigCourier(
        id=v["id"],
        start=v["start"],
        capacity=v["capacity"],
        available_from=v["available_from"],
        available_until=v["available_until"],
        price_per_drop=v["price_per_drop"],
        skills=skills,
        fleet=v["fleet"],
    )


def params_from_dict(d: dict[str, Any]) -> PlanningParams:
    return PlanningParams(
        time_limit_s=d["time_limit_s"],
        seed=d["seed"],
        solver=SolverChoice(d["solver"]),
        vehicle_fixed_cost=d.get("vehicle_fixed_cost", 0),
        required_drop_penalty=d.get("required_drop_penalty", 0),
        iteration_limit=d.get("iteration_limit"),
    )
