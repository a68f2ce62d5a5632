"""Vehicle agent memory over a whole shift: the resident set of one gateway process.

    .venv/bin/python -m bench.vehicle_memory [--stops 120] [--period 1.0]

Starts Mosquitto from ``deploy/``, a cloud coordinator (in this process), and one van as a
process of its own: the real vehicle agent and tablet app on a simulated gateway
(``firmware_sim.gateway``) that reports telemetry every ``--period`` seconds. The cloud sends
a plan of ``--stops`` stops; a driver bot works through all of them on the tablet API, each
delivery with recipient, signature, barcode and a 150 KB photo, every seventh stop failed
with a reason. The van's VmRSS and VmHWM (peak) are read from ``/proc/PID/status`` after
start-up, after the plan, every 20 stops, and at the end of the shift once the outbox has
drained. A figure to read, never a pass/fail; the goal on a Raspberry-Pi-class gateway is
under 150 MB.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cloud import CloudSettings, Coordinator  # noqa: E402
from firmware_sim.broker import MosquittoBroker, free_port, port_accepts  # noqa: E402
from protocol import RoutePlan  # noqa: E402
from sync import parse_broker_url  # noqa: E402

STREETS = ("Lindenstr.", "Bergstr.", "Waldstr.", "Seestr.")
REASONS = ("absent", "address_problem", "refused", "damaged", "no_access")


SIGNATURE = "M0 0 " + " ".join(f"L{x} {x % 50}" for x in range(1, 200))


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB, from /proc."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def plan(van: str, n: int, rng: random.Random) -> RoutePlan:
    now = int(time.time())
    stops = []
    for i in range(n):
        start = now + (i * 8 * 3600) // n - 1800
        stops.append(
            {
                "stop_id": f"s{i:03d}",
                "order_id": f"o{i:03d}",
                "location": {
                    "lat": 52.52 + rng.uniform(-0.06, 0.06),
                    "lon": 13.405 + rng.uniform(-0.09, 0.09),
                    "address": f"{rng.randint(1, 200)} {rng.choice(STREETS)}",
                },
                "window": {"start": max(now, start), "end": start + 3 * 3600},
                "service_s": rng.choice((60, 120, 180, 300)),
                "customer": f"Customer {i}",
                "parcels": [
                    {
                        "parcel_id": f"p{i:03d}-{k}",
                        "barcode": f"WL{i:04d}{k}",
                        "weight_kg": round(rng.uniform(0.2, 12.0), 1),
                        "load_position": i + 1,
                    }
                    for k in range(rng.randint(1, 3))
                ],
            }
        )
    return RoutePlan.model_validate(
        {
            "route_id": f"route-{van}",
            "vehicle_id": van,
            "version": 1,
            "day": time.strftime("%Y-%m-%d"),
            "depot": {"lat": 52.52, "lon": 13.405, "address": "Depot"},
            "start_at": now,
            "end_at": now + 10 * 3600,
            "break_rule": {"earliest": now + 3600, "latest": now + 5 * 3600, "duration_s": 1800},
            "stops": stops,
        },
        strict=False,
    )


PAIRING_CODE = "bench-pairing-0001"
AUTH: dict[str, str] = {}
"""The paired tablet's session header (set once the gateway answers)."""


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=AUTH), timeout=60) as r:
        return json.load(r)  # type: ignore[no-any-return]


def post(url: str, body: bytes, content_type: str) -> dict[str, Any]:
    req = urllib.request.Request(url, data=body, headers={"content-type": content_type, **AUTH})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)  # type: ignore[no-any-return]


def multipart(fields: dict[str, str], photo: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="p.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + photo
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stops", type=int, default=120)
    p.add_argument("--period", type=float, default=1.0, help="seconds between telemetry samples")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="a shift of 30 stops")
    a = p.parse_args()
    if a.quick:
        a.stops = 30
    rng = random.Random(a.seed)
    van = "van-mem-1"
    samples: list[tuple[str, dict[str, int]]] = []
    with tempfile.TemporaryDirectory(prefix="wayline-mem-") as tmp:
        work = Path(tmp)
        broker = MosquittoBroker(work / "broker")
        broker.start()
        cloud = Coordinator(
            CloudSettings(db_path=work / "cloud.db", broker=parse_broker_url(broker.url))
        )
        cloud.start()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = (work / "van.log").open("ab")
        gateway = subprocess.Popen(
            [sys.executable, "-m", "firmware_sim.gateway", "--id", van, "--broker", broker.url,
             "--db", str(work / "van.db"), "--http", f"127.0.0.1:{port}",
             "--period", str(a.period), "--pairing-code", PAIRING_CODE],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        t0 = time.monotonic()
        try:
            while not port_accepts("127.0.0.1", port):
                if gateway.poll() is not None:
                    raise SystemExit("the gateway did not start; see its log")
                time.sleep(0.05)
            samples.append(("started", memory_kb(gateway.pid)))
            pairing = json.dumps({"code": PAIRING_CODE}).encode()
            token = post(f"{base}/api/pair", pairing, "application/json")["token"]
            AUTH["Authorization"] = f"Bearer {token}"
            cloud.send_plan(plan(van, a.stops, rng))
            while get(f"{base}/api/status")["route"] is None:
                time.sleep(0.05)
            samples.append(("plan applied", memory_kb(gateway.pid)))
            i = 0
            while (nxt := get(f"{base}/api/status")["next"]) is not None:
                sid = nxt["stop_id"]
                if i % 7 == 6:
                    body = {"reason": REASONS[i % len(REASONS)], "event_id": uuid.uuid4().hex}
                    post(
                        f"{base}/api/stops/{sid}/fail",
                        json.dumps(body).encode(),
                        "application/json",
                    )
                else:
                    photo = b"\xff\xd8\xff\xe0" + rng.randbytes(150_000)
                    fields = {
                        "event_id": uuid.uuid4().hex,
                        "recipient": f"Recipient {i}",
                        "signature_svg": " ".join(f"L{x} {x % 50}" for x in range(200)).replace(
                            "L", "M", 1
                        ),
                        "barcodes": "\n".join(p["barcode"] for p in nxt["parcels"]),
                    }
                    form, ctype = multipart(fields, photo)
                    post(f"{base}/api/stops/{sid}/deliver", form, ctype)
                i += 1
                if i % 20 == 0:
                    samples.append((f"{i} stops", memory_kb(gateway.pid)))
            while get(f"{base}/api/status")["pending_sync"]:
                time.sleep(0.1)
            shift_s = time.monotonic() - t0
            samples.append(("end of shift, synced", memory_kb(gateway.pid)))
            counts = get(f"{base}/api/status")["counts"]
            events = cloud.db.counts()
        finally:
            gateway.terminate()
            gateway.wait(15)
            cloud.stop()
            broker.stop()
    print(f"vehicle agent memory, {a.stops} stops, telemetry every {a.period:g} s, "
          f"shift worked in {shift_s:.0f} s (pid of the gateway process)")  # fmt: skip
    print(f"{'moment':<24}{'VmRSS MB':>10}{'VmHWM MB':>10}")
    for label, m in samples:
        print(f"{label:<24}{m['VmRSS'] / 1024:>10.1f}{m['VmHWM'] / 1024:>10.1f}")
    print(f"stops: {counts}; cloud events: {events}")
    end = samples[-1][1]
    print(f"end of shift: VmRSS {end['VmRSS'] / 1024:.1f} MB, peak {end['VmHWM'] / 1024:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
