"""Durable webhooks through the coordinator: a ``delivery.confirmed`` survives a coordinator
killed with SIGKILL during its backoff or in the middle of a request, and arrives once per
``webhook-id`` with valid Standard Webhooks headers; failed deliveries are visible and can be
sent again through the API.

The coordinator is the real ``wayline cloud`` process on a real Mosquitto (``broker``); the
van is a real sync node; the receiver is an HTTP server on 127.0.0.1 in the test.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from protocol import ProofOfDelivery, StopEvent
from tests.helpers import MosquittoBroker, free_port, unique_id, wait_for
from tests.test_ops_flow import _api, feed, make
from tests.test_ops_webhooks import Receiver, spec_verify, start
from tests.test_sync_broker import make_node

ROOT = Path(__file__).resolve().parents[1]
BACKOFF_S = 3.0  # the coordinator's first backoff: the window in which it is killed


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()


class Cloud:
    """``wayline cloud`` in a process of its own, with its API on 127.0.0.1."""

    def __init__(self, broker: MosquittoBroker, db: Path, log: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [
            sys.executable, "-m", "wayline", "cloud", "--broker", broker.url, "--db", str(db),
            "--http", f"127.0.0.1:{self.port}",
        ]  # fmt: skip
        self.env = {
            **os.environ, "WAYLINE_ENV": "development",
            "WAYLINE_WEBHOOK_ALLOW_PRIVATE": "true",  # the receivers are on 127.0.0.1
            **env,
        }  # fmt: skip
        self.log = log
        self.p: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.p = subprocess.Popen(
                self.args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

        def answers() -> bool:
            assert self.p is not None and self.p.poll() is None, self.log.read_text()[-3000:]
            try:
                return httpx.get(f"{self.url}/v1/webhooks", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answers, timeout=60, interval=0.1)

    def kill(self) -> None:
        assert self.p is not None
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(10)

    def terminate(self) -> None:
        if self.p is not None and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def deliveries(db: Path) -> list[dict[str, Any]]:
    """The coordinator's webhook deliveries, read from its file as another process would."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM webhook_deliveries")]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def one_delivery(db: Path, **expect: Any) -> dict[str, Any] | None:
    """The single delivery, once it has every ``expect``ed value."""
    rows = deliveries(db)
    if len(rows) == 1 and all(rows[0][k] == v for k, v in expect.items()):
        return rows[0]
    return None


def confirm_a_delivery(broker: MosquittoBroker, tmp_path: Path) -> tuple[str, Any]:
    """A van reports a delivered stop with its proof; returns the stop id and the van's node."""
    van = unique_id("van")
    node, _ = make_node(tmp_path / "van.db", van, "device", broker.url)
    node.start()
    stop_id = unique_id("o")
    event = StopEvent(
        event_id=unique_id("ev"), route_id="r-1", plan_version=1, stop_id=stop_id,
        type="delivered", at=int(time.time() * 1000),
        proof=ProofOfDelivery(recipient_name="A. Receiver"), lat=52.5, lon=13.4,
    )  # fmt: skip
    with node.transaction() as tx:
        tx.emit("cloud", event)
    return stop_id, node


def register(cloud: Cloud, receiver: Receiver) -> dict[str, Any]:
    r = httpx.post(
        f"{cloud.url}/v1/webhooks",
        json={"url": receiver.url, "events": ["delivery.confirmed"]},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    target = r.json()
    assert target["secret"].startswith("whsec_")
    return target


def check_arrivals(receiver: Receiver, secret: str, stop_id: str) -> str:
    """Every request signed, the same body under one webhook-id, answered 2xx once."""
    ids = Counter(receiver.ids())
    assert len(ids) == 1, f"one delivery, one webhook-id: {ids}"
    [(delivery_id, _)] = ids.items()
    assert receiver.answered.count(200) == 1, receiver.answered
    bodies = {body for _, _, body in receiver.requests}
    assert len(bodies) == 1, "every attempt sends the same bytes"
    for arrived_at, headers, body in receiver.requests:
        now = time.time() - (time.monotonic() - arrived_at)
        assert spec_verify(secret, body, headers, now) == delivery_id
    payload = json.loads(bodies.pop())
    assert payload["type"] == "delivery.confirmed" and payload["data"]["order_id"] == stop_id
    assert payload["data"]["proof"]["recipient_name"] == "A. Receiver"
    return delivery_id


@pytest.mark.e2e
@pytest.mark.broker
def test_a_coordinator_killed_during_backoff_delivers_after_restart(
    broker: MosquittoBroker, tmp_path: Path, receivers: list[Receiver]
) -> None:
    receiver = start(receivers, fail_times=10**6, status=500)  # 500 until told otherwise
    db = tmp_path / "cloud.db"
    cloud = Cloud(
        broker, db, tmp_path / "cloud.log",
        WAYLINE_WEBHOOK_BACKOFF_BASE_S=str(BACKOFF_S), WAYLINE_WEBHOOK_TIMEOUT_S="5",
    )  # fmt: skip
    node = None
    try:
        cloud.start()
        target = register(cloud, receiver)
        stop_id, node = confirm_a_delivery(broker, tmp_path)
        backoff = wait_for(
            lambda: one_delivery(db, attempts=1, status="pending", last_status_code=500),
            timeout=60,
        )
        cloud.kill()  # SIGKILL during the backoff
        assert backoff["next_attempt_ms"] > time.time() * 1000, "killed after the retry was due"
        assert backoff["next_attempt_ms"] - backoff["last_attempt_ms"] >= BACKOFF_S * 1000
        assert len(receiver.requests) == 1
        with receiver.lock:
            receiver.fail_times = 0  # the receiver is fixed: 200 from now on

        cloud.start()  # on the same database
        wait_for(lambda: one_delivery(db, status="delivered"), timeout=30)
        time.sleep(1.0)  # nothing more comes
        cloud.terminate()
        cloud.start()  # and a restart after the 2xx sends nothing again
        time.sleep(1.5)
        r = httpx.get(f"{cloud.url}/v1/webhooks", timeout=10)
        [listed] = r.json()
        assert listed["deliveries"] == {"pending": 0, "delivered": 1, "failed": 0}
        assert "secret" not in listed
    finally:
        if node is not None:
            node.stop()
            node.store.close()
        cloud.terminate()
    assert len(receiver.requests) == 2 and receiver.answered == [500, 200]
    delivery_id = check_arrivals(receiver, target["secret"], stop_id)
    [row] = deliveries(db)
    assert row["delivery_id"] == delivery_id and row["attempts"] == 2
    assert row["target_id"] == target["target_id"] and row["last_status_code"] == 200
    log = (tmp_path / "cloud.log").read_text()
    assert "Traceback" not in log


@pytest.mark.e2e
@pytest.mark.broker
def test_a_coordinator_killed_mid_request_sends_it_again_under_the_same_id(
    broker: MosquittoBroker, tmp_path: Path, receivers: list[Receiver]
) -> None:
    """The receiver holds the first request; the coordinator dies before it has an answer;
    the next one sends the delivery again, and the receiver de-duplicates on webhook-id."""
    receiver = start(receivers, fail_times=1, status=503, sleep_s=60.0)
    db = tmp_path / "cloud.db"
    cloud = Cloud(broker, db, tmp_path / "cloud.log", WAYLINE_WEBHOOK_TIMEOUT_S="30")
    node = None
    try:
        cloud.start()
        target = register(cloud, receiver)
        stop_id, node = confirm_a_delivery(broker, tmp_path)
        wait_for(lambda: len(receiver.requests) == 1, timeout=60)
        in_flight = wait_for(lambda: one_delivery(db, attempts=0, status="pending"), timeout=5)
        assert in_flight["claimed_ms"] is not None
        cloud.kill()  # SIGKILL while the request is in the receiver's hands
        receiver.release.set()  # it answers now, to nobody

        cloud.start()
        wait_for(lambda: one_delivery(db, status="delivered"), timeout=30)
        time.sleep(1.0)
    finally:
        if node is not None:
            node.stop()
            node.store.close()
        cloud.terminate()
    assert len(receiver.requests) == 2
    delivery_id = check_arrivals(receiver, target["secret"], stop_id)
    [row] = deliveries(db)
    assert row["delivery_id"] == delivery_id and row["attempts"] == 1
    assert row["claimed_ms"] is None


# --- failed deliveries through the API ----------------------------------------------------


def delivered(stop_id: str) -> StopEvent:
    return StopEvent(
        event_id=f"ev-{stop_id}", route_id="r-1", plan_version=1, stop_id=stop_id,
        type="delivered", at=1_780_000_000_000,
    )  # fmt: skip


@pytest.mark.allow_errors(r"failed after 1 attempts: HTTP 404")
def test_failed_deliveries_are_listed_and_sent_again_through_the_api(
    tmp_path: Path, receivers: list[Receiver]
) -> None:
    receiver = start(receivers, fail_times=10**6, status=404)
    c = make(
        tmp_path / "cloud.db",
        webhook_max_attempts=2,
        webhook_backoff_base_s=0.05,
        tick_s=0.05,
        webhook_allow_private=True,
    )
    try:
        c.start()
        with _api(c) as api:
            r = api.post(
                "/v1/webhooks", json={"url": receiver.url, "events": ["delivery.confirmed"]}
            )
            target_id = r.json()["target_id"]
            feed(c, "van-a", delivered("o-1"))
            failed = wait_for(
                lambda: api.get(f"/v1/webhooks/{target_id}/deliveries?status=failed").json(),
                timeout=10,
            )
            [d] = failed
            assert d["attempts"] == 1 and d["last_status_code"] == 404
            assert d["last_error"] == "HTTP 404 from the target" and "body" not in d
            [listed] = api.get("/v1/webhooks").json()
            assert listed["deliveries"] == {"pending": 0, "delivered": 0, "failed": 1}

            with receiver.lock:
                receiver.fail_times = 0
            r = api.post(f"/v1/webhooks/deliveries/{d['delivery_id']}/redeliver")
            assert r.status_code == 200 and r.json()["status"] == "pending"
            wait_for(
                lambda: api.get(f"/v1/webhooks/{target_id}/deliveries?status=delivered").json(),
                timeout=10,
            )
            again = api.post(f"/v1/webhooks/deliveries/{d['delivery_id']}/redeliver")
            assert again.status_code == 409 and "is delivered" in again.json()["error"]
            missing = api.post("/v1/webhooks/deliveries/msg_nothing/redeliver")
            assert missing.status_code == 404
            assert api.get("/v1/webhooks/wh-nothing/deliveries").status_code == 404
            assert api.get(f"/v1/webhooks/{target_id}/deliveries?status=lost").status_code == 422
            assert receiver.ids() == [d["delivery_id"]] * 2

            # a target removed while a delivery to it is in flight: it fails, whatever the
            # receiver answers later, and cannot be sent again
            with receiver.lock:
                receiver.fail_times, receiver.status, receiver.sleep_s = 10**6, 503, 5.0
            feed(c, "van-a", delivered("o-2"))
            wait_for(lambda: len(receiver.requests) == 3, timeout=10)
            assert api.delete(f"/v1/webhooks/{target_id}").status_code == 200
            receiver.release.set()  # the held request gets its 503 now
            [removed] = c.db.webhook_deliveries(target_id, "failed")
            assert removed["last_error"] == "target removed"
            wait_for(lambda: len(receiver.answered) == 3, timeout=10)
            assert c.operations.webhooks.wait_idle(5)
            assert c.db.webhook_delivery(removed["delivery_id"])["status"] == "failed"
            r = api.post(f"/v1/webhooks/deliveries/{removed['delivery_id']}/redeliver")
            assert r.status_code == 409 and "was removed" in r.json()["error"]
    finally:
        c.stop()
