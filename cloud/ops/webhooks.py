"""Outgoing webhooks: signed payloads, delivered in the background with retries.

Signature (Stripe's scheme): ``Wayline-Signature: t=<unix seconds>,v1=<hex>`` where ``v1``
is HMAC-SHA256 over ``f"{t}.".encode() + body`` with the target's secret. Receivers call
:func:`verify`, which also refuses a timestamp outside the replay window.

:class:`WebhookDispatcher` never blocks its caller: :meth:`~WebhookDispatcher.publish`
puts a delivery per subscribed target on a bounded queue and returns; when the queue is
full the delivery is dropped, counted and logged. Worker threads POST with a timeout; a
timeout, a connection error or a 408/425/429/5xx is retried with exponential backoff and
jitter, up to ``max_attempts``; then, or at once for any other 4xx, the delivery is marked
failed with its reason. At most ``per_target`` deliveries to one target are in flight at
once, so a slow receiver holds up only its own deliveries, never another target's.

Events: ``delivery.confirmed`` (with proof, for billing), ``exception.raised``,
``eta.changed``.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import logging
import random
import threading
import time
import urllib.parse
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cloud.ops.errors import DeliveryError, SignatureError

__all__ = [
    "EVENT_TYPES",
    "SIGNATURE_HEADER",
    "WebhookDispatcher",
    "WebhookEvent",
    "WebhookOutcome",
    "WebhookTarget",
    "post_json",
    "sign",
    "verify",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Wayline-Signature"
EVENT_HEADER = "Wayline-Event"
ID_HEADER = "Wayline-Event-Id"
#: Seconds a signature's timestamp may differ from the receiver's clock.
REPLAY_WINDOW_S = 300
EVENT_TYPES = ("delivery.confirmed", "exception.raised", "eta.changed")
_RETRY_STATUSES = {408, 425, 429}
_KEEP_OUTCOMES = 10_000


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The ``Wayline-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str | bytes,
    body: bytes,
    header: str | None,
    *,
    now: float | None = None,
    tolerance_s: float = REPLAY_WINDOW_S,
) -> int:
    """Check a received webhook; return its timestamp or raise :class:`SignatureError`."""
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError(
                    f"{SIGNATURE_HEADER}: t={value!r} is not a timestamp"
                ) from None
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError(f"{SIGNATURE_HEADER} must be 't=<seconds>,v1=<hex>'")
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(
            f"signature timestamp is {abs(now - timestamp):.0f} s from now, outside the "
            f"{tolerance_s:g} s window (a replay, or a skewed clock)"
        )
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("signature does not match the body (tampered, or a wrong secret)")
    return timestamp


@dataclass(frozen=True)
class WebhookEvent:
    """One event for integrations; ``body()`` is the exact bytes that are signed and sent."""

    type: str
    data: Mapping[str, Any]
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def body(self) -> bytes:
        payload = {"id": self.event_id, "type": self.type, "created_ms": self.created_ms}
        payload["data"] = dict(self.data)
        return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def delivery_confirmed(
        cls, order_id: str, at_ms: int, proof: Mapping[str, Any], **more: Any
    ) -> WebhookEvent:
        """A delivery that happened, with its proof (signature, photo ref, position)."""
        return cls(
            "delivery.confirmed",
            {"order_id": order_id, "at_ms": at_ms, "proof": dict(proof), **more},
        )

    @classmethod
    def exception_raised(cls, decision: Mapping[str, Any]) -> WebhookEvent:
        """An exception and what the policy decided (``Decision.as_dict()``)."""
        return cls("exception.raised", dict(decision))

    @classmethod
    def eta_changed(cls, order_id: str, change: Mapping[str, Any]) -> WebhookEvent:
        """A customer window that changed (``EtaDecision.as_dict()``)."""
        return cls("eta.changed", {"order_id": order_id, **change})


@dataclass(frozen=True)
class WebhookTarget:
    """A receiver: where, with which secret, for which events (empty: all)."""

    target_id: str
    url: str
    secret: str
    events: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(
                f"webhook target {self.target_id}: URL must be http(s), not {self.url!r}"
            )

    def wants(self, event: WebhookEvent) -> bool:
        return not self.events or event.type in self.events


@dataclass
class WebhookOutcome:
    """Where one event's delivery to one target stands."""

    event_id: str
    target_id: str
    status: str = "pending"  # pending | delivered | failed | dropped
    attempts: int = 0
    reason: str | None = None
    attempt_times: list[float] = field(default_factory=list)


def post_json(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
    """POST ``body`` as JSON; the status on 2xx, else :class:`DeliveryError`.

    ``http.client`` directly (not urllib) so that the connection is closed on every path,
    a timeout while waiting for the answer included.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"not an http(s) URL: {url!r}", retryable=False)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    connection = kind(parts.hostname, parts.port, timeout=timeout_s)
    try:
        connection.request(
            "POST", path, body=body, headers={"Content-Type": "application/json", **headers}
        )
        response = connection.getresponse()
        response.read(65536)
        status = response.status
    except TimeoutError:
        raise DeliveryError(f"timed out after {timeout_s:g} s", retryable=True) from None
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"cannot reach the target: {exc}", retryable=True) from None
    finally:
        connection.close()
    if 200 <= status < 300:
        return status
    retry = status in _RETRY_STATUSES or status >= 500
    raise DeliveryError(f"HTTP {status} from the target", retryable=retry)


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    event: WebhookEvent = field(compare=False)
    target: WebhookTarget = field(compare=False)
    outcome: WebhookOutcome = field(compare=False)


class WebhookDispatcher:
    """Delivers events to targets from worker threads (see the module docstring)."""

    def __init__(
        self,
        targets: Iterable[WebhookTarget],
        *,
        queue_size: int = 1000,
        workers: int = 4,
        per_target: int = 1,
        max_attempts: int = 6,
        timeout_s: float = 5.0,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 300.0,
        jitter: float = 0.2,
        seed: int | None = None,
        on_outcome: Callable[[WebhookOutcome], None] | None = None,
    ):
        self.targets = list(targets)
        self.queue_size = queue_size
        self.max_attempts = max_attempts
        self.per_target = per_target
        self.timeout_s = timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.jitter = jitter
        self.dropped = 0
        self._on_outcome = on_outcome
        self._rng = random.Random(seed)
        self._heap: list[_Job] = []
        self._inflight = 0
        self._busy: dict[str, int] = {}
        self._seq = itertools.count()
        self._outcomes: OrderedDict[tuple[str, str], WebhookOutcome] = OrderedDict()
        self._cond = threading.Condition()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._run, name=f"wayline-webhooks-{i}", daemon=True)
            for i in range(workers)
        ]

    def start(self) -> WebhookDispatcher:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float | None = None) -> int:
        """Stop the workers; returns how many deliveries were left undelivered."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        limit = self.timeout_s + 1.0 if timeout is None else timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(limit)
        with self._cond:
            left = len(self._heap)
        if left:
            log.warning("webhooks: stopped with %d deliveries still queued", left)
        return left

    def __enter__(self) -> WebhookDispatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def publish(self, event: WebhookEvent) -> int:
        """Queue ``event`` for every target that wants it; never blocks. Returns how many."""
        queued = 0
        with self._cond:
            for target in self.targets:
                if not target.wants(event):
                    continue
                outcome = self._remember(WebhookOutcome(event.event_id, target.target_id))
                if len(self._heap) + self._inflight >= self.queue_size:
                    self.dropped += 1
                    outcome.status, outcome.reason = "dropped", "queue full"
                    log.warning(
                        "webhooks: queue full, %s to %s dropped", event.type, target.target_id
                    )
                    continue
                heapq.heappush(
                    self._heap, _Job(time.monotonic(), next(self._seq), event, target, outcome)
                )
                queued += 1
            self._cond.notify_all()
        return queued

    def outcome(self, event_id: str, target_id: str) -> WebhookOutcome | None:
        with self._cond:
            return self._outcomes.get((event_id, target_id))

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or in flight (tests, orderly shutdown)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._heap and not self._inflight, timeout)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), with jitter."""
        delay = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (attempt - 1))
        return float(delay * (1 + self.jitter * self._rng.random()))

    def _remember(self, outcome: WebhookOutcome) -> WebhookOutcome:
        self._outcomes[(outcome.event_id, outcome.target_id)] = outcome
        while len(self._outcomes) > _KEEP_OUTCOMES:
            self._outcomes.popitem(last=False)
        return outcome

    def _take(self) -> tuple[_Job | None, float | None]:
        """The earliest due job of a target not already busy, or how long to wait."""
        best: int | None = None
        for i, job in enumerate(self._heap):
            if self._busy.get(job.target.target_id, 0) >= self.per_target:
                continue
            if best is None or job < self._heap[best]:
                best = i
        if best is None:
            return None, None
        wait = self._heap[best].due - time.monotonic()
        if wait > 0:
            return None, wait
        job = self._heap[best]
        self._heap[best] = self._heap[-1]
        self._heap.pop()
        heapq.heapify(self._heap)
        return job, None

    def _run(self) -> None:
        while True:
            with self._cond:
                job = None
                while job is None:
                    if self._stopping:
                        return
                    job, wait = self._take()
                    if job is None:
                        self._cond.wait(wait)
                self._inflight += 1
                target_id = job.target.target_id
                self._busy[target_id] = self._busy.get(target_id, 0) + 1
            try:
                self._attempt(job)
            finally:
                with self._cond:
                    self._inflight -= 1
                    self._busy[target_id] -= 1
                    self._cond.notify_all()

    def _attempt(self, job: _Job) -> None:
        outcome, target, event = job.outcome, job.target, job.event
        body = event.body()
        headers = {
            SIGNATURE_HEADER: sign(target.secret, body, int(time.time())),
            EVENT_HEADER: event.type,
            ID_HEADER: event.event_id,
        }
        with self._cond:
            outcome.attempts += 1
            outcome.attempt_times.append(time.monotonic())
        failure: DeliveryError | None = None
        try:
            post_json(target.url, body, headers, self.timeout_s)
        except DeliveryError as exc:
            failure = exc
        except Exception as exc:  # a bug or a malformed URL must not stop the worker
            log.exception("webhook %s to %s: unexpected error", event.event_id, target.target_id)
            failure = DeliveryError(f"unexpected error: {exc!r}"[:300], retryable=False)
        with self._cond:
            if failure is None:
                outcome.status, outcome.reason = "delivered", None
            elif failure.retryable and outcome.attempts < self.max_attempts:
                outcome.reason = failure.reason
                delay = self.backoff(outcome.attempts)
                log.warning(
                    "webhook %s %s to %s: %s; retry %d in %.2f s",
                    event.type,
                    event.event_id,
                    target.target_id,
                    failure.reason,
                    outcome.attempts + 1,
                    delay,
                )
                job = _Job(time.monotonic() + delay, next(self._seq), event, target, outcome)
                heapq.heappush(self._heap, job)
                self._cond.notify_all()
                return
            else:
                outcome.status, outcome.reason = "failed", failure.reason
                log.error(
                    "webhook %s %s to %s failed after %d attempts: %s",
                    event.type,
                    event.event_id,
                    target.target_id,
                    outcome.attempts,
                    failure.reason,
                )
        if self._on_outcome is not None:
            try:
                self._on_outcome(outcome)
            except Exception:
                log.exception("webhook outcome callback failed for %s", event.event_id)
