"""Sync that loses nothing, against a real Mosquitto: drain, broker loss, bad input."""

from __future__ import annotations

import time
from pathlib import Path

import msgpack
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from protocol import (
    RoutePlan,
    Telemetry,
    encode,
    make_envelope,
    up_topic,
)
from sync import Rejected, SyncNode, SyncSettings, Tx, open_store, parse_broker_url
from tests.helpers import MosquittoBroker, unique_id, wait_for

pytestmark = pytest.mark.broker

FAST = SyncSettings(ack_timeout_s=0.5, ack_timeout_max_s=2.0, tick_s=0.01, resend_interval_s=0.2)


def telemetry(i: int) -> Telemetry:
    return Telemetry(
        at=1_790_000_000_000 + i,
        lat=52.5,
        lon=13.4,
        speed_kmh=float(i % 90),
        heading_deg=float(i % 360),
        odometer_km=1000.0 + i / 100,
        door_open=False,
        ignition=True,
    )


class Recorder:
    """A handler that stores what it applies; a repeat would break the primary key."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS seen (src TEXT, seq INTEGER, kind TEXT, PRIMARY KEY (src, seq))"
    )

    def __init__(self, store) -> None:
        store.ensure_schema(self.SCHEMA)
        self.store = store

    def apply(self, tx: Tx, peer: str, envelope) -> None:
        if envelope.kind == "route_plan" and envelope.body.version < 1:
            raise Rejected("never")
        tx.conn.execute(
            "INSERT INTO seen (src, seq, kind) VALUES (?, ?, ?)",
            (envelope.src, envelope.seq, envelope.kind),
        )

    def on_state(self, tx: Tx, peer: str, envelope) -> None:
        pass

    def seqs(self, src: str) -> list[int]:
        return [
            r[0]
            for r in self.store.read("SELECT seq FROM seen WHERE src = ? ORDER BY rowid", (src,))
        ]


def make_node(
    path: Path, node_id: str, role: str, broker_url: str | None, **kw
) -> tuple[SyncNode, Recorder]:
    store = open_store(path)
    rec = Recorder(store)
    broker = parse_broker_url(broker_url) if broker_url else None
    node = SyncNode(
        node_id=node_id,
        role=role,
        store=store,
        handler=rec,
        broker=broker,
        settings=kw.pop("settings", FAST),
        **kw,
    )
    return node, rec


@pytest.fixture
def nodes(tmp_path: Path):
    started: list[SyncNode] = []

    def build(node_id: str, role: str, url: str | None) -> tuple[SyncNode, Recorder]:
        node, rec = make_node(tmp_path / f"{node_id}.db", node_id, role, url)
        started.append(node)
        return node, rec

    yield build
    for n in started:
        if n._thread is not None:
            n.stop()
        n.store.close()


def test_backlog_of_10000_drains_in_order_after_reconnect(
    mosquitto: MosquittoBroker, nodes
) -> None:
    van = unique_id("van")
    hub, hub_rec = nodes("cloud", "hub", mosquitto.url)
    dev, _ = nodes(van, "device", mosquitto.url)
    with dev.transaction() as tx:  # queued while the van is offline: nothing is lost
        for i in range(10_000):
            tx.emit("cloud", telemetry(i))
    assert dev.pending() == 10_000
    hub.start()
    dev.start()
    wait_for(lambda: dev.pending() == 0, timeout=120, interval=0.1)
    assert hub_rec.seqs(van) == list(range(1, 10_001))
    assert hub.stats["applied"] == 10_000
    assert hub.stats.get("gaps", 0) == 0 or hub.stats["resend_requests_out"] >= 1


def test_broker_restarted_without_persistence_mid_stream_loses_nothing(
    broker: MosquittoBroker, nodes, tmp_path: Path
) -> None:
    """The cloud is frozen (SIGSTOP) so the broker holds messages for it; the broker then
    restarts without persistence and forgets them. The outbox sends them again."""
    import signal
    import sqlite3
    import subprocess
    import sys

    van = unique_id("van")
    cloud_db = tmp_path / "cloud.db"
    cloud = subprocess.Popen(
        [sys.executable, "-m", "wayline", "cloud", "--broker", broker.url, "--db", str(cloud_db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def applied() -> list[int]:
        if not cloud_db.exists():
            return []
        with sqlite3.connect(f"file:{cloud_db}?mode=ro", uri=True, timeout=10) as c:
            try:
                rows = c.execute("SELECT seq FROM events WHERE src = ? ORDER BY seq", (van,))
                return [r[0] for r in rows]
            except sqlite3.OperationalError:
                return []

    dev, _ = nodes(van, "device", broker.url)
    dev.start()
    try:
        total = 3000
        for i in range(1000):
            with dev.transaction() as tx:
                tx.emit("cloud", telemetry(i))
        wait_for(lambda: len(applied()) == 1000, timeout=60)
        cloud.send_signal(signal.SIGSTOP)  # frozen: the broker now holds what comes
        for i in range(1000, total):
            with dev.transaction() as tx:
                tx.emit("cloud", telemetry(i))
        wait_for(lambda: dev.stats["published"] >= total, timeout=30)
        broker.restart(persistence=False, kill=True)  # and forgets it
        cloud.send_signal(signal.SIGCONT)
        wait_for(lambda: dev.pending() == 0, timeout=90, interval=0.1)
        assert applied() == list(range(1, total + 1))
        assert dev.stats["published"] > total  # what the broker dropped was sent again
    finally:
        cloud.send_signal(signal.SIGCONT)
        cloud.terminate()
        cloud.wait(20)


def test_plan_sent_while_vehicle_offline_arrives_once(mosquitto: MosquittoBroker, nodes) -> None:
    van = unique_id("van")
    hub, _ = nodes("cloud", "hub", mosquitto.url)
    dev, dev_rec = nodes(van, "device", mosquitto.url)
    hub.start()
    plan = RoutePlan(
        route_id="r1",
        vehicle_id=van,
        version=1,
        day="2026-11-23",
        depot={"lat": 52.5, "lon": 13.4},
        start_at=1_790_000_000,
        stops=(),
    )
    with hub.transaction() as tx:
        tx.emit(van, plan)
    time.sleep(0.5)  # the van is not there yet
    dev.start()
    wait_for(lambda: hub.pending(van) == 0, timeout=30)
    assert dev_rec.seqs("cloud") == [1]
    dev.stop()  # a restart of the van does not apply it again
    dev2, dev2_rec = make_node(dev.store.path, van, "device", mosquitto.url)
    dev.store.close()
    dev2.start()
    try:
        time.sleep(1.0)
        assert dev2.applied_upto("cloud") == 1
        assert dev2_rec.seqs("cloud") == [1]
    finally:
        dev2.stop()
        dev2.store.close()


def _raw_client(url: str) -> mqtt.Client:
    addr = parse_broker_url(url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_id("raw"), protocol=mqtt.MQTTv5)
    c.connect(addr.host, addr.port)
    c.loop_start()
    return c


@pytest.mark.allow_errors(r"never")
def test_bad_input_is_counted_and_the_hub_keeps_going(mosquitto: MosquittoBroker, nodes) -> None:
    van, other = unique_id("van"), unique_id("van")
    hub, hub_rec = nodes("cloud", "hub", mosquitto.url)
    hub.start()
    raw = _raw_client(mosquitto.url)
    try:
        good = [encode(make_envelope(src=van, seq=i, lc=i, body=telemetry(i))) for i in (1, 2, 3)]
        bad_type = msgpack.unpackb(good[0], raw=False)
        bad_type["body"]["lat"] = "fifty-two"
        unknown = msgpack.unpackb(good[0], raw=False)
        unknown["kind"] = "teleportation"
        newer_major = msgpack.unpackb(good[0], raw=False)
        newer_major["v"] = "2.0"
        payloads = [
            good[0],
            b"\xc1\xc1 not msgpack",
            msgpack.packb(bad_type),
            msgpack.packb(unknown),
            msgpack.packb(newer_major),
            encode(make_envelope(src=other, seq=2, lc=1, body=telemetry(9))),  # src != topic
            b"\x80" * (70 * 1024),  # oversize
            good[0],  # replayed
            good[2],  # out of order: seq 3 before 2
            good[1],
            good[2],
        ]
        for p in payloads:
            raw.publish(up_topic(van), p, qos=1).wait_for_publish(5)
        wait_for(lambda: hub_rec.seqs(van) == [1, 2, 3], timeout=20)
    finally:
        raw.disconnect()
        raw.loop_stop()
    s = hub.stats
    for reason in ("malformed", "schema", "unknown_kind", "version", "src_mismatch", "oversize"):
        assert s[f"rejected_{reason}"] >= 1, (reason, dict(s))
    assert s["duplicates"] >= 1
    assert s["gaps"] >= 1
    assert hub.applied_upto(van) == 3
    assert hub_rec.seqs(other) == []
