"""Shared set-up for the coordinator tests: a small network, orders, agents (no tests here)."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from cloud import CloudSettings, Coordinator, create_api
from cloud.dispatch import DispatchSettings
from cloud.geo import day_of, day_start
from cloud.intake import parse_order, take_orders
from sync import SyncSettings
from tests.helpers import free_port
from wayline.serve import HttpServer

DAY = day_of(time.time() + 2 * 86_400)
"""Two days ahead, so the real agents (on the real clock) see no stop as late."""
D0 = day_start(DAY)
DEPOT = (52.37, 4.89)
FAST = SyncSettings(ack_timeout_s=0.5, ack_timeout_max_s=2.0, tick_s=0.01, resend_interval_s=0.2)
QUICK = DispatchSettings(iterations=150, time_limit_s=60.0, seed=3)


def coordinator(path: Path, broker: Any = None, **kw: Any) -> Coordinator:
    settings = CloudSettings(db_path=path, broker=broker, sync=FAST, dispatch=QUICK, **kw)
    return Coordinator(settings, clock=lambda: D0 + 7 * 3600)


def network(
    c: Coordinator,
    vans: list[str],
    *,
    carrier_price: int = 20,
    carrier_stops: int = 6,
    depot: str = "dep1",
) -> None:
    with c.store.transaction() as conn:
        c.db.put_depot(conn, depot, "North", *DEPOT, "Dock 1", 0)
        c.db.put_fleet(
            conn, f"{depot}-own", "own", depot,
            {"cost_per_km": 40, "cost_per_hour": 3000, "fixed_cost": 1000}, 0,
        )  # fmt: skip
        c.db.put_fleet(
            conn, f"{depot}-3pl", "3pl", depot,
            {"price_per_stop": carrier_price, "daily_stops": carrier_stops, "cutoff_s": 86_400,
             "on_time_rate": 0.9, "late_cost": 100},
            0,
        )  # fmt: skip
        c.db.put_fleet(conn, f"{depot}-gig", "gig", depot, {"price_per_drop": 4000}, 0)
        for v in vans:
            c.db.put_vehicle(
                conn, v, f"{depot}-own",
                {"capacity": 200, "shift_start_s": 8 * 3600, "shift_end_s": 19 * 3600,
                 "skills": []},
                0,
            )  # fmt: skip
        c.db.put_vehicle(
            conn, f"{depot}-bike", f"{depot}-gig",
            {"capacity": 4, "available_from_s": 9 * 3600, "available_until_s": 15 * 3600,
             "lat": DEPOT[0] + 0.01, "lon": DEPOT[1], "skills": []},
            0,
        )  # fmt: skip


def order(k: int, depot: str = "dep1", seed: int = 1, **over: Any) -> dict[str, Any]:
    rng = random.Random(seed * 10_000 + k)
    body = {
        "order_id": f"{depot}-o{k}",
        "depot_id": depot,
        "day": DAY,
        "lat": round(DEPOT[0] + rng.uniform(-0.03, 0.03), 6),
        "lon": round(DEPOT[1] + rng.uniform(-0.05, 0.05), 6),
        "window": {"start": D0 + 9 * 3600, "end": D0 + 17 * 3600},
        "service_s": 180,
        "parcels": [{"parcel_id": f"{depot}-p{k}", "barcode": f"BC{depot}{k}", "weight_kg": 4}],
    }
    body.update(over)
    return body


def add_orders(c: Coordinator, n: int, depot: str = "dep1") -> list[str]:
    orders = [parse_order(order(k, depot)) for k in range(n)]
    take_orders(c.store, c.db, orders, c.now_ms())
    return [o.order_id for o in orders]


def assigned_to(c: Coordinator, vehicle: str) -> list[str]:
    return [a["order_id"] for a in c.db.assignments(vehicle_id=vehicle)]


@contextlib.contextmanager
def api_client(c: Coordinator) -> Iterator[httpx.Client]:
    """The coordinator's REST API served on 127.0.0.1, and a client for it."""
    server = HttpServer(create_api(c), "127.0.0.1", free_port())
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            yield client
    finally:
        server.stop()
