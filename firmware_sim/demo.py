"""``wayline demo``: a small delivery day on this machine, end to end.

The walking skeleton of the full demo: it starts its own Mosquitto from ``deploy/`` (or
uses ``--broker``), the cloud coordinator and one process per van: the real vehicle agent
on a simulated gateway (:mod:`firmware_sim.gateway`) with its own store, as on real vans.
The cloud sends each van a plan; a driver bot works through every stop on the van's
tablet API (most delivered with proof, some failed); each van reports stop events,
sequences and telemetry through its outbox. At the end it prints what happened and checks
that every event the vans stored reached the cloud once.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_sim.broker import MosquittoBroker, free_port, port_accepts

__all__ = ["configure", "run"]

DEPOT = (52.5200, 13.4050)
FAIL_REASONS = ("absent", "address_problem", "refused", "no_access")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vehicles", type=int, default=3, help="vans on the road (default 3)")
    parser.add_argument("--stops", type=int, default=8, help="stops per van (default 8)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the day (default 7)")
    parser.add_argument("--broker", help="use this MQTT broker instead of starting one")
    parser.add_argument("--report", type=Path, help="write summary.json into this directory")
    parser.add_argument("--workdir", type=Path, help="keep the stores here (default: temp)")


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    http: str


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.vehicles <= 50 or not 1 <= args.stops <= 200:
        raise ValueError("--vehicles must be 1..50 and --stops 1..200")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="wayline-demo-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        broker = None
        if args.broker is None:
            broker = MosquittoBroker(work / "broker")
            broker.start()
            url = broker.url
            print(f"broker      {url} (Mosquitto, deploy/mosquitto.conf)")
        else:
            url = args.broker
        procs: list[_Proc] = []
        try:
            cloud = _spawn(
                "cloud", ["cloud", "--broker", url, "--db", str(work / "cloud.db")], work
            )
            procs.append(cloud)
            print(f"cloud       {cloud.http}/docs")
            vans = [f"van-{i + 1}" for i in range(args.vehicles)]
            for van in vans:
                procs.append(
                    _spawn(
                        van,
                        [
                            "--id",
                            van,
                            "--broker",
                            url,
                            "--db",
                            str(work / f"{van}.db"),
                            "--period",
                            "0.2",
                        ],
                        work,
                        module="firmware_sim.gateway",
                    )
                )
                print(f"{van:<11} tablet at {procs[-1].http}/api/status")
            for p in procs:
                _wait_http(p)
            for van in vans:
                _post(cloud.http + "/v1/routes", _plan(van, args.stops, rng))
            summary = _drive(procs[1:], rng)
            summary.update(_settle(cloud, procs[1:], work))
        finally:
            for p in procs:
                p.popen.terminate()
            for p in procs:
                try:
                    p.popen.wait(15)
                except subprocess.TimeoutExpired:
                    p.popen.kill()
            if broker is not None:
                broker.stop()
        _print(summary)
        if args.report:
            args.report.mkdir(parents=True, exist_ok=True)
            (args.report / "summary.json").write_text(json.dumps(summary, indent=2))
        return 0 if summary["events_lost"] == 0 and summary["events_duplicated"] == 0 else 1


def _spawn(name: str, argv: list[str], work: Path, module: str = "wayline") -> _Proc:
    port = free_port()
    log = (work / f"{name}.log").open("ab")
    popen = subprocess.Popen(
        [sys.executable, "-m", module, *argv, "--http", f"127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return _Proc(name, popen, f"http://127.0.0.1:{port}")


def _wait_http(p: _Proc, timeout: float = 30.0) -> None:
    port = int(p.http.rsplit(":", 1)[1])
    deadline = time.monotonic() + timeout
    while not port_accepts("127.0.0.1", port):
        if p.popen.poll() is not None or time.monotonic() > deadline:
            raise OSError(f"{p.name} did not start; see its log")
        time.sleep(0.05)


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        out: dict[str, Any] = json.load(resp)
        return out


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        out: dict[str, Any] = json.load(resp)
        return out


def _plan(van: str, n: int, rng: random.Random) -> dict[str, Any]:
    start = int(time.time())
    stops = []
    for i in range(n):
        lat = DEPOT[0] + rng.uniform(-0.04, 0.04)
        lon = DEPOT[1] + rng.uniform(-0.06, 0.06)
        open_at = start + rng.choice((0, 3600, 7200))
        stops.append(
            {
                "stop_id": f"{van}-s{i + 1}",
                "order_id": f"{van}-o{i + 1}",
                "location": {"lat": lat, "lon": lon, "address": f"{i + 1} Demo Street"},
                "window": {"start": open_at, "end": open_at + 7200},
                "service_s": 180,
                "parcels": [
                    {
                        "parcel_id": f"{van}-p{i + 1}",
                        "barcode": f"WL{rng.randrange(10**9):09d}",
                        "weight_kg": round(rng.uniform(0.5, 12), 1),
                    }
                ],
            }
        )
    return {
        "route_id": f"{van}-{time.strftime('%Y%m%d')}",
        "vehicle_id": van,
        "version": 1,
        "day": time.strftime("%Y-%m-%d"),
        "depot": {"lat": DEPOT[0], "lon": DEPOT[1]},
        "start_at": start,
        "stops": stops,
        "break_rule": {
            "earliest": start + 3 * 3600,
            "latest": start + 5 * 3600,
            "duration_s": 1800,
        },
    }


def _drive(vans: list[_Proc], rng: random.Random) -> dict[str, Any]:
    """A driver per van works the route in the agent's order, one action at a time."""
    delivered = failed = 0
    deadline = time.monotonic() + 60
    pending = {p.name: p for p in vans}
    while pending and time.monotonic() < deadline:
        for name, p in list(pending.items()):
            status = _get(p.http + "/api/status")
            nxt = status["next"]
            if status["route"] is None:
                continue
            if nxt is None:
                del pending[name]
                continue
            sid = nxt["stop_id"]
            base = f"{p.http}/api/stops/{sid}"
            time.sleep(0.3)  # on the way: the van reports telemetry
            _post(base + "/arrive", {})
            if rng.random() < 0.12:
                _post(base + "/fail", {"reason": rng.choice(FAIL_REASONS)})
                failed += 1
            else:
                codes = ",".join(x["barcode"] for x in nxt["parcels"])
                _form(base + "/deliver", {"recipient": "At the door", "barcodes": codes})
                delivered += 1
        time.sleep(0.05)
    return {
        "orders": delivered + failed + sum(1 for _ in pending),
        "delivered": delivered,
        "failed": failed,
    }


def _form(url: str, fields: dict[str, str]) -> None:
    data = urllib.parse.urlencode(fields).encode()
    req = urllib.request.Request(url, data=data)
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()


def _settle(cloud: _Proc, vans: list[_Proc], work: Path, timeout: float = 60) -> dict[str, Any]:
    """Wait until every van's outbox is empty, then compare what vans sent and cloud applied."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_get(p.http + "/api/status")["pending_sync"] == 0 for p in vans):
            break
        time.sleep(0.2)
    sent = applied = dup = 0
    for p in vans:
        with sqlite3.connect(f"file:{work / (p.name + '.db')}?mode=ro", uri=True) as c:
            row = c.execute("SELECT next_seq - 1 FROM sync_out WHERE peer = 'cloud'").fetchone()
        sent += row[0] if row else 0
    with sqlite3.connect(f"file:{work / 'cloud.db'}?mode=ro", uri=True) as c:
        applied = c.execute("SELECT count(*) FROM events").fetchone()[0]
        dup = c.execute("SELECT count(*) - count(DISTINCT id) FROM events").fetchone()[0]
        kinds = dict(c.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
    return {
        "events_sent": sent,
        "events_applied": applied,
        "events_lost": sent - applied,
        "events_duplicated": dup,
        "events_by_kind": kinds,
    }


def _print(s: dict[str, Any]) -> None:
    print()
    print(
        f"stops worked     {s['delivered'] + s['failed']} "
        f"({s['delivered']} delivered, {s['failed']} failed)"
    )
    print(f"events sent      {s['events_sent']} by the vans' outboxes")
    print(
        f"events applied   {s['events_applied']} by the cloud "
        f"({', '.join(f'{k} {v}' for k, v in sorted(s['events_by_kind'].items()))})"
    )
    print(f"lost / twice     {s['events_lost']} / {s['events_duplicated']}")
