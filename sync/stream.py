"""What domain code sees of sync: settings, the transaction handle, the handler protocol.

See :mod:`sync.node` for the engine and the rules it keeps.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from protocol import DEFAULT_MAX_BYTES, Body, DeviceStateEnvelope, Envelope, encode, make_envelope
from sync.errors import SyncError

if TYPE_CHECKING:
    from sync.node import SyncNode

__all__ = ["Handler", "HandlerFailed", "Rejected", "SyncSettings", "Tx", "WriteBuffer"]


@dataclass(frozen=True, slots=True)
class SyncSettings:
    """Timing and sizing of sync; tests shrink them."""

    window: int = 1000
    ack_timeout_s: float = 15.0
    """Send again from the first unacked entry when no ack has moved for this long. Loss
    without a disconnect is rare (reconnects already send again), so this is a last resort,
    long enough that an overloaded peer is not buried under its own backlog twice."""
    ack_timeout_max_s: float = 120.0
    batch_max: int = 2000
    batch_linger_s: float = 0.005
    """After the first message of a batch, wait this long for more: fewer, larger commits."""
    tick_s: float = 0.05
    resend_interval_s: float = 1.0
    max_payload: int = DEFAULT_MAX_BYTES
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    hub_mqtt_v5: bool = False
    """The hub speaks MQTT 3.1.1 unless this is set (see :class:`sync.mqtt.MqttLink`)."""
    seq_ahead_max: int = 10_000
    """A stream entry more than this far beyond the next expected ``seq`` is refused
    (``rejected_seq``), not taken as a gap: no sender has that many entries in flight
    (``window``). At least ``window``."""
    lc_jump_max: int = 2**36
    """How far received Lamport clocks may move this node's clock ahead at once (a peer that
    ran on while this node was off: 2^36 is years of a large fleet's messages). A message
    beyond what is left is refused (``rejected_lc``), never merged."""
    lc_rate_per_s: float = 1_000_000.0
    """How fast that allowance comes back, per second: faster than any chain of messages
    runs, so honest clocks never run out of it, and a forged one gets nowhere near the
    wire's limit of 2^53."""

    def __post_init__(self) -> None:
        if self.window < 1 or self.batch_max < 1:
            raise ValueError("window and batch_max must be at least 1")
        if min(self.ack_timeout_s, self.tick_s, self.resend_interval_s) <= 0:
            raise ValueError("timeouts must be positive")
        if self.seq_ahead_max < self.window:
            raise ValueError("seq_ahead_max must be at least window")
        if not 0 < self.lc_jump_max < 2**53 or self.lc_rate_per_s <= 0:
            raise ValueError("lc_jump_max must be between 1 and 2^53 and lc_rate_per_s positive")


class Rejected(Exception):
    """Raised by a handler to refuse an in-order message, before it writes anything.

    The message is recorded in ``sync_rejected`` and acked, never retried: the sender's
    stream moves on, and what was refused stays visible."""


class HandlerFailed(Exception):
    """A handler raised something other than Rejected during a fast batch."""


class WriteBuffer(Protocol):
    """Writes a handler gathers over a batch and makes at once (see :meth:`Tx.buffer`)."""

    def flush(self, conn: sqlite3.Connection) -> None:
        """Write what was gathered through ``conn`` and forget it."""

    def discard(self) -> None:
        """Forget what was gathered (its transaction or savepoint rolled back)."""


B = TypeVar("B", bound=WriteBuffer)


class Tx:
    """A transaction handed to domain code: its SQLite connection and :meth:`emit`."""

    def __init__(self, node: SyncNode, conn: sqlite3.Connection) -> None:
        self.node = node
        self.conn = conn
        self.emitted: list[tuple[str, int]] = []
        self.payload: bytes = b""
        """The received bytes of the entry being applied (a handler may store them as is)."""
        self.hooks: list[Callable[[], None]] = []
        self._buffers: dict[Callable[[], WriteBuffer], WriteBuffer] = {}

    def buffer(self, factory: Callable[[], B]) -> B:
        """This transaction's write buffer made by ``factory`` (made on first use).

        A handler that receives many small facts (telemetry) gathers their writes here and
        they are made in one statement each. The node flushes every buffer before the
        transaction commits; a handler that reads what it buffered calls :meth:`flush`
        first. Buffered writes commit with the stream cursor, as any other write."""
        buf = self._buffers.get(factory)
        if buf is None:
            buf = self._buffers[factory] = factory()
        return buf  # type: ignore[return-value]

    def flush(self) -> None:
        """Make every buffered write now, inside this transaction."""
        for buf in self._buffers.values():
            buf.flush(self.conn)

    def discard(self) -> None:
        """Forget buffered writes (the savepoint they belonged to rolled back)."""
        for buf in self._buffers.values():
            buf.discard()

    def on_commit(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` once after this transaction commits (never if it rolls back).

        A hook given twice runs once: a batch of many entries wakes a worker once."""
        if hook not in self.hooks:
            self.hooks.append(hook)

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
