"""The world's network and orders as the cloud's REST API takes them.

Money goes to the cloud in cents (its terms are integers). Every order is one stop with one
parcel (size 1: the scenario's capacities count parcels); windows are epoch seconds of the
scenario's day. The 3PL's daily stops are its vans times their capacity.
"""

from __future__ import annotations

from typing import Any

from firmware_sim.world import Order, Scenario, World

__all__ = ["order_body", "register_network"]


def register_network(api: Any, world: World) -> None:
    s = world.scenario
    for d in s.depots:
        api.post(
            "/v1/depots", {"depot_id": d.depot_id, "name": d.depot_id, "lat": d.lat, "lon": d.lon}
        )
    depots = {d.depot_id: (d.lat, d.lon) for d in s.depots}
    for f in s.fleets:
        if f.kind == "own":
            terms = {
                "cost_per_km": round(f.cost_per_km * 100),
                "cost_per_hour": round(f.cost_per_hour * 100),
            }
        elif f.kind == "3pl":
            terms = {
                "price_per_stop": round(f.cost_per_stop * 100),
                "daily_stops": f.vehicles * f.capacity,
            }
        else:
            # per drop, plus what the distance costs on an average drop (~2 km)
            terms = {"price_per_drop": round((f.cost_per_stop + 2 * f.cost_per_km) * 100)}
        api.post(
            "/v1/fleets",
            {"fleet_id": f.fleet_id, "kind": f.kind, "depot_id": f.depot, "terms": terms},
        )
    for v in world.vehicles:
        if v.kind == "own":
            spec = {"capacity": v.capacity, "shift_start_s": s.start, "shift_end_s": s.end + 3600}
        elif v.kind == "gig":
            lat, lon = depots[next(f.depot for f in s.fleets if f.fleet_id == v.fleet_id)]
            spec = {
                "capacity": v.capacity, "available_from_s": s.start,
                "available_until_s": s.end + 3600, "lat": lat, "lon": lon,
            }  # fmt: skip
        else:
            continue  # a 3PL is planned as a whole
        api.post(f"/v1/fleets/{v.fleet_id}/vehicles", {"vehicle_id": v.vehicle_id, "spec": spec})


def order_body(s: Scenario, o: Order) -> dict[str, Any]:
    depot = s.depots[0].depot_id
    return {
        "order_id": o.order_id,
        "depot_id": depot,
        "day": s.day.isoformat(),
        "kind": o.kind,
        "lat": o.lat,
        "lon": o.lon,
        "address": f"{o.customer_id}, district {o.district}",
        "customer": o.customer_id,
        "window": {"start": int(s.epoch(o.window_start)), "end": int(s.epoch(o.window_end))},
        "service_s": int(s.orders["service_median_s"]),
        "size": 1,
        "parcels": [
            {"parcel_id": f"{o.order_id}-p1", "barcode": f"WL-{o.order_id}", "weight_kg": 2.0}
        ],
    }
