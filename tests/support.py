"""What several end-to-end tests share: fast sync settings, a sample plan, a real PNG,
and reads of what the cloud applied."""

from __future__ import annotations

import contextlib
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cloud import Coordinator
from edge.vehicle import VehicleAgent, VehicleSettings
from protocol import RoutePlan, down_topic, encode, make_envelope
from sync import SyncSettings, parse_broker_url
from tests.helpers import MosquittoBroker

__all__ = [
    "FAST",
    "assert_contiguous",
    "cloud_facts",
    "cloud_log",
    "feed_plan",
    "make_plan",
    "outbox_top",
    "running_agent",
    "tiny_png",
]

FAST = SyncSettings(
    ack_timeout_s=0.5,
    ack_timeout_max_s=2.0,
    tick_s=0.01,
    resend_interval_s=0.2,
    reconnect_min_s=0.1,
    reconnect_max_s=0.5,
)


def tiny_png(width: int = 4, height: int = 3) -> bytes:
    """A real PNG: signature, IHDR, one IDAT of grey RGB rows, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    rows = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def make_plan(van: str, n: int, *, version: int = 1, now: int | None = None) -> RoutePlan:
    now = now or int(time.time())
    return RoutePlan.model_validate(
        {
            "route_id": f"route-{van}",
            "vehicle_id": van,
            "version": version,
            "day": "2026-11-23",
            "depot": {"lat": 52.5, "lon": 13.4, "address": "Depot Nord"},
            "start_at": now,
            "end_at": now + 9 * 3600,
            "break_rule": {
                "earliest": now + 2 * 3600,
                "latest": now + 5 * 3600,
                "duration_s": 1800,
            },
            "stops": [
                {
                    "stop_id": f"s{i:02d}",
                    "order_id": f"o{i:02d}",
                    "location": {
                        "lat": 52.5 + 0.004 * i,
                        "lon": 13.4 + 0.003 * (i % 4),
                        "address": f"{10 + i} Lindenstrasse",
                    },
                    "window": {"start": now, "end": now + 8 * 3600},
                    "service_s": 180,
                    "customer": f"Customer {i}",
                    "parcels": [
                        {"parcel_id": f"p{i:02d}", "barcode": f"BC{i:05d}", "load_position": i + 1}
                    ],
                }
                for i in range(n)
            ],
        },
        strict=False,
    )


def feed_plan(agent: VehicleAgent, plan: RoutePlan, seq: int) -> None:
    """Hand the plan to the agent's sync ingest as if it came down from the cloud."""
    env = make_envelope(src="cloud", seq=seq, lc=seq, body=plan)
    agent.node.feed(down_topic(agent.vehicle_id), encode(env))


@contextlib.contextmanager
def running_agent(van: str, db: Path, broker: MosquittoBroker | None) -> Iterator[VehicleAgent]:
    address = parse_broker_url(broker.url) if broker is not None else None
    agent = VehicleAgent(VehicleSettings(vehicle_id=van, db_path=db, broker=address, sync=FAST))
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def cloud_log(cloud: Coordinator, van: str) -> list[tuple[int, str]]:
    rows = cloud.store.read("SELECT seq, kind FROM events WHERE src = ? ORDER BY seq", (van,))
    return [(int(s), str(k)) for s, k in rows]


def cloud_facts(cloud: Coordinator, van: str) -> dict[str, tuple[str, str, str | None]]:
    rows = cloud.store.read(
        "SELECT stop_id, status, event_id, reason FROM stop_facts WHERE vehicle_id = ?", (van,)
    )
    return {str(r[0]): (str(r[1]), str(r[2]), r[3]) for r in rows}


def assert_contiguous(log: list[tuple[int, str]], top: int) -> None:
    assert [s for s, _ in log] == list(range(1, top + 1)), "a gap or a repeat in the cloud's log"


def outbox_top(conn_or_agent: Any) -> int:
    if isinstance(conn_or_agent, VehicleAgent):
        rows = conn_or_agent.store.read("SELECT next_seq FROM sync_out WHERE peer = 'cloud'")
    else:
        rows = conn_or_agent.execute(
            "SELECT next_seq FROM sync_out WHERE peer = 'cloud'"
        ).fetchall()
    return int(rows[0][0]) - 1
