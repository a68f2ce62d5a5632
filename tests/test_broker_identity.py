"""Devices log in to the production broker as themselves: passwords, the ACL and TLS.

A real Mosquitto runs ``deploy/mosquitto-prod.conf`` with ``deploy/acl`` (tests/prod_broker.py),
a password file written by ``mosquitto_passwd`` and a TLS listener whose CA is made here. A real
coordinator and a real vehicle agent sync through it with their own credentials; anonymous,
wrong-password and unverified-TLS clients are refused; no device reaches another's topics.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from cloud import CloudSettings, Coordinator
from edge.vehicle import VehicleAgent, VehicleSettings
from protocol import down_topic, up_topic
from sync import BrokerUrlError, MqttLink, parse_broker_url
from tests.helpers import unique_id, wait_for
from tests.prod_broker import ProductionBroker
from tests.support import FAST, cloud_log, make_plan

pytestmark = [pytest.mark.broker]

CLOUD_PASSWORD = "cloud-Jq3v8LrT2wZ"
VAN_A, VAN_B = "veh-a1", "veh-b2"
PASSWORDS = {"cloud": CLOUD_PASSWORD, VAN_A: "van-a-Qx81mZt4", VAN_B: "van-b-Lp27sWd9"}


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductionBroker]:
    broker = ProductionBroker(tmp_path_factory.mktemp("prod-broker"), PASSWORDS)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class Client:
    """A raw paho MQTT 5 client that records its CONNACK and what it receives."""

    def __init__(self, prod: ProductionBroker, user: str | None, password: str | None) -> None:
        self.reason: str | None = None
        self.connected = threading.Event()
        self.answered = threading.Event()
        self.received: list[tuple[str, bytes]] = []
        self.subacks: list[list[int]] = []
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=unique_id("raw"),
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if user is not None:
            c.username_pw_set(user, password)
        c.on_connect = self._on_connect
        c.on_message = lambda _c, _u, m: self.received.append((m.topic, bytes(m.payload)))
        c.on_subscribe = lambda _c, _u, _m, codes, _p: self.subacks.append(
            [int(code.value) for code in codes]
        )
        self.client = c
        c.connect(prod.host, prod.port)
        c.loop_start()
        self.answered.wait(5)

    def _on_connect(self, _c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        self.reason = str(reason)
        if not getattr(reason, "is_failure", True):
            self.connected.set()
        self.answered.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_device_syncs_with_its_own_credentials_over_verified_tls(
    prod: ProductionBroker, tmp_path: Path
) -> None:
    cloud = Coordinator(
        CloudSettings(
            db_path=tmp_path / "cloud.db",
            broker=parse_broker_url(prod.url_for("cloud", CLOUD_PASSWORD, tls=False)),
            sync=FAST,
        )
    )
    van = VehicleAgent(
        VehicleSettings(
            vehicle_id=VAN_A,
            db_path=tmp_path / "van.db",
            broker=parse_broker_url(prod.url_for(VAN_A, PASSWORDS[VAN_A])),
            sync=FAST,
        )
    )
    assert van.settings.broker is not None and van.settings.broker.tls
    cloud.start()
    van.start()
    try:
        wait_for(lambda: van.node.connected, message="the van on the TLS listener")
        wait_for(lambda: van.cloud_online, message="the van sees the coordinator's presence")
        cloud.send_plan(make_plan(VAN_A, 4))
        wait_for(lambda: van.book.route() is not None, timeout=20, message="the plan on the van")
        wait_for(lambda: cloud_log(cloud, VAN_A), timeout=20, message="the van's report applied")
        assert {kind for _, kind in cloud_log(cloud, VAN_A)} >= {"route_sequence"}
    finally:
        van.stop()
        cloud.stop()
    assert "veh-a1" in prod.log_text()  # the broker saw the device log in under its own name


@pytest.mark.parametrize(
    ("user", "password"),
    [(None, None), (VAN_A, "wrong-password"), ("veh-unknown", "whatever-Zx9")],
    ids=["anonymous", "wrong-password", "unknown-user"],
)
def test_anonymous_and_wrong_password_clients_are_refused(
    prod: ProductionBroker, user: str | None, password: str | None
) -> None:
    client = Client(prod, user, password)
    try:
        assert client.answered.is_set(), "the broker never answered the CONNECT"
        assert not client.connected.is_set()
        assert client.reason in ("Not authorized", "Bad user name or password")
    finally:
        client.close()


def test_no_device_publishes_on_anothers_topics_or_reads_anothers_downlink(
    prod: ProductionBroker,
) -> None:
    cloud = Client(prod, "cloud", CLOUD_PASSWORD)
    van_a = Client(prod, VAN_A, PASSWORDS[VAN_A])
    try:
        assert cloud.connected.is_set() and van_a.connected.is_set()
        cloud.client.subscribe("wayline/v1/+/up", qos=1)
        van_a.client.subscribe(down_topic(VAN_B), qos=1)
        van_a.client.subscribe(down_topic(VAN_A), qos=1)
        wait_for(lambda: len(cloud.subacks) == 1 and len(van_a.subacks) == 2)
        # Mosquitto 2.0 grants the subscription and checks the ACL on each delivery instead.
        van_a.client.publish(up_topic(VAN_B), b"forged", qos=1).wait_for_publish(5)
        van_a.client.publish(up_topic(VAN_A), b"own", qos=1).wait_for_publish(5)
        cloud.client.publish(down_topic(VAN_B), b"for-b", qos=1).wait_for_publish(5)
        cloud.client.publish(down_topic(VAN_A), b"for-a", qos=1).wait_for_publish(5)
        wait_for(lambda: (up_topic(VAN_A), b"own") in cloud.received)
        wait_for(lambda: (down_topic(VAN_A), b"for-a") in van_a.received)
        # Both were published before the controls above arrived, on the same connections.
        assert (up_topic(VAN_B), b"forged") not in cloud.received
        assert all(topic != down_topic(VAN_B) for topic, _ in van_a.received)
    finally:
        cloud.close()
        van_a.close()


# paho leaves the socket of a failed TLS handshake for the garbage collector to close.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_tls_is_verified_by_default(prod: ProductionBroker) -> None:
    # No CA given: the system's trust store does not know the test CA, so no connection,
    # and the refusals are retried with backoff, not in a tight loop.
    url = f"mqtts://{VAN_A}:{PASSWORDS[VAN_A]}@localhost:{prod.tls_port}"
    link = MqttLink(
        client_id=unique_id("tls"),
        broker=parse_broker_url(url),
        subscriptions=[],
        on_message=lambda _t, _p: None,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
    )
    refusals_before = prod.log_text().count("unknown ca")
    link.start()
    try:
        assert not link.wait_connected(2.0)
    finally:
        link.stop()
    refusals = prod.log_text().count("unknown ca") - refusals_before
    assert 1 <= refusals <= 6  # waits of 0.1, 0.2, 0.4, 0.5, 0.5 s: five tries in two seconds


def test_broker_urls_with_credentials_and_tls_files() -> None:
    address = parse_broker_url("mqtts://veh-a1:p%40ss@broker.example.com")
    assert (address.host, address.port, address.username, address.password, address.tls) == (
        "broker.example.com",
        8883,
        "veh-a1",
        "p@ss",
        True,
    )
    assert "p@ss" not in repr(address) and "p%40ss" not in address.url
    assert parse_broker_url("mqtt://h", username="u", password="pw").password == "pw"
    for bad, says in (
        ("mqtt://u:secret-pw@h/x", "path"),
        ("mqtt://h?ca=/etc/hostname", "mqtts://"),
        ("mqtts://h?ca=/no/such/ca.pem", "not found"),
        ("mqtts://h?cert=/etc/hostname", "both cert and key"),
        ("mqtt://h?colour=red", "unknown"),
        ("ws://h", "must look like"),
    ):
        with pytest.raises(BrokerUrlError, match=says) as caught:
            parse_broker_url(bad)
        assert "secret-pw" not in str(caught.value)
