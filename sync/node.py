"""A sync node: reliable, ordered, exactly-once message streams over MQTT.

A node is either a *device* (vehicle or depot: one peer, the hub) or the *hub* (the cloud:
one peer per device). Every message a node sends to a peer is a stream entry:

1. Domain code changes its state and calls :meth:`Tx.emit` in one transaction; the encoded
   envelope lands in ``sync_outbox`` with the stream's next ``seq`` (rule 1).
2. The node publishes the outbox in order, at most ``window`` past what the peer acked.
3. The receiver applies entries strictly in order, each once: the handler's writes and the
   stream cursor commit together, then an ``ack`` up to the cursor goes back (rules 2, 3).
   A duplicate is re-acked and dropped; a gap is dropped and a ``resend_request`` sent.
4. The sender deletes acked entries. With no ack progress at all for ``ack_timeout_s``
   (doubling up to ``ack_timeout_max_s``) or after a reconnect, it sends again from the
   first unacked entry (go-back-N). A broker that lost everything therefore loses nothing.
5. A received counter beyond what its peer can have sent (a Lamport clock far ahead, an
   entry far beyond the next, an ack for entries never published, from the wrong peer or
   on the wrong topic) is refused, counted and logged before it changes anything
   (:mod:`sync.bounds`).

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
from collections.abc import Callable, Iterator
from typing import Literal

from protocol import (
    DeviceState,
    Envelope,
    ProtocolError,
    SourceError,
    decode,
    down_topic,
    encode,
    make_envelope,
    parse_topic,
    state_topic,
    subscription,
)
from sync.bounds import (
    ClockBudget,
    ack_verdict,
    check_kind_fits_topic,
    lc_refusal,
    resend_refusal,
    seq_refusal,
)
from sync.metrics import SyncMetrics
from sync.mqtt import BrokerAddress, MqttLink
from sync.repair import counter_unsure, drop_damaged, fill_holes, mark_counter, renumber_after
from sync.sending import Sending
from sync.store import Store
from sync.stream import Handler, HandlerFailed, Rejected, SyncSettings, Tx

__all__ = ["Handler", "Rejected", "SyncNode", "SyncSettings", "Tx"]

log = logging.getLogger(__name__)

Role = Literal["device", "hub"]
Admission = Callable[[Tx, str, Envelope], str | None]
"""Asked of every received message before the stream sees it (the hub's device registry):
a short reason refuses it, counted as ``rejected_<reason>``; its clock is not merged, it is
neither applied nor acked, and the sender's state is untouched."""
_CONNECTED = "\x00connected"
_WAKE = "\x00wake"


class SyncNode(Sending):
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
        admit: Admission | None = None,
    ) -> None:
        self.node_id = node_id
        self._admit = admit
        self.role = role
        self.store = store
        self.handler = handler
        self.settings = settings or SyncSettings()
        self.hub_id = hub_id
        self.device_role = device_role if role == "device" else "cloud"
        self.stats: Counter[str] = Counter()
        self.metrics = SyncMetrics()
        self._inbox: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lc = self._load_clock()
        self._lc_budget = ClockBudget(self.settings.lc_jump_max, self.settings.lc_rate_per_s)
        self._applied: dict[str, int] = {}
        self._acked: dict[str, int] = {}
        self._top: dict[str, int] = {}
        self._sent: dict[str, int] = {}
        self._published: dict[str, int] = {}
        self._deadline: dict[str, float] = {}
        self._backoff: dict[str, float] = {}
        self._online: dict[str, bool] = {}
        self._last_resend: dict[str, tuple[int, float]] = {}
        with self.store.transaction() as conn:
            if self.store.recovered:  # rows copied out of a damaged file: are they whole?
                drop_damaged(conn, self.node_id, self.settings.max_payload)
            if fill_holes(conn, self.node_id, self.tick):
                self._save_clock(conn)
            if self.store.recovered:
                mark_counter(conn, unsure=True)
            self._counter_unsure = counter_unsure(conn)
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
            tx.flush()
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
        return int(rows[0][0])

    def applied_upto(self, peer: str) -> int:
        return self._applied.get(peer, 0)

    def streams(self) -> dict[str, dict[str, int]]:
        """Per peer, from memory: ``applied`` (last seq applied from it) and ``emitted`` and
        ``unacked`` (last seq given to it, and how many of those it has not acked)."""
        out: dict[str, dict[str, int]] = {p: {"applied": n} for p, n in self._applied.items()}
        for peer, top in list(self._top.items()):
            acked = self._acked.get(peer, 0)
            out.setdefault(peer, {}).update(emitted=top, unacked=max(0, top - acked))
        return out

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
            mqtt_v5=self.role == "device" or s.hub_mqtt_v5,
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
        return int(rows[0][0]) if rows else 0

    def _save_clock(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO sync_meta (key, value) VALUES ('lc', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
            (self._lc,),
        )

    def _load_streams(self) -> None:
        for peer, applied in self.store.read("SELECT peer, applied_upto FROM sync_in"):
            self._applied[str(peer)] = int(applied)
        for peer, nxt, acked in self.store.read("SELECT peer, next_seq, acked_upto FROM sync_out"):
            p = str(peer)
            self._acked[p] = self._sent[p] = int(acked)
            self._top[p] = int(nxt) - 1
            self._published[p] = self._top[p]  # an earlier run may have sent all of it

    def _after_commit(self, tx: Tx, *, wake: bool = True) -> None:
        for peer, seq in tx.emitted:
            self._top[peer] = max(self._top.get(peer, 0), seq)
            self._acked.setdefault(peer, 0)
            self._sent.setdefault(peer, self._acked[peer])
        if tx.emitted and wake:
            self._inbox.put((_WAKE, b""))  # publish now, not at the next tick
        for hook in tx.hooks:
            try:
                hook()
            except Exception:
                log.exception("after-commit hook %r failed", hook)

    # -- topics ----------------------------------------------------------------------------

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
        if t.direction == "down":
            raise ProtocolError(f"message on {topic} is a downlink, not for the hub")
        if env.src != t.device:
            raise SourceError(f"envelope src {env.src!r} differs from the topic's device")
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
        except HandlerFailed:
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
                check_kind_fits_topic(topic, env, node_id=self.node_id)
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
        fresh: list[Envelope] = []
        items, durable = self._decode(batch, counts)
        lc = self._lc
        budget, spent = self._lc_budget.available(), 0
        with self.store.transaction(durable=durable) as conn:
            tx = Tx(self, conn)
            for peer, env, payload in items:
                if peer == _CONNECTED:
                    went_online.update(self._acked)
                    continue
                if self._admit is not None and (why := self._admit(tx, peer, env)):
                    counts[f"rejected_{why}"] += 1  # not merged, applied nor acked
                    continue
                refusal = self._refusal(peer, env, applied.get(peer, 0), lc, budget - spent)
                if refusal is not None:
                    counts[f"rejected_{refusal[0]}"] += 1  # not merged, applied nor acked
                    log.warning("refused %s from %s: %s", env.kind, peer, refusal[1])
                    continue
                spent += max(0, env.lc - lc)
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
                        if self._apply(tx, peer, env, counts, careful):
                            fresh.append(env)
                        applied[peer] = env.seq
                        changed.add(peer)
                        acks_out[peer] = env.seq
            tx.flush()
            conn.executemany(
                "INSERT INTO sync_in (peer, applied_upto) VALUES (?, ?) "
                "ON CONFLICT(peer) DO UPDATE SET applied_upto = excluded.applied_upto",
                [(peer, applied[peer]) for peer in changed],
            )
            for peer, upto in list(acked_in.items()):
                if upto > self._top.get(peer, 0):
                    # A recovered store's stream acked beyond its whole counter (_refusal let
                    # only that through): the counter went backwards; follow the peer.
                    self._top[peer] = renumber_after(conn, peer, upto, self._acked.get(peer, 0)) - 1
                    self._sent[peer] = self._published[peer] = upto
                    self._acked[peer] = upto
                    continue
                if upto > self._acked.get(peer, 0):
                    conn.execute(
                        "DELETE FROM sync_outbox WHERE peer = ? AND seq <= ?", (peer, upto)
                    )
                    conn.execute("UPDATE sync_out SET acked_upto = ? WHERE peer = ?", (upto, peer))
                acked_in[peer] = upto
            if acked_in and self._counter_unsure:
                mark_counter(conn, unsure=False)  # the peer has told us where we stand
            self._lc = max(self._lc, lc)
            self._save_clock(conn)
        # Committed: now the cursors, acks and the sender state may move.
        self._lc_budget.spend(spent)
        if acked_in:
            self._counter_unsure = False
        self._applied = applied
        self.stats.update(counts)
        self.metrics.applied(fresh)
        self._after_commit(tx, wake=False)
        self._after_batch(acked_in, resend_in, went_online, acks_out, resends)

    def _refusal(
        self, peer: str, env: Envelope, applied: int, lc: int, budget: float
    ) -> tuple[str, str] | None:
        """Why a decoded message is refused before it changes anything, as (reason, detail),
        or None: a counter beyond what the peer can have sent (see :mod:`sync.bounds`)."""
        why: str | None = None
        if env.seq > 0:
            why = seq_refusal(env.seq, applied, self.settings.seq_ahead_max)
            if why is not None:
                return "seq", why
        elif env.kind == "ack":
            verdict = ack_verdict(
                env.body.upto,
                acked=self._acked.get(peer, 0),
                published=self._published.get(peer, 0),
                top=self._top.get(peer, 0),
                stream=peer in self._top,
                unsure=self._counter_unsure,
            )
            if isinstance(verdict, tuple):
                return "ack", verdict[1]
        elif env.kind == "resend_request":
            from_seq = env.body.from_seq
            why = resend_refusal(from_seq, self._published.get(peer, 0))
            if why is not None:
                return "resend", why
        why = lc_refusal(env.lc, lc, budget)
        return None if why is None else ("lc", why)

    def _peer_state(self, tx: Tx, peer: str, env: Envelope, went_online: set[str]) -> None:
        online = env.body.status == "online"  # type: ignore[union-attr]
        if online and self._online.get(peer) is False:
            went_online.add(peer)  # back from offline: what it missed is sent again
        self._online[peer] = online
        self.handler.on_state(tx, peer, env)  # type: ignore[arg-type]

    def _apply(self, tx: Tx, peer: str, env: Envelope, counts: Counter[str], careful: bool) -> bool:
        """Apply one entry (True) or refuse it (False). A handler refuses with Rejected
        *before* it writes anything; any other exception aborts the fast batch, and the
        careful pass gives each entry a savepoint so the one at fault is refused alone."""
        reason: str | None = None
        if careful:
            try:
                with self.store.savepoint():
                    self.handler.apply(tx, peer, env)
                    tx.flush()
            except Rejected as exc:
                tx.discard()
                reason = str(exc)
            except Exception as exc:
                tx.discard()
                log.exception("handler failed on %s #%d from %s", env.kind, env.seq, peer)
                reason = f"handler error: {type(exc).__name__}: {exc}"
        else:
            try:
                self.handler.apply(tx, peer, env)
            except Rejected as exc:
                reason = str(exc)
            except Exception as exc:
                raise HandlerFailed from exc
        if reason is None:
            counts["applied"] += 1
            return True
        counts["rejected_by_handler"] += 1
        log.warning("refused %s #%d from %s: %s", env.kind, env.seq, peer, reason)
        tx.conn.execute(
            "INSERT INTO sync_rejected (peer, seq, kind, reason, at_ms) VALUES (?, ?, ?, ?, ?)",
            (peer, env.seq, env.kind, reason[:500], int(time.time() * 1000)),
        )
        return False
