"""Depot agent benchmark: the terminal's scan round trip, and rebuilding the sort plan.

    .venv/bin/python -m bench.depot [--scans 3000] [--parcels 5000] [--repeats 5]

1. **Scan round trip**: one Mosquitto, a real cloud coordinator, a real depot agent with its
   store and outbox, and the terminal's HTTP API on 127.0.0.1. A client POSTs ``/api/scan``
   one at a time (as the terminal does: each scan waits for its answer) over a synthetic
   morning; every answer is a durable SQLite transaction with its ``parcel_scan`` in the
   outbox, which the sync worker drains to the cloud meanwhile. Figure: scans per second,
   p50/p99 latency; compared with a busy hub line (thousands of parcels an hour).
2. **Sort plan rebuild**: the pure :func:`edge.depot.sort_plan.sort_depot` over ``--parcels``
   parcels across 25 vans (best of ``--repeats``), and the agent applying the same plans with
   its store (index, placements, re-sort diff) in one transaction.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from cloud import CloudSettings, Coordinator  # noqa: E402
from edge.depot import DepotAgent, DepotSettings  # noqa: E402
from edge.depot.sample import morning  # noqa: E402
from edge.depot.sort_plan import sort_depot  # noqa: E402
from edge.depot.web import create_terminal_app  # noqa: E402
from firmware_sim.broker import MosquittoBroker, free_port  # noqa: E402
from sync import parse_broker_url  # noqa: E402
from wayline.serve import HttpServer  # noqa: E402


def scan_round_trip(work: Path, scans: int) -> dict[str, float]:
    broker = MosquittoBroker(work / "broker")
    broker.start()
    address = parse_broker_url(broker.url)
    cloud = Coordinator(CloudSettings(work / "cloud.db", address))
    agent = DepotAgent(DepotSettings("depot-bench", work / "depot.db", address))
    cloud.start()
    agent.start()
    app = create_terminal_app(agent)
    server = HttpServer(app, "127.0.0.1", free_port())
    server.start()
    try:
        plans = morning(max(1, scans // 130), 87)
        with agent.node.transaction() as tx:
            for plan in plans:
                agent.apply_plan(tx, plan)
        codes = [p.barcode for plan in plans for s in plan.stops for p in s.parcels][:scans]
        times: list[float] = []
        with httpx.Client(base_url=server.url) as client:
            token = client.post("/api/pair", json={"code": app.state.pairing.code}).json()["token"]
            client.headers["Authorization"] = f"Bearer {token}"  # a paired terminal
            client.get("/api/status")
            t0 = time.perf_counter()
            for code in codes:
                t = time.perf_counter()
                r = client.post("/api/scan", json={"code": code})
                times.append(time.perf_counter() - t)
                if r.status_code != 200:
                    raise SystemExit(f"scan {code} failed: {r.text}")
            total = time.perf_counter() - t0
        t1 = time.perf_counter()
        while agent.node.pending():
            if time.perf_counter() - t1 > 120:
                raise SystemExit("the outbox did not drain")
            time.sleep(0.05)
        drain = time.perf_counter() - t1
        times.sort()
        return {
            "scans": len(codes),
            "rate": len(codes) / total,
            "p50_ms": statistics.median(times) * 1000,
            "p99_ms": times[int(len(times) * 0.99) - 1] * 1000,
            "drain_after_s": drain,
            "cloud_scans": cloud.db.query("SELECT count(*) AS n FROM scans")[0]["n"],
        }
    finally:
        server.stop()
        agent.stop()
        cloud.stop()
        broker.stop()


def sort_rebuild(work: Path, parcels: int, repeats: int) -> dict[str, float]:
    vans = 25
    stops = max(1, round(parcels / vans / 1.5))
    plans = morning(vans, stops)
    n = sum(len(s.parcels) for p in plans for s in p.stops)
    agent = DepotAgent(DepotSettings("depot-sort", work / "sort.db", None))
    specs = agent.settings.containers_of
    best = min(_timed(lambda: sort_depot(plans, specs)) for _ in range(repeats))
    try:
        with_store = []
        for version in range(1, repeats + 1):
            bumped = [p.model_copy(update={"version": version}) for p in plans]

            def apply(bumped: list = bumped) -> None:  # type: ignore[type-arg]
                with agent.node.transaction() as tx:
                    for plan in bumped:
                        agent.apply_plan(tx, plan)

            with_store.append(_timed(apply))
    finally:
        agent.stop()
    return {"parcels": n, "pure_ms": best * 1000, "store_ms": min(with_store) * 1000}


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.depot")
    parser.add_argument("--scans", type=int, default=3000)
    parser.add_argument("--parcels", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="300 scans, 500 parcels, once")
    args = parser.parse_args()
    if args.quick:
        args.scans, args.parcels, args.repeats = 300, 500, 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        s = scan_round_trip(work, args.scans)
        r = sort_rebuild(work, args.parcels, args.repeats)
    hub = 3000  # parcels an hour on one busy sorter line
    print(
        f"scan round trip: {s['scans']} scans, {s['rate']:.0f} scans/s "
        f"({s['rate'] * 3600:,.0f}/h), p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms; "
        f"outbox drained {s['drain_after_s']:.2f} s after the last scan; "
        f"cloud stored {s['cloud_scans']} scans"
    )
    print(f"headroom over a busy line ({hub:,} parcels/h): {s['rate'] * 3600 / hub:.0f}x")
    print(
        f"sort plan of {r['parcels']} parcels / 25 vans: pure {r['pure_ms']:.1f} ms, "
        f"applied with the store {r['store_ms']:.1f} ms (best of {args.repeats})"
    )


if __name__ == "__main__":
    main()
