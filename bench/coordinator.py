"""The coordinator's day: 1,000 orders over 50 vehicles of three fleet kinds, planned and
rebalanced after a carrier outage, through the real store, dispatcher and decision record.

Four depots (regions) of 250 orders each; per depot 8 or 9 own vans (9 at the first two),
one 3PL carrier and 3 gig couriers: 34 vans + 4 carriers + 12 couriers = 50 planning
vehicles of three fleet kinds. Regions are solved ``--workers`` at a time (default 1: in
process, one after another; more: in child processes). No broker: plans wait in the outbox. Prints
figures.

    .venv/bin/python -m bench.coordinator [--quick] [--workers 1]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from cloud import CloudSettings, Coordinator
from cloud.decisions import replay
from cloud.dispatch import DispatchSettings
from cloud.geo import day_start
from cloud.intake import parse_order, take_orders

DAY = "2026-03-02"
D0 = day_start(DAY)
VANS = (9, 9, 8, 8)
"""Own vans per depot: with a carrier and 3 couriers each, 50 vehicles in all."""
DEPOTS = {"ams": (52.37, 4.89), "rtm": (51.92, 4.48), "utr": (52.09, 5.12), "dhg": (52.07, 4.30)}
VEHICLES = sum(VANS) + 4 * len(DEPOTS)


def build(c: Coordinator, orders_per_depot: int, rng: random.Random) -> None:
    with c.store.transaction() as conn:
        for i, (d, (lat, lon)) in enumerate(DEPOTS.items()):
            c.db.put_depot(conn, d, d, lat, lon, None, 0)
            c.db.put_fleet(
                conn,
                f"{d}-own",
                "own",
                d,
                {"cost_per_km": 30, "cost_per_hour": 2500, "fixed_cost": 5000},
                0,
            )
            c.db.put_fleet(
                conn,
                f"{d}-3pl",
                "3pl",
                d,
                {
                    "price_per_stop": 450,
                    "daily_stops": 60,
                    "cutoff_s": 86_400,
                    "on_time_rate": 0.95,
                    "late_cost": 1000,
                },
                0,
            )
            c.db.put_fleet(conn, f"{d}-gig", "gig", d, {"price_per_drop": 600}, 0)
            for k in range(VANS[i]):
                c.db.put_vehicle(
                    conn,
                    f"{d}-van{k}",
                    f"{d}-own",
                    {
                        "capacity": 120,
                        "shift_start_s": 8 * 3600,
                        "shift_end_s": 19 * 3600,
                        "skills": [],
                    },
                    0,
                )
            for k in range(3):
                c.db.put_vehicle(
                    conn,
                    f"{d}-gig{k}",
                    f"{d}-gig",
                    {
                        "capacity": 15,
                        "available_from_s": 10 * 3600,
                        "available_until_s": 16 * 3600,
                        "lat": lat + rng.uniform(-0.03, 0.03),
                        "lon": lon + rng.uniform(-0.05, 0.05),
                        "skills": [],
                    },
                    0,
                )
    orders = []
    for d, (lat, lon) in DEPOTS.items():
        for k in range(orders_per_depot):
            start = D0 + rng.randrange(9, 16) * 3600
            windowed = rng.random() < 0.6
            orders.append(parse_order({
                "order_id": f"{d}-o{k}", "depot_id": d, "day": DAY,
                "lat": round(lat + rng.uniform(-0.09, 0.09), 6),
                "lon": round(lon + rng.uniform(-0.14, 0.14), 6),
                "window": {"start": start if windowed else D0 + 9 * 3600,
                           "end": start + 3 * 3600 if windowed else D0 + 18 * 3600},
                "service_s": 180, "size": rng.randint(1, 5),
                "parcels": [{"parcel_id": f"{d}-p{k}", "barcode": f"{d}{k}", "weight_kg": 2}],
            }))  # fmt: skip
    take_orders(c.store, c.db, orders, c.now_ms())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="200 orders, fewer iterations")
    ap.add_argument("--workers", type=int, default=1, help="regions solved at once")
    args = ap.parse_args()
    per_depot, iters = (50, 300) if args.quick else (250, 1000)
    with tempfile.TemporaryDirectory() as tmp:
        settings = CloudSettings(
            db_path=Path(tmp) / "cloud.db", broker=None,
            dispatch=DispatchSettings(
                iterations=iters, time_limit_s=120.0, seed=7, workers=args.workers
            ),
        )  # fmt: skip
        c = Coordinator(settings, clock=lambda: D0 + 7 * 3600)
        t = time.perf_counter()
        build(c, per_depot, random.Random(7))
        print(f"intake: {per_depot * len(DEPOTS)} orders in {time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        plans = c.dispatch.plan_day(DAY)
        total = time.perf_counter() - t
        for p in plans:
            print(
                f"plan {p['region']}: {p['status']}, {p['orders']} orders, "
                f"{p['unplanned']} unplanned, {len(p['versions'])} vans, {p['seconds']:.2f} s"
            )
        print(
            f"morning plan, {len(plans)} regions, {args.workers} at a time: {total:.2f} s; "
            f"vehicles: {VEHICLES} ({sum(VANS)} vans, {len(DEPOTS)} carriers, "
            f"{3 * len(DEPOTS)} gig couriers)"
        )
        carrier = [a["order_id"] for a in c.db.assignments(vehicle_id="ams-3pl")]
        t = time.perf_counter()
        c.dispatch.fleet_status("ams-3pl", "down", DAY)
        [r] = c.dispatch.rebalance_pending()
        total = time.perf_counter() - t
        print(f"carrier outage ams-3pl ({len(carrier)} orders): {r['status']}, "
              f"{len(r['moved'])} orders moved, {len(r['versions'])} vans got a new version, "
              f"{r['unplanned']} unplanned, {total:.2f} s")  # fmt: skip
        t = time.perf_counter()
        rep = replay(c.db, r["decision_id"])
        print(f"replay of the rebalance: reproduced={rep['reproduced']} in "
              f"{time.perf_counter() - t:.2f} s")  # fmt: skip
        c.stop()


if __name__ == "__main__":
    main()
