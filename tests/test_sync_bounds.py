"""Bounds on every counter and time a peer sends, against a real broker and real stores.

A forged or broken peer publishes with raw paho what an honest one never sends: a Lamport
clock near the wire's limit (retained on the cloud's state topic, so it comes back after
every restart), a sequence number far ahead, an ack for entries never published or beyond
the whole counter, an ack from the wrong device or on the wrong topic, a van's clock ten
years ahead. Each is refused with a counted, logged reason; nothing stored is touched; the
streams keep flowing, every fact arriving once.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud import CloudSettings, Coordinator
from cloud.device_clock import AHEAD_MAX_MS, advisory_ms
from edge.vehicle import VehicleAgent, VehicleSettings
from protocol import (
    COUNTER_LIMIT,
    Ack,
    DeviceState,
    ResendRequest,
    SchemaError,
    Telemetry,
    decode,
    down_topic,
    encode,
    make_envelope,
    state_topic,
    up_topic,
)
from sync import SyncNode, SyncSettings, open_store, parse_broker_url
from sync.bounds import ClockBudget, ack_verdict
from sync.metrics import sync_families
from tests.helpers import MosquittoBroker, unique_id, wait_for
from tests.support import FAST, assert_contiguous, cloud_log, make_plan, outbox_top

TEN_YEARS_MS = 10 * 365 * 86_400_000
SANE_LC = 2**40
"""Far above anything these tests' honest traffic reaches, far below what was forged."""


def now_ms() -> int:
    return int(time.time() * 1000)


def sample(at: int, lat: float = 52.5) -> Telemetry:
    return Telemetry(
        at=at,
        lat=lat,
        lon=13.4,
        speed_kmh=30.0,
        heading_deg=90.0,
        odometer_km=1000.0,
        door_open=False,
        ignition=True,
    )


def forged(env: Any, **fields: Any) -> bytes:
    """``env`` encoded, then fields changed in the bytes (past what the models allow)."""
    raw = msgpack.unpackb(encode(env), raw=False)
    raw.update(fields)
    return msgpack.packb(raw)


@pytest.fixture
def raw(broker: MosquittoBroker) -> Iterator[mqtt.Client]:
    """A bare paho client on the test's broker: what anyone who reaches it can publish."""
    addr = parse_broker_url(broker.url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=unique_id("raw"), protocol=mqtt.MQTTv5
    )
    client.connect(addr.host, addr.port)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def publish(client: mqtt.Client, topic: str, payload: bytes, *, retain: bool = False) -> None:
    client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)


def coordinator(db: Path, broker: MosquittoBroker | None) -> Coordinator:
    address = parse_broker_url(broker.url) if broker is not None else None
    return Coordinator(CloudSettings(db_path=db, broker=address, sync=FAST))


def agent_for(van: str, db: Path, broker: MosquittoBroker, **kw: Any) -> VehicleAgent:
    settings = VehicleSettings(
        vehicle_id=van, db_path=db, broker=parse_broker_url(broker.url), sync=FAST
    )
    return VehicleAgent(settings, **kw)


def stored_clock(store_path: Path) -> int:
    with sqlite3.connect(store_path) as conn:
        return int(conn.execute("SELECT value FROM sync_meta WHERE key = 'lc'").fetchone()[0])


def outbox(agent: VehicleAgent) -> list[tuple[int, str]]:
    rows = agent.store.read("SELECT seq, id FROM sync_outbox WHERE peer = 'cloud' ORDER BY seq")
    return [(int(s), str(i)) for s, i in rows]


def rejected(node: SyncNode) -> dict[str, float]:
    [family] = [f for f in sync_families(node) if f.name == "wayline_sync_rejected_total"]
    return dict(family.samples)


def deliver_all(agent: VehicleAgent, n: int) -> list[str]:
    done = []
    for _ in range(n):
        nxt = agent.status()["next"]
        assert nxt is not None
        agent.arrive(nxt["stop_id"])
        agent.deliver(nxt["stop_id"], recipient="R", barcodes=(nxt["parcels"][0]["barcode"],))
        done.append(nxt["stop_id"])
    return done


def delivered_at_cloud(cloud: Coordinator, van: str) -> set[str]:
    rows = cloud.store.read(
        "SELECT stop_id FROM stop_facts WHERE vehicle_id = ? AND status = 'delivered'", (van,)
    )
    return {str(r[0]) for r in rows}


# -- the wire ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"), [("lc", COUNTER_LIMIT), ("lc", 2**63 - 1), ("seq", COUNTER_LIMIT)]
)
def test_the_wire_refuses_counters_no_honest_sender_reaches(field: str, value: int) -> None:
    env = make_envelope(src="van-1", seq=1, lc=1, body=sample(now_ms()))
    with pytest.raises(SchemaError, match=field):
        decode(forged(env, **{field: value}))
    top = make_envelope(src="van-1", seq=COUNTER_LIMIT - 1, lc=COUNTER_LIMIT - 1, body=sample(1))
    assert decode(encode(top)).lc == COUNTER_LIMIT - 1  # the largest is still taken


@pytest.mark.parametrize("body", [{"upto": COUNTER_LIMIT}, {"from_seq": COUNTER_LIMIT}])
def test_acks_and_resend_requests_are_bounded_on_the_wire(body: dict[str, int]) -> None:
    model = Ack(upto=1) if "upto" in body else ResendRequest(from_seq=1)
    env = make_envelope(src="cloud", seq=0, lc=1, body=model)
    with pytest.raises(SchemaError):
        decode(forged(env, body=body))


# -- the rules, one by one -------------------------------------------------------------------


def test_a_clock_budget_allows_a_burst_then_a_rate_on_the_monotonic_clock() -> None:
    t = [100.0]
    budget = ClockBudget(1000, 10.0, clock=lambda: t[0])
    assert budget.available() == 1000
    budget.spend(990)
    assert budget.available() == 10
    t[0] += 5  # five seconds later: 50 more
    assert budget.available() == 60
    t[0] += 10_000
    assert budget.available() == 1000  # never more than the burst


def test_ack_verdicts() -> None:
    kw = {"acked": 5, "published": 10, "top": 20, "stream": True}
    assert ack_verdict(3, **kw) == "take"  # an old ack: nothing to do
    assert ack_verdict(10, **kw) == "take"
    assert ack_verdict(11, **kw)[0] == "refuse"  # entries stored but never published
    assert ack_verdict(500, **kw)[0] == "refuse"  # beyond the counter of an acked stream
    new = {"acked": 0, "published": 2, "top": 2, "stream": True}
    assert ack_verdict(7, **new)[0] == "refuse"  # a new stream: no peer has more of it
    assert ack_verdict(7, **new, unsure=True) == "relearn"  # a recovered store lost its counter
    assert ack_verdict(500, **kw, unsure=True)[0] == "refuse"  # acked before: the counter holds
    assert ack_verdict(1, acked=0, published=0, top=0, stream=False)[0] == "refuse"


def test_settings_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="seq_ahead_max"):
        SyncSettings(window=100, seq_ahead_max=10)
    with pytest.raises(ValueError, match="lc_jump_max"):
        SyncSettings(lc_jump_max=COUNTER_LIMIT)


def test_advisory_device_time() -> None:
    now = now_ms()
    assert advisory_ms(now - 3_600_000, now) == now - 3_600_000  # an hour old: the device's
    assert advisory_ms(now + AHEAD_MAX_MS, now) == now + AHEAD_MAX_MS
    assert advisory_ms(now + TEN_YEARS_MS, now) == now  # ten years ahead: receive time
    assert advisory_ms(1_000, now) == now  # 1970: a gateway booted without its clock


# -- 1. a Lamport clock near the limit -----------------------------------------------------------


@pytest.mark.broker
def test_a_huge_clock_retained_on_the_clouds_state_topic_is_refused_and_deliveries_go_on(
    broker: MosquittoBroker, raw: mqtt.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    van = unique_id("van")
    van_db = tmp_path / "van.db"
    cloud = coordinator(tmp_path / "cloud.db", broker)
    cloud.start()
    agent = agent_for(van, van_db, broker)
    agent.start()
    try:
        wait_for(lambda: agent.node.connected, message="the van online")
        cloud.send_plan(make_plan(van, 6))
        wait_for(lambda: agent.book.route() is not None, timeout=20, message="the plan")
        online = DeviceState(status="online", role="cloud", at=now_ms())
        env = make_envelope(src="cloud", seq=0, lc=COUNTER_LIMIT - 1, body=online)
        with caplog.at_level(logging.WARNING, logger="sync.node"):
            publish(raw, state_topic("cloud"), encode(env), retain=True)
            # Beyond the wire's limit too (what broke every later commit): refused as schema.
            publish(raw, state_topic("cloud"), forged(env, lc=2**63 - 1))
            publish(raw, state_topic("cloud"), encode(env), retain=True)
            wait_for(lambda: agent.node.stats["rejected_lc"] >= 2, message="van refuses lc")
            wait_for(lambda: agent.node.stats["rejected_schema"] >= 1, message="and the 2^63")
            wait_for(lambda: cloud.node.stats["rejected_lc"] >= 1, message="cloud refuses it")
        assert any(
            "refused state from cloud: Lamport clock" in r.getMessage() for r in caplog.records
        )
        assert rejected(agent.node)["lc"] >= 2
        assert agent.cloud_online is True  # the forged "online" was not taken either

        first = deliver_all(agent, 3)  # what a tablet does: no 500, it reaches the cloud
        wait_for(lambda: delivered_at_cloud(cloud, van) >= set(first), timeout=20)
        wait_for(lambda: agent.node.pending() == 0, timeout=20)
        assert agent.node._lc < SANE_LC and cloud.node._lc < SANE_LC
        agent.stop()

        # A restart: the retained message comes back, and is refused again.
        agent = agent_for(van, van_db, broker)
        agent.start()
        wait_for(lambda: agent.node.stats["rejected_lc"] >= 1, message="refused after restart")
        second = deliver_all(agent, 3)
        wait_for(lambda: delivered_at_cloud(cloud, van) == {*first, *second}, timeout=20)
        wait_for(lambda: agent.node.pending() == 0, timeout=20)
        assert agent.node._lc < SANE_LC
        assert_contiguous(cloud_log(cloud, van), outbox_top(agent))
    finally:
        agent.stop()
        cloud.stop()
    assert stored_clock(van_db) < SANE_LC
    assert stored_clock(tmp_path / "cloud.db") < SANE_LC


@pytest.mark.broker
def test_a_forged_entry_with_a_huge_clock_or_a_far_seq_is_refused_and_the_real_one_applied(
    broker: MosquittoBroker, raw: mqtt.Client, tmp_path: Path
) -> None:
    van, other = unique_id("van"), unique_id("van")
    cloud = coordinator(tmp_path / "cloud.db", broker)
    cloud.start()
    agent = agent_for(van, tmp_path / "van.db", broker)
    agent.start()
    try:
        wait_for(lambda: agent.node.connected, message="the van online")
        agent.telemetry(sample(now_ms(), lat=52.51))
        wait_for(lambda: cloud.node.applied_upto(van) == 1)
        resends_before = cloud.node.stats["resend_requests_out"]
        # The next entry, forged with a clock near the limit: refused, not applied.
        fake = make_envelope(src=van, seq=2, lc=COUNTER_LIMIT - 1, body=sample(now_ms(), 1.0))
        publish(raw, up_topic(van), encode(fake))
        # An entry a million ahead: refused, no gap and no resend request for it.
        far = make_envelope(src=van, seq=1_000_002, lc=5, body=sample(now_ms(), 2.0))
        publish(raw, up_topic(van), encode(far))
        wait_for(lambda: cloud.node.stats["rejected_lc"] >= 1 and cloud.node.stats["rejected_seq"])
        assert cloud.node.applied_upto(van) == 1
        assert cloud.node.stats["resend_requests_out"] == resends_before
        # Another device's stream is untouched, and the van's real entry 2 is applied.
        other_env = make_envelope(src=other, seq=1, lc=3, body=sample(now_ms(), 3.0))
        publish(raw, up_topic(other), encode(other_env))
        agent.telemetry(sample(now_ms(), lat=52.52))
        wait_for(lambda: cloud.node.applied_upto(van) == 2 and cloud.node.applied_upto(other))
        wait_for(lambda: agent.node.pending() == 0)
        ids = {str(r[0]) for r in cloud.store.read("SELECT id FROM events")}
        assert fake.id not in ids and far.id not in ids
        assert cloud.node._lc < SANE_LC
        assert rejected(cloud.node)["seq"] == 1
    finally:
        agent.stop()
        cloud.stop()


# -- 2. forged acks --------------------------------------------------------------------------------


@pytest.mark.broker
def test_a_forged_ack_deletes_nothing_and_everything_arrives_once(
    broker: MosquittoBroker, raw: mqtt.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    van = unique_id("van")
    cloud_db = tmp_path / "cloud.db"
    cloud = coordinator(cloud_db, broker)
    cloud.start()
    agent = agent_for(van, tmp_path / "van.db", broker)
    agent.start()
    try:
        wait_for(lambda: agent.node.connected, message="the van online")
        cloud.send_plan(make_plan(van, 4))
        wait_for(lambda: agent.book.route() is not None, timeout=20, message="the plan")
        agent.telemetry(sample(now_ms()))
        wait_for(lambda: agent.node.pending() == 0, timeout=20)  # acked: an anchored stream
        acked = outbox_top(agent)
        cloud.stop()  # its retained "offline": the van keeps what follows in its outbox
        wait_for(lambda: agent.cloud_online is False, message="the van sees the cloud go")
        for i in range(85):
            agent.telemetry(sample(now_ms() + i, lat=52.5 + i / 1000))
        unsent = outbox(agent)
        top = outbox_top(agent)
        assert len(unsent) >= 85 and top >= acked + 85
        published = agent.node.stats["published"]

        def ack(upto: int, src: str = "cloud") -> bytes:
            return encode(make_envelope(src=src, seq=0, lc=7, body=Ack(upto=upto)))

        with caplog.at_level(logging.WARNING):
            publish(raw, down_topic(van), ack(top))  # every unsent entry
            publish(raw, down_topic(van), ack(top + 1000))  # beyond the van's counter
            publish(raw, down_topic(van), ack(top, src=unique_id("van")))  # not the cloud
            publish(raw, state_topic("cloud"), ack(top), retain=True)  # not an ack's topic
            wait_for(lambda: agent.node.stats["rejected_ack"] >= 2, message="acks refused")
            wait_for(lambda: agent.node.stats["rejected_topic"] >= 1, message="state topic")
            wait_for(
                lambda: (
                    agent.node.stats["rejected_protocol"]
                    + agent.node.stats["rejected_src_mismatch"]
                    >= 1
                ),
                message="wrong src",
            )
        reasons = [r.getMessage() for r in caplog.records if r.name == "sync.node"]
        assert any(f"ack up to {top} beyond the" in m for m in reasons), reasons
        assert outbox(agent) == unsent, "nothing deleted, nothing renumbered"
        assert outbox_top(agent) == top
        assert agent.node.stats["published"] == published  # and nothing sent meanwhile

        cloud = coordinator(cloud_db, broker)  # the cloud comes back: all of it arrives once
        cloud.start()
        wait_for(lambda: agent.node.pending() == 0, timeout=30, message="the backlog drains")
        wait_for(lambda: cloud.node.applied_upto(van) == top)
        log_ = cloud_log(cloud, van)
        assert_contiguous(log_, top)  # each entry once, in order
        assert sum(1 for _, kind in log_ if kind == "telemetry") == 86
    finally:
        agent.stop()
        cloud.stop()


@pytest.mark.broker
def test_the_hub_takes_an_ack_only_from_its_streams_peer_and_only_for_what_it_sent(
    broker: MosquittoBroker, raw: mqtt.Client, tmp_path: Path
) -> None:
    van, other = unique_id("van"), unique_id("van")
    cloud = coordinator(tmp_path / "cloud.db", broker)
    cloud.start()
    agent = None
    try:
        cloud.send_plan(make_plan(van, 3))  # published to a van not yet there
        wait_for(lambda: cloud.node.stats["published"] >= 1)
        outbox_rows = "SELECT peer, seq, id FROM sync_outbox ORDER BY peer, seq"
        before = cloud.store.read(outbox_rows)
        # The van's own topic, but more than was ever published to it.
        publish(raw, up_topic(van), encode(make_envelope(src=van, seq=0, lc=2, body=Ack(upto=5))))
        # Another device acking: it acks its own stream (there is none), never the van's.
        publish(
            raw, up_topic(other), encode(make_envelope(src=other, seq=0, lc=2, body=Ack(upto=1)))
        )
        # A resend request from beyond anything sent.
        resend = make_envelope(src=van, seq=0, lc=2, body=ResendRequest(from_seq=50))
        publish(raw, up_topic(van), encode(resend))
        wait_for(
            lambda: cloud.node.stats["rejected_ack"] >= 2 and cloud.node.stats["rejected_resend"]
        )
        assert (
            cloud.store.read("SELECT peer, seq, id FROM sync_outbox ORDER BY peer, seq") == before
        )
        assert cloud.node.pending(van) == 1

        agent = agent_for(van, tmp_path / "van.db", broker)
        agent.start()
        wait_for(lambda: cloud.node.pending(van) == 0, timeout=20, message="the real ack")
        assert agent.node.applied_upto("cloud") == 1
        assert agent.book.route() is not None
    finally:
        if agent is not None:
            agent.stop()
        cloud.stop()


def test_only_a_recovered_store_follows_an_ack_beyond_its_counter(
    tmp_path: Path, allowed_errors: list[str]
) -> None:
    allowed_errors.append("beyond this store's counter")

    class Nothing:
        def apply(self, tx, peer, envelope) -> None:  # pragma: no cover
            raise AssertionError

        def on_state(self, tx, peer, envelope) -> None:  # pragma: no cover
            raise AssertionError

    def van(path: Path, *, recovered: bool) -> SyncNode:
        store = open_store(path)
        store.recovered = recovered  # as open_store marks a store copied from a corrupt one
        node = SyncNode(node_id="van-1", role="device", store=store, handler=Nothing(), broker=None)
        with node.transaction() as tx:
            tx.emit("cloud", sample(now_ms()))
            tx.emit("cloud", sample(now_ms()))
        return node

    def ack(node: SyncNode, upto: int) -> None:
        env = make_envelope(src="cloud", seq=0, lc=50, body=Ack(upto=upto))
        node.feed(down_topic("van-1"), encode(env))
        node._process(node._take_batch())

    def seqs(node: SyncNode) -> list[int]:
        return [r[0] for r in node.store.read("SELECT seq FROM sync_outbox ORDER BY seq")]

    fresh = van(tmp_path / "fresh.db", recovered=False)  # a new van: nothing lost
    ack(fresh, 7)
    assert seqs(fresh) == [1, 2] and fresh.stats["rejected_ack"] == 1
    fresh.store.close()

    node = van(tmp_path / "recovered.db", recovered=True)
    node.store.close()  # the mark outlives a restart until an ack settles it
    node = SyncNode(
        node_id="van-1",
        role="device",
        store=open_store(tmp_path / "recovered.db"),
        handler=Nothing(),
        broker=None,
    )
    try:
        ack(node, 7)  # the store lost its counter: the entries follow the peer's
        assert seqs(node) == [8, 9]
        node._published["cloud"] = 9  # as if sent
        ack(node, 8)
        assert seqs(node) == [9]
        ack(node, 500)  # settled now: an ack beyond the counter is refused
        assert seqs(node) == [9] and node.stats["rejected_ack"] == 1
        with node.transaction() as tx:
            assert tx.emit("cloud", sample(now_ms())).seq == 10
    finally:
        node.store.close()


# -- 3. device time is advisory ------------------------------------------------------------------


def van_row(cloud: Coordinator, van: str) -> dict[str, Any]:
    [row] = [r for r in cloud.db.vehicle_overview() if r["vehicle_id"] == van]
    return row


@pytest.mark.broker
def test_a_van_whose_clock_ran_ten_years_ahead_is_online_and_moving_once_it_is_corrected(
    broker: MosquittoBroker, raw: mqtt.Client, tmp_path: Path
) -> None:
    van = unique_id("van")
    van_db = tmp_path / "van.db"
    cloud = coordinator(tmp_path / "cloud.db", broker)
    cloud.start()
    ahead = TEN_YEARS_MS / 1000
    agent = agent_for(van, van_db, broker, clock=lambda: time.time() + ahead)
    agent.start()
    try:
        wait_for(lambda: agent.node.connected, message="the van online")
        future = now_ms() + TEN_YEARS_MS
        # What the van said with its clock ahead: its presence, and where it was.
        for status in ("online", "offline"):
            state = DeviceState(status=status, role="vehicle", at=future)
            env = make_envelope(src=van, seq=0, lc=3, body=state)
            publish(raw, state_topic(van), encode(env), retain=True)
            agent.telemetry(sample(agent.now_ms(), lat=52.40))
        wait_for(lambda: van_row(cloud, van)["link_status"] == "offline")
        wait_for(lambda: cloud.node.applied_upto(van) == 2)
        row = van_row(cloud, van)
        assert row["status_at_ms"] <= now_ms() and row["position_at_ms"] <= now_ms()
        assert row["last_contact_ms"] <= now_ms() + AHEAD_MAX_MS
        assert cloud.device_clocks.implausible >= 4
        agent.stop()

        # The clock is corrected; the van starts again.
        agent = agent_for(van, van_db, broker)
        agent.start()
        wait_for(lambda: van_row(cloud, van)["link_status"] == "online", message="online again")
        agent.telemetry(sample(agent.now_ms(), lat=52.60))
        wait_for(lambda: van_row(cloud, van)["lat"] == 52.60, message="the position moves")
        row = van_row(cloud, van)
        assert abs(row["position_at_ms"] - now_ms()) < 60_000
    finally:
        agent.stop()
        cloud.stop()


def test_a_future_time_stored_before_the_fix_no_longer_freezes_a_van(tmp_path: Path) -> None:
    van = "van-7"
    cloud = coordinator(tmp_path / "cloud.db", None)
    future = now_ms() + TEN_YEARS_MS
    with cloud.store.transaction() as conn:  # what an older coordinator stored, unchecked
        cloud.db.set_state(conn, van, DeviceState(status="offline", role="vehicle", at=future))
        cloud.db.set_position(conn, van, sample(future, lat=52.40))
    cloud.start()
    try:
        state = DeviceState(status="online", role="vehicle", at=now_ms())
        cloud.node.feed(state_topic(van), encode(make_envelope(src=van, seq=0, lc=1, body=state)))
        env = make_envelope(src=van, seq=1, lc=2, body=sample(now_ms(), lat=52.60))
        cloud.node.feed(up_topic(van), encode(env))
        wait_for(lambda: cloud.node.applied_upto(van) == 1)
        row = van_row(cloud, van)
        assert row["link_status"] == "online"
        assert row["lat"] == 52.60 and row["position_at_ms"] <= now_ms()
        assert row["last_contact_ms"] <= now_ms() + AHEAD_MAX_MS
        # An honest order still holds: an older presence does not undo a newer one.
        old = DeviceState(status="offline", role="vehicle", at=now_ms() - 60_000)
        cloud.node.feed(state_topic(van), encode(make_envelope(src=van, seq=0, lc=3, body=old)))
        later = make_envelope(src=van, seq=2, lc=4, body=sample(now_ms(), lat=52.61))
        cloud.node.feed(up_topic(van), encode(later))
        wait_for(lambda: cloud.node.applied_upto(van) == 2)
        assert van_row(cloud, van)["link_status"] == "online"
    finally:
        cloud.stop()
