"""The test harness itself: real Mosquitto, real Chromium, strictness fixtures."""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.helpers import REPO_ROOT, MosquittoBroker, unique_id, wait_for

pytest_plugins = ["pytester"]


class Collector:
    """A paho MQTT 5 client that records what it receives; always cleaned up."""

    def __init__(self, broker: MosquittoBroker, client_id: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.on_message = lambda _c, _u, msg: self.messages.append(msg)
        self.client.on_connect = lambda *_a: self.connected.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self.connected.wait(5), "no CONNACK"

    def subscribe(self, topic: str) -> None:
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.subscribe(topic, qos=1)
        assert subscribed.wait(5), "no SUBACK"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def collectors() -> Iterator[list[Collector]]:
    made: list[Collector] = []
    yield made
    for collector in made:
        collector.close()


@pytest.mark.broker
def test_mosquitto_qos1_round_trip(mosquitto: MosquittoBroker, collectors: list[Any]) -> None:
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    device = unique_id("veh")
    topic = f"wayline/v1/{device}/up"
    cloud = Collector(mosquitto, unique_id("cloud"))
    collectors.append(cloud)
    cloud.subscribe(topic)
    vehicle = Collector(mosquitto, device)
    collectors.append(vehicle)
    infos = [vehicle.client.publish(topic, f"m{i}".encode(), qos=1) for i in range(200)]
    for info in infos:
        info.wait_for_publish(5)
    wait_for(lambda: len(cloud.messages) == 200, timeout=10, message="200 messages")
    assert [m.payload for m in cloud.messages] == [f"m{i}".encode() for i in range(200)]
    assert {m.qos for m in cloud.messages} == {1}


def _publish_retained(broker: MosquittoBroker, topic: str, payload: bytes) -> None:
    client = Collector(broker, unique_id("pub"))
    try:
        client.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    finally:
        client.close()


def _retained(broker: MosquittoBroker, topic: str, collectors: list[Any]) -> list[bytes]:
    reader = Collector(broker, unique_id("reader"))
    collectors.append(reader)
    reader.subscribe(topic)
    with contextlib.suppress(TimeoutError):
        wait_for(lambda: reader.messages, timeout=0.5)
    return [m.payload for m in reader.messages]


@pytest.mark.broker
def test_restart_keeps_or_forgets_retained(broker: MosquittoBroker, collectors: list[Any]) -> None:
    topic = f"wayline/v1/{unique_id('veh')}/state"
    _publish_retained(broker, topic, b"online")
    port = broker.port

    broker.restart(persistence=True)
    assert broker.port == port
    assert _retained(broker, topic, collectors) == [b"online"]

    broker.restart(persistence=False)
    assert broker.port == port
    assert _retained(broker, topic, collectors) == []


@pytest.mark.broker
def test_kill_and_start(broker: MosquittoBroker) -> None:
    pid = broker.pid
    broker.kill()
    assert not broker.running
    broker.start()
    assert broker.running and broker.pid != pid
    assert "running" in broker.log_text()


@pytest.mark.broker
def test_session_broker_restarted_after_a_test_stops_it(mosquitto: MosquittoBroker) -> None:
    mosquitto.stop()  # _restore_session_broker starts it again after this test


@pytest.mark.broker
def test_session_broker_is_back(mosquitto: MosquittoBroker) -> None:
    assert mosquitto.running


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "index.html").write_text(
        "<!doctype html><title>Wayline harness</title><p id=ok>loaded</p>"
    )
    handler = partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.browser
def test_chromium_loads_a_local_page(page: Any, http_server: str) -> None:
    page.goto(http_server)
    assert page.title() == "Wayline harness"
    assert page.locator("#ok").inner_text() == "loaded"


@pytest.mark.allow_errors("expected by this test")
def test_allowed_error_by_marker() -> None:
    logging.getLogger("wayline.test").error("expected by this test")


def test_allowed_error_by_fixture(allowed_errors: list[str]) -> None:
    allowed_errors.append(r"bad message on wayline/v1/\S+/up")
    logging.getLogger("wayline.test").error("bad message on wayline/v1/veh-1/up: truncated")


@pytest.fixture
def inner_pytest(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytest run in a subprocess that uses this conftest."""
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    )
    pytester.makeini(
        "[pytest]\n"
        "addopts = --strict-markers -p no:cacheprovider\n"
        "markers =\n    allow_errors: expected error logs\n"
    )
    pytester.makeconftest('pytest_plugins = ["tests.conftest"]\n')
    return pytester


def test_unexpected_error_log_fails_the_test(inner_pytest: pytest.Pytester) -> None:
    inner_pytest.makepyfile(
        """
        import logging, pytest

        def test_logs_error():
            logging.getLogger("wayline.x").error("store is corrupt")

        @pytest.mark.allow_errors("other")
        def test_logs_other_error():
            logging.getLogger("wayline.x").error("store is corrupt")

        @pytest.mark.allow_errors
        def test_allowed():
            logging.getLogger("wayline.x").exception("anything")

        def test_warning_is_fine():
            logging.getLogger("wayline.x").warning("just a warning")
        """
    )
    result = inner_pytest.runpytest_subprocess()
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(
        ["*unexpected error log records*", "*ERROR wayline.x: store is corrupt*"]
    )


def test_leftover_thread_fails_the_test(inner_pytest: pytest.Pytester) -> None:
    inner_pytest.makepyfile(
        """
        import threading, time

        stop = threading.Event()

        def test_leaks_thread():
            threading.Thread(target=stop.wait, name="leaky", daemon=True).start()

        def test_cleanup():
            stop.set()
        """
    )
    result = inner_pytest.runpytest_subprocess("-o", "timeout=60")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*left these running*", "*thread 'leaky'*"])
