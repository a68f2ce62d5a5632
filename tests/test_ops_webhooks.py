"""Outgoing webhooks against a real HTTP server on 127.0.0.1 and a real SQLite store:
Standard Webhooks signatures, durable deliveries with retries and backoff, a target that
times out, what a restart sends again and what it never sends again."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cloud.operations import OperationsSettings
from cloud.ops import (
    SIGNATURE_HEADER,
    Notification,
    Recipient,
    SettingsError,
    SignatureError,
    WebhookChannel,
    WebhookDispatcher,
    WebhookEvent,
    WebhookTarget,
    sign,
    verify,
)
from cloud.ops.webhook_signing import (
    new_secret,
    sign_standard,
    signing_key,
    standard_headers,
    standard_secret,
    verify_standard,
)
from cloud.ops.webhooks import plan_deliveries
from cloud.store import CloudStore
from sync import open_store
from tests.helpers import wait_for

SECRET = "whsec-test-0123456789abcdef0123456789"  # a secret from before whsec_ (UTF-8 key)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads


class Receiver:
    """A webhook receiver on 127.0.0.1: answers ``status`` to the first ``fail_times``
    requests and then ``later`` (200), or holds each request ``sleep_s``."""

    def __init__(self, *, fail_times: int = 0, status: int = 500, sleep_s: float = 0.0):
        self.fail_times, self.status, self.sleep_s = fail_times, status, sleep_s
        self.later = 200
        self.requests: list[tuple[float, dict[str, str], bytes]] = []
        self.answered: list[int] = []
        self.release = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append((time.monotonic(), dict(self.headers), body))
                    n = len(receiver.requests)
                    code = receiver.status if n <= receiver.fail_times else receiver.later
                if receiver.sleep_s:
                    receiver.release.wait(receiver.sleep_s)
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    return  # the sender gave up (timeout)
                with receiver.lock:
                    receiver.answered.append(code)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="receiver"
        )
        self.thread.start()

    def ids(self) -> list[str]:
        """The ``webhook-id`` of every request, in arrival order."""
        with self.lock:
            return [h["webhook-id"] for _, h, _ in self.requests]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()


def start(receivers: list[Receiver], **kwargs) -> Receiver:
    receiver = Receiver(**kwargs)
    receivers.append(receiver)
    return receiver


def open_db(path: Path) -> CloudStore:
    return CloudStore(open_store(path))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[CloudStore]:
    store = open_db(tmp_path / "cloud.db")
    yield store
    store.store.close()


def add_target(db: CloudStore, target: WebhookTarget) -> WebhookTarget:
    row = {
        "target_id": target.target_id, "url": target.url, "secret": target.secret,
        "events": sorted(target.events), "carrier_id": None, "created_by": "test",
        "created_ms": 0,
    }  # fmt: skip
    with db.store.transaction() as conn:
        db.put_webhook_target(conn, row)
    return target


def publish(db: CloudStore, event: WebhookEvent, dispatcher: WebhookDispatcher | None) -> int:
    """What the operations worker does with a webhook outbox entry."""
    with db.store.transaction() as conn:
        targets = db.webhook_target_objects(conn)
        added = db.add_webhook_deliveries(
            conn, event, plan_deliveries(event, targets), int(time.time() * 1000)
        )
    if dispatcher is not None:
        dispatcher.wake()
    return added


def row(db: CloudStore, event: WebhookEvent, target_id: str) -> dict:
    [found] = [
        d for d in db.webhook_deliveries(target_id) if d["event_id"] == event.event_id
    ]  # fmt: skip
    return found


# --- signatures ---------------------------------------------------------------------------


def spec_verify(whsec: str, body: bytes, headers: dict[str, str], now: float) -> str:
    """Standard Webhooks verification written from the spec's text, not from our signer:
    the key is the base64 after ``whsec_``; the signed content is ``{id}.{timestamp}.{body}``;
    ``webhook-signature`` is a space-separated list of ``v1,<base64>``; the timestamp must be
    within 5 minutes. Returns the ``webhook-id``."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, signatures = (
        lower["webhook-id"], lower["webhook-timestamp"], lower["webhook-signature"]
    )  # fmt: skip
    assert abs(now - int(stamp)) <= 300, "timestamp outside the tolerance"
    assert whsec.startswith("whsec_")
    key = base64.b64decode(whsec[len("whsec_") :])
    content = msg_id.encode() + b"." + stamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest())
    for entry in signatures.split(" "):
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return msg_id
    raise AssertionError(f"no v1 signature matches: {signatures}")


def test_standard_signature_round_trip_tampering_and_replay() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(signing_key(secret)) == 32
    body = b'{"id":"e1","type":"eta.changed"}'
    now = 1_780_000_000
    headers = standard_headers(secret, "msg_1", now, body)
    assert headers["webhook-id"] == "msg_1" and headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"].startswith("v1,")
    assert verify_standard(secret, body, headers, now=now + 10) == "msg_1"
    assert spec_verify(secret, body, headers, now) == "msg_1"
    with pytest.raises(SignatureError, match="does not match"):
        verify_standard(secret, body + b" ", headers, now=now)
    with pytest.raises(SignatureError, match="does not match"):
        verify_standard(new_secret(), body, headers, now=now)
    with pytest.raises(SignatureError, match="does not match"):  # the id is signed too
        verify_standard(secret, body, {**headers, "webhook-id": "msg_2"}, now=now)
    with pytest.raises(SignatureError, match="outside the 300 s window"):
        verify_standard(secret, body, headers, now=now + 301)
    with pytest.raises(SignatureError, match="are required"):
        verify_standard(secret, body, {"webhook-id": "msg_1"}, now=now)
    with pytest.raises(SignatureError, match="not unix seconds"):
        verify_standard(secret, body, {**headers, "webhook-timestamp": "soon"}, now=now)
    rotated = {**headers, "webhook-signature": f"v1,{'A' * 44} {headers['webhook-signature']}"}
    assert verify_standard(secret, body, rotated, now=now) == "msg_1"  # during a rotation
    with pytest.raises(ValueError, match="must not contain"):
        sign_standard(secret, "msg.1", now, body)


def test_a_secret_from_before_whsec_keeps_its_key() -> None:
    """Targets registered before the standard keep their secret: its UTF-8 bytes are the key,
    and its ``whsec_`` form is what a Standard Webhooks verifier takes."""
    body, now = b"{}", 1_780_000_000
    headers = standard_headers(SECRET, "msg_1", now, body)
    whsec = standard_secret(SECRET)
    assert base64.b64decode(whsec.removeprefix("whsec_")) == SECRET.encode()
    assert spec_verify(whsec, body, headers, now) == "msg_1"
    assert verify_standard(SECRET, body, headers, now=now) == "msg_1"
    assert verify(SECRET, body, headers[SIGNATURE_HEADER], now=now) == now
    with pytest.raises(SignatureError, match="base64"):
        signing_key("whsec_not*base64")


def test_legacy_signature_round_trip_tampering_and_replay() -> None:
    body = b'{"id":"e1","type":"eta.changed"}'
    now = 1_780_000_000
    header = sign(SECRET, body, now)
    assert header.startswith(f"t={now},v1=")
    assert verify(SECRET, body, header, now=now + 10) == now
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, body.replace(b"eta", b"eta "), header, now=now)
    with pytest.raises(SignatureError, match="does not match"):
        verify("another-secret", body, header, now=now)
    with pytest.raises(SignatureError, match="outside the 300 s window"):
        verify(SECRET, body, header, now=now + 301)  # a replay an hour later is refused
    with pytest.raises(SignatureError, match="no Wayline-Signature"):
        verify(SECRET, body, None)
    with pytest.raises(SignatureError, match="must be"):
        verify(SECRET, body, "v1=abc", now=now)
    with pytest.raises(SignatureError, match="not a timestamp"):
        verify(SECRET, body, "t=yesterday,v1=abc", now=now)
    rotated = f"{header},v1={'0' * 64}"  # during secret rotation two signatures are sent
    assert verify(SECRET, body, rotated, now=now) == now


def test_event_bodies() -> None:
    event = WebhookEvent.delivery_confirmed(
        "o-1",
        1_780_000_000_000,
        {"signature_ref": "sig/1.png", "lat": 52.5, "lon": 13.4},
        carrier_id="swiftgo",
    )
    payload = json.loads(event.body())
    assert payload["type"] == "delivery.confirmed" and payload["id"] == event.event_id
    assert payload["data"]["proof"]["signature_ref"] == "sig/1.png"
    assert payload["data"]["carrier_id"] == "swiftgo"
    assert WebhookEvent("eta.changed", {}, "e", 1_780_000_000_123).body() == (
        b'{"created_ms":1780000000123,"data":{},"id":"e",'
        b'"timestamp":"2026-05-28T20:26:40.123Z","type":"eta.changed"}'
    )
    assert WebhookEvent.exception_raised({"incident_id": "i"}).type == "exception.raised"
    assert WebhookEvent.eta_changed("o-1", {"notify": True}).data["order_id"] == "o-1"


# --- delivery -----------------------------------------------------------------------------


def test_a_received_delivery_verifies_with_the_spec(receivers, db: CloudStore) -> None:
    """What arrives verifies with a verifier written from the spec, and carries the event."""
    receiver = start(receivers)
    secret = new_secret()
    add_target(db, WebhookTarget("billing", receiver.url, secret))
    event = WebhookEvent.delivery_confirmed("o-1", 1, {"photo": "p.jpg"})
    with WebhookDispatcher(db) as dispatcher:
        assert publish(db, event, dispatcher) == 1
        assert dispatcher.wait_idle(10)
    [(_, headers, body)] = receiver.requests
    delivery = row(db, event, "billing")
    assert spec_verify(secret, body, headers, time.time()) == delivery["delivery_id"]
    assert delivery["delivery_id"].startswith("msg_")
    assert headers["Wayline-Event"] == "delivery.confirmed"
    assert headers["Wayline-Event-Id"] == event.event_id
    assert json.loads(body)["data"]["proof"] == {"photo": "p.jpg"}
    assert delivery["status"] == "delivered" and delivery["last_status_code"] == 200


def test_retries_with_backoff_until_the_target_recovers(receivers, db: CloudStore) -> None:
    receiver = start(receivers, fail_times=3, status=503)
    add_target(db, WebhookTarget("oms", receiver.url, SECRET))
    event = WebhookEvent.delivery_confirmed("o-1", 1, {"photo": "p.jpg"})
    with WebhookDispatcher(db, backoff_base_s=0.05, jitter=0.1, seed=1) as dispatcher:
        publish(db, event, dispatcher)
        assert dispatcher.wait_idle(10)
        outcome = dispatcher.outcome(event.event_id, "oms")
    assert outcome is not None and outcome.status == "delivered" and outcome.attempts == 4
    assert receiver.answered == [503, 503, 503, 200]
    times = [t for t, _, _ in receiver.requests]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for n, gap in enumerate(gaps):
        assert gap >= 0.05 * 2**n * 0.9, gaps  # 0.05, 0.1, 0.2 s at least
    assert gaps[2] > gaps[0] * 2
    assert len(set(receiver.ids())) == 1, "every retry has the delivery's one webhook-id"
    for _, headers, body in receiver.requests:  # every attempt signed, both ways
        assert verify_standard(SECRET, body, headers) == outcome.delivery_id
        assert verify(SECRET, body, headers[SIGNATURE_HEADER]) > 0


@pytest.mark.allow_errors("failed after 1 attempts: HTTP 404")
def test_a_client_error_is_not_retried(receivers, db: CloudStore) -> None:
    receiver = start(receivers, fail_times=99, status=404)
    add_target(db, WebhookTarget("t", receiver.url, SECRET))
    event = WebhookEvent.exception_raised({"incident_id": "i-1"})
    with WebhookDispatcher(db) as dispatcher:
        publish(db, event, dispatcher)
        assert dispatcher.wait_idle(5)
        outcome = dispatcher.outcome(event.event_id, "t")
    assert outcome.status == "failed" and outcome.attempts == 1
    assert outcome.reason == "HTTP 404 from the target" and outcome.status_code == 404
    assert dispatcher.stats["failed"] == 1


@pytest.mark.allow_errors(r"to slow failed after 3 attempts: timed out after 0\.2 s")
def test_a_target_that_times_out_never_blocks_the_others(receivers, db: CloudStore) -> None:
    """A receiver that hangs gets each delivery again, always under the same webhook-id."""
    slow = start(receivers, sleep_s=3.0)
    fast = start(receivers)
    add_target(db, WebhookTarget("slow", slow.url, SECRET, frozenset({"exception.raised"})))
    add_target(db, WebhookTarget("fast", fast.url, SECRET))
    failed: list[str] = []
    dispatcher = WebhookDispatcher(
        db,
        timeout_s=0.2,
        max_attempts=3,
        backoff_base_s=0.05,
        workers=2,
        on_outcome=lambda o: failed.append(o.reason or "") if o.status == "failed" else None,
    )
    with dispatcher:
        began = time.monotonic()
        events = [WebhookEvent.exception_raised({"incident_id": f"i-{n}"}) for n in range(5)]
        events += [WebhookEvent.eta_changed(f"o-{n}", {"shift_min": n}) for n in range(35)]
        for event in events:  # the 5 exceptions go to both, the ETA changes to fast only
            publish(db, event, dispatcher)
        publishing = time.monotonic() - began
        assert publishing < 2.0, f"publishing 40 events took {publishing:.2f} s"
        wait_for(lambda: len(fast.requests) >= 40, timeout=10)
        # the fast receiver got everything while the slow one was still being retried
        assert len(fast.requests) == 40
        assert dispatcher.outcome(events[4].event_id, "slow").status == "pending"
        assert dispatcher.wait_idle(30)
    first = dispatcher.outcome(events[0].event_id, "slow")
    assert first.status == "failed" and first.attempts == 3
    assert first.reason == "timed out after 0.2 s"
    assert failed == ["timed out after 0.2 s"] * 5
    ids = slow.ids()
    assert len(ids) == 15 and len(set(ids)) == 5 and all(ids.count(i) == 3 for i in ids)
    assert db.webhook_delivery_counts() == {
        "slow": {"pending": 0, "delivered": 0, "failed": 5},
        "fast": {"pending": 0, "delivered": 40, "failed": 0},
    }


def test_targets_receive_only_the_events_they_subscribed_to(receivers, db: CloudStore) -> None:
    billing = start(receivers)
    add_target(db, WebhookTarget("billing", billing.url, SECRET, frozenset({"delivery.confirmed"})))
    with WebhookDispatcher(db) as dispatcher:
        assert publish(db, WebhookEvent.eta_changed("o-1", {}), dispatcher) == 0
        confirmed = WebhookEvent.delivery_confirmed("o-1", 1, {})
        assert publish(db, confirmed, dispatcher) == 1
        assert publish(db, confirmed, dispatcher) == 0  # planned once per target
        assert dispatcher.wait_idle(5)
    assert [json.loads(b)["type"] for _, _, b in billing.requests] == ["delivery.confirmed"]


# --- durable: what a restart sends again, and what it never sends again -------------------


def test_a_delivery_in_flight_when_the_process_died_goes_out_again(
    receivers, tmp_path: Path
) -> None:
    """Claimed by a process that died mid-request: the next start sends it, same id."""
    receiver = start(receivers)
    first = open_db(tmp_path / "cloud.db")
    add_target(first, WebhookTarget("t", receiver.url, SECRET))
    event = WebhookEvent.delivery_confirmed("o-1", 1, {})
    publish(first, event, None)
    claimed = first.claim_webhook_delivery(int(time.time() * 1000), ())
    assert claimed is not None and first.claim_webhook_delivery(int(time.time() * 1000), ()) is None
    first.store.close()  # the process is gone, the claim is still in the file

    again = open_db(tmp_path / "cloud.db")
    try:
        with WebhookDispatcher(again) as dispatcher:
            assert dispatcher.wait_idle(10)
        assert receiver.ids() == [claimed.delivery_id]
        assert row(again, event, "t")["status"] == "delivered"
    finally:
        again.store.close()


def test_a_delivery_answered_2xx_is_never_sent_again(receivers, tmp_path: Path) -> None:
    receiver = start(receivers)
    db = open_db(tmp_path / "cloud.db")
    add_target(db, WebhookTarget("t", receiver.url, SECRET))
    event = WebhookEvent.delivery_confirmed("o-1", 1, {})
    with WebhookDispatcher(db) as dispatcher:
        publish(db, event, dispatcher)
        assert dispatcher.wait_idle(10)
    db.store.close()
    db = open_db(tmp_path / "cloud.db")  # a restart
    try:
        with WebhookDispatcher(db, idle_s=0.05) as dispatcher:
            time.sleep(0.5)
            assert dispatcher.stats["attempts"] == 0
        assert len(receiver.requests) == 1
    finally:
        db.store.close()


@pytest.mark.allow_errors("failed after 2 attempts: HTTP 503")
def test_a_failed_delivery_can_be_sent_again(receivers, db: CloudStore) -> None:
    receiver = start(receivers, fail_times=2, status=503)
    add_target(db, WebhookTarget("t", receiver.url, SECRET))
    event = WebhookEvent.delivery_confirmed("o-1", 1, {})
    with WebhookDispatcher(db, max_attempts=2, backoff_base_s=0.01) as dispatcher:
        publish(db, event, dispatcher)
        assert dispatcher.wait_idle(5)
        failed = row(db, event, "t")
        assert failed["status"] == "failed" and failed["last_error"] == "HTTP 503 from the target"
        with db.store.transaction() as conn:
            assert db.redeliver_webhook(conn, failed["delivery_id"], int(time.time() * 1000))
            assert not db.redeliver_webhook(conn, failed["delivery_id"], 0)  # pending now
        dispatcher.wake()
        assert dispatcher.wait_idle(5)
    assert row(db, event, "t")["status"] == "delivered"
    assert receiver.answered == [503, 503, 200]
    assert set(receiver.ids()) == {failed["delivery_id"]}


# --- settings -----------------------------------------------------------------------------


def test_webhook_timings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from wayline.agents import cloud_settings
    from wayline.errors import ConfigError
    from wayline.settings import CloudConfig
    from wayline.sources import load

    flags = {"broker": "mqtt://127.0.0.1", "db": "c.db", "env": "development"}
    assert OperationsSettings().webhook_max_attempts == 18
    monkeypatch.setenv("WAYLINE_WEBHOOK_BACKOFF_BASE_S", "0.5")
    monkeypatch.setenv("WAYLINE_WEBHOOK_MAX_ATTEMPTS", "3")
    settings = cloud_settings(load(CloudConfig, flags)).operations
    assert settings.webhook_backoff_base_s == 0.5 and settings.webhook_max_attempts == 3
    monkeypatch.setenv("WAYLINE_WEBHOOK_MAX_ATTEMPTS", "many")
    with pytest.raises(ConfigError, match="WAYLINE_WEBHOOK_MAX_ATTEMPTS"):
        load(CloudConfig, flags)
    with pytest.raises(SettingsError, match="webhook_max_attempts must be at least 1"):
        OperationsSettings(webhook_max_attempts=0)


# --- the webhook notification channel -----------------------------------------------------


def test_webhook_channel_posts_a_signed_notification(receivers) -> None:
    receiver = start(receivers)
    channel = WebhookChannel(SECRET, timeout_s=2)
    recipient = Recipient("c-1", webhook_url=receiver.url, preferences=("webhook",))
    note = Notification(
        recipient, "Your window", "Between 14:00 and 15:00", data={"change": {"shift_min": 25}}
    )
    delivery = channel.send(note)
    assert delivery.ok and delivery.detail == "HTTP 200"
    _, headers, body = receiver.requests[0]
    verify(SECRET, body, headers[SIGNATURE_HEADER])
    assert json.loads(body)["data"]["change"]["shift_min"] == 25

    down = WebhookChannel(SECRET, url="http://127.0.0.1:9/none", timeout_s=1)
    missed = down.send(Notification(Recipient("c-2"), "s", "t"))
    assert not missed.ok and "cannot reach" in missed.detail
