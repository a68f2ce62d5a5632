"""Outgoing webhooks: events, targets, and deliveries that survive a restart.

Every delivery of an event to a target, and every retry of it, lives in a
:class:`DeliveryStore` (the coordinator's database: :mod:`cloud.store.webhooks`), written in
the same transaction that marks the event's outbox entry handled, so neither a crash before
the first attempt nor one during a backoff loses it. :class:`WebhookDispatcher`'s worker
threads claim due deliveries, POST them signed (:mod:`cloud.ops.webhook_signing`: the
Standard Webhooks headers, ``webhook-id`` being the delivery's id, the same on every retry)
and record the outcome:

- 2xx: ``delivered``; it is never sent again;
- a timeout, a connection error or a 408/425/429/5xx: retried after
  ``backoff_base_s * 2 ** (attempt - 1)`` (capped at ``backoff_max_s``) plus up to ``jitter`` of
  it at random, until ``max_attempts``; then ``failed`` with its reason;
- any other status: ``failed`` at once (a redirect or a refusal will not change by itself).

A receiver may see a delivery more than once (it timed out, or the coordinator died between
its answer and the record of it) and always with the same ``webhook-id``; one that answered
2xx and whose answer was recorded is never sent that delivery again. On start, claims of a
process that died are released, so what was in flight then is sent again. At most
``per_target`` deliveries to one target are in flight at once, so a slow receiver holds up
only its own deliveries. A failed delivery can be sent again on request
(:meth:`DeliveryStore.redeliver_webhook`).

Events: ``delivery.confirmed`` (with proof, for billing), ``exception.raised``,
``eta.changed``.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import random
import socket
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cloud.ops.errors import DeliveryError
from cloud.ops.webhook_addresses import check_target
from cloud.ops.webhook_signing import (
    REPLAY_WINDOW_S,
    SIGNATURE_HEADER,
    sign,
    standard_headers,
    verify,
)

__all__ = [
    "EVENT_TYPES",
    "REPLAY_WINDOW_S",
    "SIGNATURE_HEADER",
    "ClaimedDelivery",
    "DeliveryStore",
    "WebhookDispatcher",
    "WebhookEvent",
    "WebhookOutcome",
    "WebhookTarget",
    "new_delivery_id",
    "post_json",
    "send",
    "sign",
    "verify",
]

log = logging.getLogger(__name__)

EVENT_HEADER = "Wayline-Event"
ID_HEADER = "Wayline-Event-Id"
EVENT_TYPES = ("delivery.confirmed", "exception.raised", "eta.changed")
_RETRY_STATUSES = {408, 425, 429}
_STORE_RETRY_S = 1.0  # after the store failed to hand out work


def new_delivery_id() -> str:
    """A delivery's id, sent as ``webhook-id``: no ``.`` in it (the standard forbids one)."""
    return f"msg_{uuid.uuid4().hex}"


@dataclass(frozen=True)
class WebhookEvent:
    """One event for integrations; ``body()`` is the exact bytes that are signed and sent."""

    type: str
    data: Mapping[str, Any]
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def body(self) -> bytes:
        """``{"id", "type", "created_ms", "timestamp", "data"}``; ``timestamp`` is
        ``created_ms`` in RFC 3339 (the Standard Webhooks payload field)."""
        at = dt.datetime.fromtimestamp(self.created_ms / 1000, tz=dt.UTC)
        payload = {
            "id": self.event_id,
            "type": self.type,
            "created_ms": self.created_ms,
            "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "data": dict(self.data),
        }
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


@dataclass(frozen=True)
class ClaimedDelivery:
    """A due delivery a worker took: what to send, where, and how often it was tried."""

    delivery_id: str
    event_id: str
    event_type: str
    target_id: str
    url: str
    secret: str
    body: bytes
    attempts: int


@dataclass
class WebhookOutcome:
    """Where one event's delivery to one target stands."""

    event_id: str
    target_id: str
    status: str = "pending"  # pending | delivered | failed
    attempts: int = 0
    reason: str | None = None
    delivery_id: str | None = None
    status_code: int | None = None
    event_type: str | None = None


class DeliveryStore(Protocol):
    """Where deliveries live (the coordinator's store implements it)."""

    def release_webhook_claims(self) -> int:
        """Make deliveries claimed by a process that died due again; how many."""
        ...

    def claim_webhook_delivery(
        self, now_ms: int, busy_targets: Collection[str]
    ) -> ClaimedDelivery | None:
        """Claim the earliest due delivery of an active target not in ``busy_targets``."""
        ...

    def next_webhook_due_ms(self, busy_targets: Collection[str]) -> int | None:
        """When the next unclaimed delivery of a target not busy falls due."""
        ...

    def finish_webhook_delivery(
        self,
        delivery_id: str,
        *,
        status: str,
        attempts: int,
        next_attempt_ms: int,
        status_code: int | None,
        error: str | None,
        now_ms: int,
    ) -> None:
        """Record an attempt's outcome and release the claim."""
        ...

    def pending_webhook_count(self) -> int:
        """Deliveries still to be made (due later, due now or in flight)."""
        ...

    def webhook_outcome(self, event_id: str, target_id: str) -> WebhookOutcome | None:
        """Where one event's delivery to one target stands."""
        ...


def send(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
    *,
    allow_private: bool = True,
) -> int:
    """POST ``body`` as JSON and return the status, whatever it is.

    Raises :class:`DeliveryError` (retryable) when no answer came: a timeout, a refused or
    broken connection. ``http.client`` directly (not urllib) so that the connection is
    closed on every path, a timeout while waiting for the answer included.

    Unless ``allow_private``, the target is checked first by
    :func:`cloud.ops.webhook_addresses.check_target` (public ``https`` only; refused: a
    :class:`DeliveryError` that is not retried) and the connection goes to the address that
    was checked, with the URL's host name for TLS and ``Host``. The coordinator's dispatcher
    sends this way (``OperationsSettings.webhook_allow_private`` is False by default).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"not an http(s) URL: {url!r}", retryable=False)
    pinned = check_target(url, allow_private=allow_private)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    connection = kind(parts.hostname, parts.port, timeout=timeout_s)
    if pinned is not None:
        # connect to the checked address; TLS and Host still use the URL's host name
        def connect(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
            return socket.create_connection((pinned, address[1]), *args, **kwargs)

        connection._create_connection = connect  # type: ignore[attr-defined]
    try:
        connection.request(
            "POST", path, body=body, headers={"Content-Type": "application/json", **headers}
        )
        response = connection.getresponse()
        response.read(65536)
        return int(response.status)
    except TimeoutError:
        raise DeliveryError(f"timed out after {timeout_s:g} s", retryable=True) from None
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"cannot reach the target: {exc}", retryable=True) from None
    finally:
        connection.close()


def _judge(status: int) -> DeliveryError | None:
    """None for 2xx, else why, and whether a retry may help."""
    if 200 <= status < 300:
        return None
    retry = status in _RETRY_STATUSES or status >= 500
    return DeliveryError(f"HTTP {status} from the target", retryable=retry)


def post_json(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
    """POST ``body`` as JSON; the status on 2xx, else :class:`DeliveryError`."""
    status = send(url, body, headers, timeout_s)
    failure = _judge(status)
    if failure is not None:
        raise failure
    return status


def plan_deliveries(
    event: WebhookEvent, targets: Iterable[WebhookTarget]
) -> list[tuple[str, WebhookTarget]]:
    """A new delivery id for each target that wants ``event``."""
    return [(new_delivery_id(), t) for t in targets if t.wants(event)]


class WebhookDispatcher:
    """Worker threads that deliver what the store holds (see the module docstring)."""

    def __init__(
        self,
        store: DeliveryStore,
        *,
        workers: int = 4,
        per_target: int = 1,
        max_attempts: int = 18,
        timeout_s: float = 5.0,
        backoff_base_s: float = 5.0,
        backoff_max_s: float = 6 * 3600.0,
        jitter: float = 0.2,
        idle_s: float = 30.0,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        sender: Callable[[str, bytes, Mapping[str, str], float], int] = send,
        on_outcome: Callable[[WebhookOutcome], None] | None = None,
    ):
        self.store = store
        self.max_attempts = max_attempts
        self.per_target = per_target
        self.timeout_s = timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.jitter = jitter
        self.idle_s = idle_s
        self.stats: Counter[str] = Counter()
        """``attempts``, ``delivered``, ``retried``, ``failed`` since start."""
        self._clock = clock
        self._send = sender
        self._on_outcome = on_outcome
        self._rng = random.Random(seed)
        self._busy: dict[str, int] = {}
        self._inflight = 0
        self._generation = 0
        self._cond = threading.Condition()
        self._claim_lock = threading.Lock()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._run, name=f"wayline-webhooks-{i}", daemon=True)
            for i in range(workers)
        ]

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> WebhookDispatcher:
        """Release what a process that died had in flight, then start the workers."""
        released = self.store.release_webhook_claims()
        if released:
            log.warning("webhooks: %d deliveries in flight when the last run stopped", released)
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float | None = None) -> int:
        """Stop the workers; returns how many deliveries are still to be made (they stay in
        the store and go out after the next start)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        limit = self.timeout_s + 1.0 if timeout is None else timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(limit)
        return self.store.pending_webhook_count()

    def __enter__(self) -> WebhookDispatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wake(self) -> None:
        """New deliveries were committed: look for due work now. Never call it inside a
        transaction of the store (a worker may be waiting for the store's lock)."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    # -- reads -----------------------------------------------------------------------------

    def outcome(self, event_id: str, target_id: str) -> WebhookOutcome | None:
        return self.store.webhook_outcome(event_id, target_id)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no delivery is pending (tests, orderly shutdown)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                inflight = self._inflight
            if not inflight and not self.store.pending_webhook_count():
                return True
            if time.monotonic() >= deadline:
                return False
            with self._cond:
                self._cond.wait(min(0.05, max(0.0, deadline - time.monotonic())))

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), with jitter."""
        delay = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (attempt - 1))
        with self._cond:
            share = self._rng.random()
        return float(delay * (1 + self.jitter * share))

    # -- the workers -----------------------------------------------------------------------

    def _claim(self) -> tuple[ClaimedDelivery | None, float]:
        """A due delivery of a target with room, or how long to wait for one."""
        with self._claim_lock:
            with self._cond:
                full = [t for t, n in self._busy.items() if n >= self.per_target]
            now_ms = int(self._clock() * 1000)
            try:
                job = self.store.claim_webhook_delivery(now_ms, full)
                due = None if job is not None else self.store.next_webhook_due_ms(full)
            except Exception:
                log.exception("webhooks: the store could not hand out deliveries")
                return None, _STORE_RETRY_S
            if job is not None:
                with self._cond:
                    self._busy[job.target_id] = self._busy.get(job.target_id, 0) + 1
                    self._inflight += 1
                return job, 0.0
        wait = self.idle_s if due is None else (due - now_ms) / 1000
        return None, min(self.idle_s, max(0.0, wait))

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                generation = self._generation
            job, wait = self._claim()
            if job is None:
                self._idle(generation, wait)
                continue
            try:
                self._attempt(job)
            finally:
                with self._cond:
                    self._inflight -= 1
                    self._busy[job.target_id] -= 1
                    if not self._busy[job.target_id]:
                        del self._busy[job.target_id]
                    self._generation += 1  # the target has room again
                    self._cond.notify_all()

    def _idle(self, generation: int, wait: float) -> None:
        """Wait ``wait`` s, or until stopped or woken (new work, a target with room)."""
        with self._cond:
            self._cond.wait_for(lambda: self._stopping or self._generation != generation, wait)

    def _attempt(self, job: ClaimedDelivery) -> None:
        """Send once, record the outcome, then tell ``on_outcome`` (after every attempt)."""
        timestamp = int(self._clock())
        headers = standard_headers(job.secret, job.delivery_id, timestamp, job.body)
        headers[EVENT_HEADER] = job.event_type
        headers[ID_HEADER] = job.event_id
        status_code: int | None = None
        failure: DeliveryError | None
        try:
            status_code = self._send(job.url, job.body, headers, self.timeout_s)
            failure = _judge(status_code)
        except DeliveryError as exc:
            failure = exc
        except Exception as exc:  # a bug or a malformed URL must not stop the worker
            log.exception("webhook %s to %s: unexpected error", job.delivery_id, job.target_id)
            failure = DeliveryError(f"unexpected error: {exc!r}"[:300], retryable=False)
        attempts = job.attempts + 1
        now_ms = int(self._clock() * 1000)
        next_ms = now_ms
        self.stats["attempts"] += 1
        if failure is None:
            status = "delivered"
        elif failure.retryable and attempts < self.max_attempts:
            status = "pending"
            delay = self.backoff(attempts)
            next_ms = now_ms + int(delay * 1000)
            log.warning(
                "webhook %s %s to %s: %s; retry %d in %.2f s",
                job.event_type, job.delivery_id, job.target_id, failure.reason,
                attempts + 1, delay,
            )  # fmt: skip
        else:
            status = "failed"
            log.error(
                "webhook %s %s to %s failed after %d attempts: %s",
                job.event_type, job.delivery_id, job.target_id, attempts, failure.reason,
            )  # fmt: skip
        self.stats["retried" if status == "pending" else status] += 1
        reason = failure.reason if failure is not None else None
        try:
            self.store.finish_webhook_delivery(
                job.delivery_id,
                status=status,
                attempts=attempts,
                next_attempt_ms=next_ms,
                status_code=status_code,
                error=reason,
                now_ms=now_ms,
            )
        except Exception:  # it stays claimed, and is sent again after a restart
            log.exception("webhook %s: its outcome could not be recorded", job.delivery_id)
            return
        if self._on_outcome is not None:
            outcome = WebhookOutcome(
                job.event_id, job.target_id, status, attempts, reason, job.delivery_id,
                status_code, job.event_type,
            )  # fmt: skip
            try:
                self._on_outcome(outcome)
            except Exception:
                log.exception("webhook outcome callback failed for %s", job.delivery_id)
