"""The cloud knows its devices: against a real Mosquitto, a real coordinator under the
``registered`` device policy, honest edge agents and forged clients publishing envelopes.

Forged devices are raw MQTT clients publishing protocol-encoded envelopes on topics of their
choosing; honest ones are the real vehicle and depot agents. Every test checks that the
honest devices keep flowing while the forged ones are refused and leave nothing stored.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud import Coordinator
from cloud.device_registry import DeviceRegistry
from edge.depot import DepotAgent, DepotSettings
from edge.vehicle import VehicleAgent, VehicleSettings
from protocol import (
    Body,
    DeviceState,
    Envelope,
    ParcelScan,
    ProofOfDelivery,
    StopEvent,
    Telemetry,
    decode,
    down_topic,
    encode,
    make_envelope,
    state_topic,
    up_topic,
)
from sync import parse_broker_url
from tests.helpers import MosquittoBroker, unique_id, wait_for
from tests.support import FAST, make_plan
from tests.test_cloud_support import add_orders, coordinator, network

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


class Forger:
    """A raw MQTT client: publishes what it likes, and records what comes down to ``ids``."""

    def __init__(self, url: str, *ids: str) -> None:
        addr = parse_broker_url(url)
        self.got: dict[str, list[Envelope]] = {i: [] for i in ids}
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=unique_id("forger"), protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.connect(addr.host, addr.port)
        self.client.loop_start()
        for i in ids:
            self.client.subscribe(down_topic(i), qos=1)
        time.sleep(0.3)  # the subscriptions are in place before anything is published

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        device = msg.topic.split("/")[2]
        with self._lock:
            self.got[device].append(decode(msg.payload))

    def publish(self, topic: str, body: Body, *, src: str, seq: int, retain: bool = False) -> None:
        payload = encode(make_envelope(src=src, seq=seq, lc=seq, body=body))
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def received(self, device: str, kind: str | None = None) -> list[Envelope]:
        with self._lock:
            return [e for e in self.got[device] if kind is None or e.kind == kind]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def forger(url: str, *ids: str) -> Iterator[Forger]:
    f = Forger(url, *ids)
    try:
        yield f
    finally:
        f.close()


def telemetry(k: int) -> Telemetry:
    return Telemetry(
        at=int(time.time() * 1000) + k, lat=52.37 + k / 1e4, lon=4.89, speed_kmh=30.0,
        heading_deg=90.0, odometer_km=1000.0 + k, door_open=False, ignition=True,
    )  # fmt: skip


def state(role: str) -> DeviceState:
    return DeviceState(status="online", role=role, at=int(time.time() * 1000))  # type: ignore[arg-type]


def rows(c: Coordinator, sql: str, *params: object) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in c.store.read(sql, params)]


def stored_of(c: Coordinator, device: str) -> dict[str, int]:
    """Everything the coordinator keeps about one device id, by table."""
    return {
        table: len(rows(c, f"SELECT 1 FROM {table} WHERE {col} = ?", device))
        for table, col in (
            ("devices", "device_id"),
            ("events", "src"),
            ("positions", "vehicle_id"),
            ("stop_facts", "vehicle_id"),
            ("sync_in", "peer"),
            ("sync_rejected", "peer"),
            ("exceptions", "src"),
            ("scans", "src"),
        )
    }


NOTHING = dict.fromkeys(
    (
        "devices", "events", "positions", "stop_facts", "sync_in", "sync_rejected",
        "exceptions", "scans",
    ),
    0,
)  # fmt: skip


@pytest.fixture
def cloud(broker: MosquittoBroker, tmp_path: Path) -> Iterator[Coordinator]:
    """A coordinator that syncs only with registered devices; its network: depot ``dep1``,
    vans ``van-a`` and ``van-b`` of fleet ``dep1-own``."""
    c = coordinator(tmp_path / "cloud.db", parse_broker_url(broker.url), device_policy="registered")
    network(c, ["van-a", "van-b"])
    c.start()
    try:
        yield c
    finally:
        c.stop()


@contextlib.contextmanager
def van(tmp_path: Path, vid: str, url: str) -> Iterator[VehicleAgent]:
    agent = VehicleAgent(
        VehicleSettings(
            vehicle_id=vid, db_path=tmp_path / f"{vid}.db", broker=parse_broker_url(url), sync=FAST
        )
    )
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def honest_telemetry(c: Coordinator, agent: VehicleAgent, k: int) -> None:
    """The honest van reports a position and the coordinator applies it."""
    with agent.node.transaction() as tx:
        tx.emit("cloud", telemetry(k))
    wait_for(
        lambda: (
            rows(c, "SELECT odometer_km FROM positions WHERE vehicle_id = ?", "van-a")
            == [(1000.0 + k,)]
        ),
        timeout=20,
    )


def test_an_unknown_device_is_refused_stores_nothing_and_is_taken_once_registered(
    cloud: Coordinator, broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ghost = unique_id("ghost")
    with van(tmp_path, "van-a", broker.url) as honest, forger(broker.url, ghost) as f:
        honest_telemetry(cloud, honest, 1)
        f.publish(state_topic(ghost), state("depot"), src=ghost, seq=0, retain=True)
        f.publish(up_topic(ghost), telemetry(1), src=ghost, seq=1)
        stop = StopEvent(
            event_id="ev-ghost", route_id="r-1", plan_version=1, stop_id="dep1-o1",
            type="delivered", at=int(time.time() * 1000),
        )  # fmt: skip
        f.publish(up_topic(ghost), stop, src=ghost, seq=2)
        wait_for(lambda: cloud.node.stats["rejected_unknown_device"] >= 3, timeout=20)
        honest_telemetry(cloud, honest, 2)  # the honest van flows meanwhile

        assert stored_of(cloud, ghost) == NOTHING
        assert f.received(ghost) == [], "nothing is acked to an unknown device"
        assert ghost not in cloud.node.streams()
        assert ghost not in cloud.db.depot_devices()

        # Registered a little later (as a vehicle, whatever it said): its outbox is taken when
        # sent again, and a state that contradicts the registry is not.
        with cloud.store.transaction() as conn:
            cloud.db.register_device(
                conn,
                {"device_id": ghost, "role": "vehicle", "fleet_id": "dep1-own", "created_ms": 0},
            )
        f.publish(up_topic(ghost), telemetry(1), src=ghost, seq=1)
        wait_for(lambda: f.received(ghost, "ack"), timeout=20)
        assert cloud.node.applied_upto(ghost) == 1
        assert rows(cloud, "SELECT count(*) FROM positions WHERE vehicle_id = ?", ghost) == [(1,)]
        assert rows(cloud, "SELECT role FROM devices WHERE device_id = ?", ghost) == []
        # its held "depot" state was counted when it came, and is now dropped, in words
        assert "wrong_role: state says 'depot'" in caplog.text
        f.publish(state_topic(ghost), state("vehicle"), src=ghost, seq=0, retain=True)
        wait_for(
            lambda: (
                rows(cloud, "SELECT role FROM devices WHERE device_id = ?", ghost) == [("vehicle",)]
            ),
            timeout=20,
        )
        honest_telemetry(cloud, honest, 3)


def test_a_device_held_back_before_its_declaration_is_taken_when_declared(
    cloud: Coordinator, broker: MosquittoBroker, tmp_path: Path
) -> None:
    """A sorter that connects before the network names it: refused, then served as a depot
    (with today's plans) as soon as the depot is declared, without reconnecting."""
    sorter_id = unique_id("depot")
    plan = make_plan("van-a", 3).model_copy(update={"route_id": "R-van-a"})
    cloud.send_plan(plan)
    sorter = DepotAgent(
        DepotSettings(
            depot_id=sorter_id,
            db_path=tmp_path / "sorter.db",
            broker=parse_broker_url(broker.url),
            sync=FAST,
        )
    )
    sorter.start()
    try:
        wait_for(lambda: cloud.node.stats["rejected_unknown_device"] >= 1, timeout=20)
        assert stored_of(cloud, sorter_id) == NOTHING
        with van(tmp_path, "van-a", broker.url) as honest:
            honest_telemetry(cloud, honest, 1)
            with cloud.store.transaction() as conn:
                cloud.db.put_depot(conn, sorter_id, "South", 52.3, 4.9, None, 0)
            honest_telemetry(cloud, honest, 2)  # traffic from anyone looks at held devices
            wait_for(lambda: sorter_id in cloud.db.depot_devices(), timeout=20)
            wait_for(lambda: any(v["vehicle_id"] == "van-a" for v in sorter.vehicles()), timeout=20)
    finally:
        sorter.stop()


def test_src_that_differs_from_the_topic_is_refused(
    cloud: Coordinator, broker: MosquittoBroker, tmp_path: Path
) -> None:
    with van(tmp_path, "van-a", broker.url) as honest, forger(broker.url, "van-b") as f:
        honest_telemetry(cloud, honest, 1)
        applied = cloud.node.applied_upto("van-a")
        # van-b's login speaks for van-a, on its own topic and on van-a's state topic
        f.publish(up_topic("van-b"), telemetry(7), src="van-a", seq=applied + 1)
        f.publish(state_topic("van-b"), state("vehicle"), src="van-a", seq=0)
        wait_for(lambda: cloud.node.stats["rejected_src_mismatch"] >= 2, timeout=20)
        assert stored_of(cloud, "van-b") == NOTHING
        assert f.received("van-b") == []
        assert cloud.node.applied_upto("van-a") == applied
        assert rows(cloud, "SELECT odometer_km FROM positions WHERE vehicle_id = 'van-a'") == [
            (1001.0,)
        ]
        honest_telemetry(cloud, honest, 2)
        assert cloud.node.applied_upto("van-a") == applied + 1


def test_a_vehicle_claiming_to_be_a_depot_gets_no_plans(
    cloud: Coordinator, broker: MosquittoBroker, tmp_path: Path
) -> None:
    stranger = unique_id("depot")
    sorter = DepotAgent(
        DepotSettings(
            depot_id="dep1",
            db_path=tmp_path / "dep1.db",
            broker=parse_broker_url(broker.url),
            sync=FAST,
        )
    )
    sorter.start()
    try:
        with forger(broker.url, "van-b", stranger) as f:
            f.publish(state_topic("van-b"), state("depot"), src="van-b", seq=0, retain=True)
            f.publish(state_topic(stranger), state("depot"), src=stranger, seq=0, retain=True)
            wait_for(lambda: cloud.node.stats["rejected_wrong_role"] >= 1, timeout=20)
            wait_for(lambda: cloud.node.stats["rejected_unknown_device"] >= 1, timeout=20)
            wait_for(lambda: cloud.db.depot_devices() == ["dep1"], timeout=20)

            plan = make_plan("van-a", 4).model_copy(update={"route_id": "R-van-a"})
            cloud.send_plan(plan)  # the van's plan, with names and addresses
            wait_for(lambda: any(v["vehicle_id"] == "van-a" for v in sorter.vehicles()), 20)
            time.sleep(1.0)  # long enough for a copy to reach anyone else
            assert f.received("van-b") == []
            assert f.received(stranger) == []
            assert stored_of(cloud, stranger) == NOTHING
            assert rows(cloud, "SELECT device_id FROM devices WHERE device_id = 'van-b'") == []
            assert cloud.node.pending("van-b") == 0

            # Announcing itself as what it is, the van is taken; still no depot's copies.
            f.publish(state_topic("van-b"), state("vehicle"), src="van-b", seq=0, retain=True)
            wait_for(
                lambda: (
                    rows(cloud, "SELECT role FROM devices WHERE device_id = 'van-b'")
                    == [("vehicle",)]
                ),
                timeout=20,
            )
            cloud.send_plan(plan.model_copy(update={"version": 2}))
            wait_for(lambda: cloud.node.pending("dep1") == 0, timeout=20)
            assert f.received("van-b") == []
            assert cloud.db.depot_devices() == ["dep1"]

            # A van's scan (a depot's kind) is refused and acked: its stream moves on.
            scan = ParcelScan(
                scan_id="sc-1", barcode="BC00001", at=int(time.time() * 1000), result="ok"
            )
            f.publish(up_topic("van-b"), scan, src="van-b", seq=1)
            f.publish(up_topic("van-b"), telemetry(5), src="van-b", seq=2)
            wait_for(lambda: cloud.node.applied_upto("van-b") == 2, timeout=20)
            [(reason,)] = rows(cloud, "SELECT reason FROM sync_rejected WHERE peer = 'van-b'")
            assert reason.startswith("wrong_role")
            assert rows(cloud, "SELECT count(*) FROM scans WHERE src = 'van-b'") == [(0,)]
            assert rows(cloud, "SELECT count(*) FROM positions WHERE vehicle_id = 'van-b'") == [
                (1,)
            ]
            wait_for(lambda: any(e.body.upto == 2 for e in f.received("van-b", "ack")), 20)  # type: ignore[union-attr]
    finally:
        sorter.stop()


def test_a_van_marking_another_vans_order_delivered_raises_an_exception(
    cloud: Coordinator, broker: MosquittoBroker, tmp_path: Path
) -> None:
    [oid, other] = add_orders(cloud, 2)
    cloud.dispatch.reassign([oid, other], "van-a", "ops:test")
    before = cloud.db.order(oid)
    assert before is not None and before["status"] == "assigned"
    with van(tmp_path, "van-a", broker.url) as honest, forger(broker.url, "van-b") as f:
        wait_for(lambda: honest.book.stop(oid) is not None, timeout=20)
        claim = StopEvent(
            event_id="ev-forged", route_id="R-van-b", plan_version=1, stop_id=oid,
            type="delivered", at=int(time.time() * 1000),
            proof=ProofOfDelivery(recipient_name="Nobody"), lat=52.37, lon=4.89,
        )  # fmt: skip
        f.publish(up_topic("van-b"), claim, src="van-b", seq=1)
        wait_for(lambda: any(e.body.upto == 1 for e in f.received("van-b", "ack")), 20)  # type: ignore[union-attr]

        # Not a fact: the order, its assignment and its stop facts are as they were.
        after = cloud.db.order(oid)
        assert after is not None and after["status"] == "assigned" and after["done_by"] is None
        assert cloud.db.assignment(oid)["vehicle_id"] == "van-a"  # type: ignore[index]
        assert cloud.db.stop_fact(oid) is None
        assert not rows(cloud, "SELECT 1 FROM ops_outbox WHERE payload LIKE '%delivery.confirmed%'")
        # A person gets it, with both sides' data.
        [item] = [i for i in cloud.db.exception_items(None, 50) if i["cls"] == "foreign_stop_event"]
        assert item["status"] == "escalated" and item["vehicle_id"] == "van-b"
        assert item["recommended"]["key"] == "investigate"
        data = item["context"]["incident"]["data"]
        assert data["claimed_type"] == "delivered" and data["claimed_event_id"] == "ev-forged"
        assert data["claimed_recipient"] == "Nobody"
        assert data["held_by"] == "van-a" and data["order_status"] == "assigned"
        assert data["held_route_id"] == cloud.db.assignment(oid)["route_id"]  # type: ignore[index]

        # The honest van delivers it: that fact is applied, and its stream never waited.
        honest.deliver(oid, recipient="Ms Jansen")
        wait_for(lambda: cloud.db.order(oid)["status"] == "delivered", timeout=20)  # type: ignore[index]
        assert cloud.db.order(oid)["done_by"] == "van-a"  # type: ignore[index]
        assert cloud.db.stop_fact(oid)["vehicle_id"] == "van-a"  # type: ignore[index]
        # The forger's stream moved on: its next entry is applied.
        f.publish(up_topic("van-b"), telemetry(3), src="van-b", seq=2)
        wait_for(lambda: cloud.node.applied_upto("van-b") == 2, timeout=20)


def test_the_registry_reads_admin_rows_before_the_network(tmp_path: Path) -> None:
    """Unit: precedence and fleets, and what ``open`` adds (the store, no broker)."""
    c = coordinator(tmp_path / "cloud.db", None, device_policy="registered")
    try:
        network(c, ["van-a"])
        with c.store.transaction() as conn:
            c.db.register_device(
                conn, {"device_id": "van-a", "role": "depot", "fleet_id": None, "created_ms": 0}
            )
            c.db.register_device(
                conn, {"device_id": "veh-9", "role": "vehicle", "fleet_id": None, "created_ms": 0}
            )
            c.db.set_state(conn, "loud-1", state("depot"))
        reg = c.registry
        assert reg.lookup("van-a") is not None and reg.lookup("van-a").role == "depot"  # type: ignore[union-attr]
        assert reg.lookup("dep1-bike").fleet_id == "dep1-gig"  # type: ignore[union-attr]
        assert reg.lookup("dep1").role == "depot"  # type: ignore[union-attr]
        assert reg.lookup("veh-9").source == "registry"  # type: ignore[union-attr]
        assert reg.lookup("loud-1") is None  # what it announced counts only when open
        opened = DeviceRegistry(c.db, policy="open", hub_id="cloud", on_state=c.on_state)
        assert opened.lookup("loud-1").source == "announced"  # type: ignore[union-attr]
        with pytest.raises(ValueError, match="device_policy"):
            DeviceRegistry(c.db, policy="closed", hub_id="cloud", on_state=c.on_state)  # type: ignore[arg-type]
    finally:
        c.stop()


@pytest.mark.parametrize(
    ("given", "env", "policy"),
    [
        ({}, "development", "open"),
        ({}, "production", "registered"),
        ({"device_policy": "registered"}, "development", "registered"),
        ({"device_policy": "open"}, "production", "open"),
    ],
)
def test_wayline_cloud_is_registered_unless_in_development_or_told(
    tmp_path: Path, given: dict[str, str], env: str, policy: str
) -> None:
    from wayline.agents import cloud_settings
    from wayline.settings import CloudConfig

    secrets = {k: "x" * 40 for k in ("session_secret", "token_pepper", "webhook_secret")}
    config = CloudConfig(
        db=tmp_path / "cloud.db", broker="mqtt://127.0.0.1:1883", env=env, **secrets, **given
    )  # type: ignore[arg-type]
    assert cloud_settings(config).device_policy == policy
