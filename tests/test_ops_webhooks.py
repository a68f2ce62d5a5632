"""Outgoing webhooks against a real HTTP server on 127.0.0.1: signatures, retries with
backoff, a target that times out, a bounded queue that never blocks the caller."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cloud.ops import (
    SIGNATURE_HEADER,
    Notification,
    Recipient,
    SignatureError,
    WebhookChannel,
    WebhookDispatcher,
    WebhookEvent,
    WebhookTarget,
    sign,
    verify,
)

SECRET = "whsec-test-0123456789abcdef0123456789"


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads


class Receiver:
    """A webhook receiver that fails ``fail_times`` times (``status``), or sleeps."""

    def __init__(self, *, fail_times: int = 0, status: int = 500, sleep_s: float = 0.0):
        self.fail_times, self.status, self.sleep_s = fail_times, status, sleep_s
        self.requests: list[tuple[float, dict[str, str], bytes]] = []
        self.release = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append((time.monotonic(), dict(self.headers), body))
                    n = len(receiver.requests)
                if receiver.sleep_s:
                    receiver.release.wait(receiver.sleep_s)
                code = receiver.status if n <= receiver.fail_times else 200
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up (timeout)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="receiver"
        )
        self.thread.start()

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


# --- signatures ---------------------------------------------------------------------------


def test_signature_round_trip_tampering_and_replay() -> None:
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
    with pytest.raises(SignatureError, match="outside"):
        verify(SECRET, body, sign(SECRET, body, now + 3600), now=now)
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
    assert WebhookEvent.exception_raised({"incident_id": "i"}).type == "exception.raised"
    assert WebhookEvent.eta_changed("o-1", {"notify": True}).data["order_id"] == "o-1"


# --- delivery -----------------------------------------------------------------------------


def test_retries_with_backoff_until_the_target_recovers(receivers) -> None:
    receiver = start(receivers, fail_times=3, status=503)
    target = WebhookTarget("oms", receiver.url, SECRET)
    with WebhookDispatcher([target], backoff_base_s=0.05, jitter=0.1, seed=1) as dispatcher:
        event = WebhookEvent.delivery_confirmed("o-1", 1, {"photo": "p.jpg"})
        assert dispatcher.publish(event) == 1
        assert dispatcher.wait_idle(10)
        outcome = dispatcher.outcome(event.event_id, "oms")
    assert outcome is not None and outcome.status == "delivered" and outcome.attempts == 4
    assert len(receiver.requests) == 4
    gaps = [b - a for a, b in zip(outcome.attempt_times, outcome.attempt_times[1:], strict=False)]
    for n, gap in enumerate(gaps):
        assert gap >= 0.05 * 2**n, gaps  # 0.05, 0.1, 0.2 s at least
    assert gaps[2] > gaps[0] * 2
    for _, headers, body in receiver.requests:  # every attempt signed, same event id
        assert verify(SECRET, body, headers[SIGNATURE_HEADER]) > 0
        assert headers["Wayline-Event"] == "delivery.confirmed"
        assert headers["Wayline-Event-Id"] == event.event_id
        assert json.loads(body)["data"]["proof"] == {"photo": "p.jpg"}


@pytest.mark.allow_errors("failed after 1 attempts: HTTP 404")
def test_a_client_error_is_not_retried(receivers) -> None:
    receiver = start(receivers, fail_times=99, status=404)
    with WebhookDispatcher([WebhookTarget("t", receiver.url, SECRET)]) as dispatcher:
        event = WebhookEvent.exception_raised({"incident_id": "i-1"})
        dispatcher.publish(event)
        assert dispatcher.wait_idle(5)
        outcome = dispatcher.outcome(event.event_id, "t")
    assert outcome.status == "failed" and outcome.attempts == 1
    assert outcome.reason == "HTTP 404 from the target"


@pytest.mark.allow_errors(r"to slow failed after 3 attempts: timed out after 0\.2 s")
def test_a_target_that_times_out_never_blocks_the_caller(receivers) -> None:
    slow = start(receivers, sleep_s=3.0)
    fast = start(receivers)
    targets = [
        WebhookTarget("slow", slow.url, SECRET, frozenset({"exception.raised"})),
        WebhookTarget("fast", fast.url, SECRET),
    ]
    failed: list[str] = []
    dispatcher = WebhookDispatcher(
        targets,
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
            dispatcher.publish(event)
        publishing = time.monotonic() - began
        assert publishing < 0.5, f"publishing 40 events took {publishing:.2f} s"
        deadline = time.monotonic() + 5
        while len(fast.requests) < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        # the fast receiver got everything while the slow one was still being retried
        assert len(fast.requests) == 40
        assert dispatcher.outcome(events[4].event_id, "slow").status == "pending"
        assert dispatcher.wait_idle(30)
    first = dispatcher.outcome(events[0].event_id, "slow")
    assert first.status == "failed" and first.attempts == 3
    assert first.reason == "timed out after 0.2 s"
    assert failed == ["timed out after 0.2 s"] * 5
    assert len(slow.requests) == 15


def test_the_queue_is_bounded_and_publish_never_waits() -> None:
    dispatcher = WebhookDispatcher(
        [WebhookTarget("t", "http://127.0.0.1:9/hook", SECRET)], queue_size=3
    )  # not started: nothing drains the queue
    began = time.monotonic()
    queued = [dispatcher.publish(WebhookEvent.eta_changed("o", {})) for _ in range(5)]
    assert time.monotonic() - began < 0.1
    assert queued == [1, 1, 1, 0, 0] and dispatcher.dropped == 2
    assert dispatcher.stop() == 3


def test_targets_receive_only_the_events_they_subscribed_to(receivers) -> None:
    billing = start(receivers)
    target = WebhookTarget("billing", billing.url, SECRET, frozenset({"delivery.confirmed"}))
    with WebhookDispatcher([target]) as dispatcher:
        assert dispatcher.publish(WebhookEvent.eta_changed("o-1", {})) == 0
        assert dispatcher.publish(WebhookEvent.delivery_confirmed("o-1", 1, {})) == 1
        assert dispatcher.wait_idle(5)
    assert [json.loads(b)["type"] for _, _, b in billing.requests] == ["delivery.confirmed"]


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
