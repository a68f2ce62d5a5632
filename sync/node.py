"""A sync node: reliable, ordered, exactly-once message streams over MQTT.

A node is either a *device* (vehicle or depot: one peer, the hub) or the *hub* (the cloud:
one peer per device). Every message a node sends to a peer is a stream entry:

1. Domain code changes its state and calls :meth:`Tx.emit` in one transaction; the encoded
   envelope lands in ``sync_outbox`` with the stream's next ``seq`` (rule 1).
2. The node publishes the outbox in order, at most ``window`` past what the peer acked.
3. The receiver applies entries strictly in order, each once: the handler's writes and the
   stream cursor commit together, then an ``ack`` up to the cursor goes back (rules 2, 3).
   A duplicate is re-acked and dropped; a gap is dropped and a ``resend_request`` sent.
4. The sender deletes acked entries. With no ack progress for ``ack_timeout_s`` (doubling
   up to ``ack_timeout_max_s``) or after a reconnect, it sends again from the first unacked
   entry (go-back-N). A broker that lost everything therefore loses nothing.

Only the worker thread publishes stream entries and applies received ones; paho's thread
only enqueues. Domain code in other threads (a web handler) writes through
:meth:`SyncNode.transaction`, which shares the store's lock.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from protocol import (
    DEFAULT_MAX_BYTES,
    Ack,
    AckEnvelope,
    Body,
    DeviceState,
    DeviceStateEnvelope,
    Envelope,
    ProtocolError,
    ResendRequest,
    ResendRequestEnvelope,
    decode,
    down_topic,
    encode,
    make_envelope,
    parse_topic,
    state_topic,
    subscription,
    up_topic,
)
from sync.errors import SyncError
from sync.mqtt import BrokerAddress, MqttLink
from sync.store import Store

__all__ = ["Handler", "Rejected", "SyncNode", "SyncSettings", "Tx"]

log = logging.getLogger(__name__)

Role = Literal["device", "hub"]
_CONNECTED = "\x00connected"
_WAKE = "\x00wake"


@dataclass(frozen=True, slots=True)
class SyncSettings:
    """Timing and sizing of sync; tests shrink them."""

    window: int = 1000
    ack_timeout_s: float = 2.0
    ack_timeout_max_s: float = 30.0
    batch_max: int = 2000
    batch_linger_s: float = 0.005
    """After the first message of a batch, wait this long for more: fewer, larger commits."""
    tick_s: float = 0.05
    resend_interval_s: float = 1.0
    max_payload: int = DEFAULT_MAX_BYTES
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0

    def __post_init__(self) -> None:
        if self.window < 1 or self.batch_max < 1:
            raise ValueError("window and batch_max must be at least 1")
        if min(self.ack_timeout_s, self.tick_s, self.resend_interval_s) <= 0:
            raise ValueError("timeouts must be positive")


class Rejected(Exception):
    """Raised by a handler to refuse an in-order message, before it writes anything.

    The message is recorded in ``sync_rejected`` and acked, never retried: the sender's
    stream moves on, and what was refused stays visible."""


class _HandlerFailed(Exception):
    """A handler raised something other than Rejected during a fast batch."""


class Tx:
    """A transaction handed to domain code: its SQLite connection and :meth:`emit`."""

    def __init__(self, node: SyncNode, conn: sqlite3.Connection) -> None:
        self.node = node
        self.conn = conn
        self.emitted: list[tuple[str, int]] = []
        self.payload: bytes = b""
        """The received bytes of the entry being applied (a handler may store them as is)."""

    def emit(self, peer: str, body: Body) -> Envelope:
        """Append ``body`` to the stream to ``peer``; it is sent once this transaction commits."""
        row = self.conn.execute("SELECT next_seq FROM sync_out WHERE peer = ?", (peer,)).fetchone()
        seq = row[0] if row else 1
        env = make_envelope(src=self.node.node_id, seq=seq, lc=self.node.tick(), body=body)
        payload = encode(env)
        if len(payload) > self.node.settings.max_payload:
            raise SyncError(
                f"{env.kind} message of {len(payload)} bytes is over the "
                f"{self.node.settings.max_payload}-byte limit"
            )
        self.conn.execute(
            "INSERT INTO sync_outbox (peer, seq, id, kind, payload, created_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (peer, seq, env.id, env.kind, payload, env.ts),
        )
        self.conn.execute(
            "INSERT INTO sync_out (peer, next_seq, acked_upto) VALUES (?, ?, 0) "
            "ON CONFLICT(peer) DO UPDATE SET next_seq = excluded.next_seq",
            (peer, seq + 1),
        )
        self.emitted.append((peer, seq))
        return env


class Handler(Protocol):
    """What a node does with what it receives."""

    def apply(self, tx: Tx, peer: str, envelope: Envelope) -> None:
        """Apply one in-order stream entry inside ``tx``; raise :class:`Rejected` to refuse it."""

    def on_state(self, tx: Tx, peer: str, envelope: DeviceStateEnvelope) -> None:
        """A peer's retained online/offline state changed."""


class SyncNode:
    """One end of Wayline's sync: a store, an MQTT link, and the worker that joins them."""

    def __init__(
        self,
        *,
        node_id: str,
        role: Role,
        store: Store,
        handler: Handler,
        broker: BrokerAddress | None,
        settings: SyncSettings | None = None,
        hub_id: str = "cloud",
        device_role: Literal["vehicle", "depot", "cloud"] = "vehicle",
    ) -> None:
        self.node_id = node_id
        self.role = role
        self.store = store
        self.handler = handler
        self.settings = settings or SyncSettings()
        self.hub_id = hub_id
        self.device_role = device_role if role == "device" else "cloud"
        self.stats: Counter[str] = Counter()
        self._inbox: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lc = self._load_clock()
        self._applied: dict[str, int] = {}
        self._acked: dict[str, int] = {}
        self._top: dict[str, int] = {}
        self._sent: dict[str, int] = {}
        self._deadline: dict[str, float] = {}
        self._backoff: dict[str, float] = {}
        self._online: dict[str, bool] = {}
        self._last_resend: dict[str, tuple[int, float]] = {}
        self._load_streams()
        self.link = self._make_link(broker) if broker is not None else None

    # -- public surface ------------------------------------------------------------------

    def start(self) -> None:
        if self.link is not None:
            self.link.start()
        self._thread = threading.Thread(target=self._run, name=f"sync-{self.node_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.link is not None:
            self.link.stop(offline=(state_topic(self.node_id), self._state_payload("offline")))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction for domain code; emitted messages leave once it commits."""
        with self.store.transaction() as conn:
            tx = Tx(self, conn)
            yield tx
            self._save_clock(conn)
        self._after_commit(tx)

    @property
    def connected(self) -> bool:
        return self.link is not None and self.link.connected

    def pending(self, peer: str | None = None) -> int:
        """Messages stored but not yet acked by the peer (all peers when None)."""
        if peer is None:
            rows = self.store.read("SELECT count(*) FROM sync_outbox")
        else:
            rows = self.store.read("SELECT count(*) FROM sync_outbox WHERE peer = ?", (peer,))
        return int(rows[0][0])  # type: ignore[call-overload]

    def applied_upto(self, peer: str) -> int:
        return self._applied.get(peer, 0)

    def tick(self) -> int:
        """Advance and return the Lamport clock (for a message about to be sent)."""
        self._lc += 1
        return self._lc

    def feed(self, topic: str, payload: bytes) -> None:
        """Hand a received message to the worker (paho's callback; also used by tests)."""
        self._inbox.put((topic, payload))

    # -- set-up --------------------------------------------------------------------------

    def _make_link(self, broker: BrokerAddress) -> MqttLink:
        if self.role == "device":
            subs = [down_topic(self.node_id), state_topic(self.hub_id)]
        else:
            subs = [subscription("up"), subscription("state")]
        s = self.settings
        return MqttLink(
            client_id=f"wayline-{self.node_id}",
            broker=broker,
            subscriptions=subs,
            on_message=self.feed,
            on_connected=lambda: self.feed(_CONNECTED, b""),
            will=(state_topic(self.node_id), self._state_payload("offline", "connection lost")),
            online=(state_topic(self.node_id), self._state_payload("online")),
            keepalive=s.keepalive_s,
            reconnect_min_s=s.reconnect_min_s,
            reconnect_max_s=s.reconnect_max_s,
        )

    def _state_payload(
        self, status: Literal["online", "offline"], reason: str | None = None
    ) -> bytes:
        body = DeviceState(
            status=status, role=self.device_role, at=int(time.time() * 1000), reason=reason
        )
        return encode(make_envelope(src=self.node_id, seq=0, lc=self._lc, body=body))

    def _load_clock(self) -> int:
        rows = self.store.read("SELECT value FROM sync_meta WHERE key = 'lc'")
        return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]

    def _save_clock(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO sync_meta (key, value) VALUES ('lc', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
            (self._lc,),
        )

    def _load_streams(self) -> None:
        for peer, applied in self.store.read("SELECT peer, applied_upto FROM sync_in"):
            self._applied[str(peer)] = int(applied)  # type: ignore[call-overload]
        for peer, nxt, acked in self.store.read("SELECT peer, next_seq, acked_upto FROM sync_out"):
            p = str(peer)
            self._acked[p] = self._sent[p] = int(acked)  # type: ignore[call-overload]
            self._top[p] = int(nxt) - 1  # type: ignore[call-overload]

    def _after_commit(self, tx: Tx, *, wake: bool = True) -> None:
        for peer, seq in tx.emitted:
            self._top[peer] = max(self._top.get(peer, 0), seq)
            self._acked.setdefault(peer, 0)
            self._sent.setdefault(peer, self._acked[peer])
        if tx.emitted and wake:
            self._inbox.put((_WAKE, b""))  # publish now, not at the next tick

    # -- topics ----------------------------------------------------------------------------

    def _topic_to(self, peer: str) -> str:
        return up_topic(self.node_id) if self.role == "device" else down_topic(peer)

    def _peer_of(self, topic: str, env: Envelope) -> str:
        """Who sent a message on ``topic``; raises ProtocolError when it cannot be theirs."""
        t = parse_topic(topic)
        if self.role == "device":
            expected = {
                (self.node_id, "down"): self.hub_id,
                (self.hub_id, "state"): self.hub_id,
            }.get((t.device, t.direction))
            if expected is None or env.src != expected:
                raise ProtocolError(f"message from {env.src!r} on {topic} is not for this device")
            return expected
        if t.direction == "down" or env.src != t.device:
            raise ProtocolError(f"envelope src {env.src!r} differs from the topic's device")
        return t.device

    # -- the worker ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._take_batch()
            try:
                if batch:
                    self._process(batch)
                self._pump()
            except Exception:
                log.exception("sync worker step failed; continuing")
                time.sleep(self.settings.tick_s)

    def _take_batch(self) -> list[tuple[str, bytes]]:
        try:
            first = self._inbox.get(timeout=self.settings.tick_s)
        except queue.Empty:
            return []
        batch = [first]
        until = time.monotonic() + self.settings.batch_linger_s
        while len(batch) < self.settings.batch_max:
            try:
                batch.append(self._inbox.get_nowait())
                continue
            except queue.Empty:
                pass
            left = until - time.monotonic()
            if left <= 0 or first[0] == _WAKE:
                break
            try:
                batch.append(self._inbox.get(timeout=left))
            except queue.Empty:
                break
        return batch

    def _process(self, batch: list[tuple[str, bytes]]) -> None:
        batch = [item for item in batch if item[0] != _WAKE]
        if not batch:
            return
        try:
            self._process_batch(batch, careful=False)
        except _HandlerFailed:
            # A handler raised something other than Rejected: the batch was rolled back.
            # Run it again with a savepoint per message so only the faulty one is refused.
            self._process_batch(batch, careful=True)

    def _decode(
        self, batch: list[tuple[str, bytes]], counts: Counter[str]
    ) -> tuple[list[tuple[str, Envelope, bytes]], bool]:
        """Decode a batch outside the lock; return (peer, envelope, payload) triples and
        whether any is a stream entry (which makes the batch's transaction durable)."""
        out: list[tuple[str, Envelope, bytes]] = []
        facts = False
        for topic, payload in batch:
            if topic == _CONNECTED:
                out.append((_CONNECTED, None, b""))  # type: ignore[arg-type]
                continue
            counts["received"] += 1
            try:
                env = decode(payload, max_bytes=self.settings.max_payload)
                peer = self._peer_of(topic, env)
            except ProtocolError as exc:
                counts[f"rejected_{exc.reason}"] += 1
                log.warning("rejected message on %s: %s (payload %r)", topic, exc, payload[:40])
                continue
            facts = facts or env.seq > 0 or env.kind == "state"
            out.append((peer, env, payload))
        return out, facts

    def _process_batch(self, batch: list[tuple[str, bytes]], *, careful: bool) -> None:
        acks_out: dict[str, int] = {}
        resends: dict[str, int] = {}
        acked_in: dict[str, int] = {}
        resend_in: dict[str, int] = {}
        applied = dict(self._applied)
        changed: set[str] = set()
        went_online: set[str] = set()
        counts: Counter[str] = Counter()
        items, durable = self._decode(batch, counts)
        lc = self._lc
        with self.store.transaction(durable=durable) as conn:
            tx = Tx(self, conn)
            for peer, env, payload in items:
                if peer == _CONNECTED:
                    went_online.update(self._acked)
                    continue
                lc = max(lc, env.lc) + 1
                kind = env.kind
                if kind == "ack":
                    acked_in[peer] = max(acked_in.get(peer, 0), env.body.upto)  # type: ignore[union-attr]
                elif kind == "resend_request":
                    resend_in[peer] = min(resend_in.get(peer, 2**62), env.body.from_seq)  # type: ignore[union-attr]
                elif kind == "state":
                    if peer != self.node_id:
                        self._peer_state(tx, peer, env, went_online)
                else:
                    done = applied.get(peer, 0)
                    if env.seq <= done:
                        counts["duplicates"] += 1
                        acks_out[peer] = done
                    elif env.seq > done + 1:
                        counts["gaps"] += 1
                        resends[peer] = done + 1
                    else:
                        tx.payload = payload
                        self._apply(tx, peer, env, counts, careful)
                        applied[peer] = env.seq
                        changed.add(peer)
                        acks_out[peer] = env.seq
            conn.executemany(
                "INSERT INTO sync_in (peer, applied_upto) VALUES (?, ?) "
                "ON CONFLICT(peer) DO UPDATE SET applied_upto = excluded.applied_upto",
                [(peer, applied[peer]) for peer in changed],
            )
            for peer, upto in list(acked_in.items()):
                upto = min(upto, self._top.get(peer, 0))
                if upto > self._acked.get(peer, 0):
                    conn.execute(
                        "DELETE FROM sync_outbox WHERE peer = ? AND seq <= ?", (peer, upto)
                    )
                    conn.execute("UPDATE sync_out SET acked_upto = ? WHERE peer = ?", (upto, peer))
                acked_in[peer] = upto
            self._lc = max(self._lc, lc)
            self._save_clock(conn)
        # Committed: now the cursors, acks and the sender state may move.
        self._applied = applied
        self.stats.update(counts)
        self._after_commit(tx, wake=False)
        self._after_batch(acked_in, resend_in, went_online, acks_out, resends)

    def _peer_state(self, tx: Tx, peer: str, env: Envelope, went_online: set[str]) -> None:
        online = env.body.status == "online"  # type: ignore[union-attr]
        if online and self._online.get(peer) is False:
            went_online.add(peer)  # back from offline: what it missed is sent again
        self._online[peer] = online
        self.handler.on_state(tx, peer, env)  # type: ignore[arg-type]

    def _after_batch(
        self,
        acked_in: dict[str, int],
        resend_in: dict[str, int],
        went_online: set[str],
        acks_out: dict[str, int],
        resends: dict[str, int],
    ) -> None:
        now = time.monotonic()
        s = self.settings
        for peer, upto in acked_in.items():
            if upto > self._acked.get(peer, 0):
                self.stats["acked"] += upto - self._acked.get(peer, 0)
                self._acked[peer] = upto
                self._sent[peer] = max(self._sent.get(peer, 0), upto)
                self._backoff[peer] = s.ack_timeout_s
                self._deadline[peer] = now + s.ack_timeout_s
        for peer in went_online:
            self._sent[peer] = self._acked.get(peer, 0)
        for peer, from_seq in resend_in.items():
            self.stats["resend_requests_in"] += 1
            acked = self._acked.get(peer, 0)
            self._sent[peer] = max(acked, min(self._sent.get(peer, 0), from_seq - 1))
        for peer, upto in acks_out.items():
            self._send_control(peer, Ack(upto=upto))
        for peer, from_seq in resends.items():
            last = self._last_resend.get(peer)
            if last and last[0] == from_seq and now - last[1] < s.resend_interval_s:
                continue
            self._last_resend[peer] = (from_seq, now)
            self.stats["resend_requests_out"] += 1
            self._send_control(peer, ResendRequest(from_seq=from_seq))

    def _apply(self, tx: Tx, peer: str, env: Envelope, counts: Counter[str], careful: bool) -> None:
        """Apply one entry. A handler refuses with Rejected *before* it writes anything;
        any other exception aborts the fast batch, and the careful pass gives each entry a
        savepoint so the one at fault is refused alone."""
        reason: str | None = None
        if careful:
            try:
                with self.store.savepoint():
                    self.handler.apply(tx, peer, env)
            except Rejected as exc:
                reason = str(exc)
            except Exception as exc:
                log.exception("handler failed on %s #%d from %s", env.kind, env.seq, peer)
                reason = f"handler error: {type(exc).__name__}: {exc}"
        else:
            try:
                self.handler.apply(tx, peer, env)
            except Rejected as exc:
                reason = str(exc)
            except Exception as exc:
                raise _HandlerFailed from exc
        if reason is None:
            counts["applied"] += 1
            return
        counts["rejected_by_handler"] += 1
        log.warning("refused %s #%d from %s: %s", env.kind, env.seq, peer, reason)
        tx.conn.execute(
            "INSERT INTO sync_rejected (peer, seq, kind, reason, at_ms) VALUES (?, ?, ?, ?, ?)",
            (peer, env.seq, env.kind, reason[:500], int(time.time() * 1000)),
        )

    def _send_control(self, peer: str, body: Ack | ResendRequest) -> None:
        if self.link is None:
            return
        env: AckEnvelope | ResendRequestEnvelope = make_envelope(  # type: ignore[assignment]
            src=self.node_id, seq=0, lc=self.tick(), body=body
        )
        self.link.publish(self._topic_to(peer), encode(env))

    def _pump(self) -> None:
        if self.link is None or not self.link.connected:
            return
        now = time.monotonic()
        s = self.settings
        for peer, top in list(self._top.items()):
            acked = self._acked.get(peer, 0)
            if top <= acked or not self._online.get(peer, True):
                continue
            sent = self._sent.get(peer, acked)
            if sent > acked and now >= self._deadline.get(peer, 0.0):
                self.stats["retransmits"] += 1
                backoff = self._backoff.get(peer, s.ack_timeout_s)
                self._backoff[peer] = min(backoff * 2, s.ack_timeout_max_s)
                sent = acked
            hi = min(top, acked + s.window)
            if sent >= hi:
                continue
            rows = self.store.read(
                "SELECT seq, payload FROM sync_outbox WHERE peer = ? AND seq > ? AND seq <= ? "
                "ORDER BY seq",
                (peer, sent, hi),
            )
            topic = self._topic_to(peer)
            for seq, payload in rows:
                if not self.link.publish(topic, payload):  # type: ignore[arg-type]
                    break
                sent = int(seq)  # type: ignore[call-overload]
                self.stats["published"] += 1
            self._sent[peer] = sent
            self._deadline[peer] = now + self._backoff.get(peer, s.ack_timeout_s)
