"""What a peer can make a node believe: the bounds every received counter is held to.

The wire already refuses a ``seq``, ``lc``, ``upto`` or ``from_seq`` of 2^53 or more
(:data:`protocol.sync.COUNTER_LIMIT`). A value below that can still be one no honest peer
sends, and taking it would change the node's state for good: a Lamport clock pushed to the
limit makes every message the node sends after it one the wire refuses; an ack for entries
never sent deletes facts from the outbox; a sequence number far ahead turns into gaps and
resend requests. Each check here says why a message is refused, or None; the node counts a
refusal (``rejected_<reason>`` in its stats, the ``wayline_sync_rejected_total`` metric),
logs it with that reason, and drops the message before it merges or stores anything.

- **Kind and topic.** A ``state`` travels only on a ``…/state`` topic and nothing else
  does, so an ``ack`` retained on the cloud's state topic acks nothing. A hub takes nothing
  but its own state on its own topics.
- **Lamport clock.** A received ``lc`` may move the node's clock ahead only by what a
  :class:`ClockBudget` allows: a burst (a peer that ran on while this node was off) and a
  steady rate. An honest network's clock grows by one per message, and no causal chain of
  messages runs faster than the rate.
- **Sequence numbers.** An entry more than ``seq_ahead_max`` beyond the next expected one is
  not a gap a sender with a bounded window can leave.
- **Acks and resend requests.** An ack covers only what was published to that peer (what a
  previous run of this node may have published counts too); a resend request asks only
  from there. The one exception: a recovered store may have lost a counter, and a stream
  it has no ack for follows an ack beyond its whole counter
  (:func:`sync.repair.renumber_after`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from protocol import Envelope, TopicError, parse_topic

__all__ = [
    "AckVerdict",
    "ClockBudget",
    "ack_verdict",
    "check_kind_fits_topic",
    "lc_refusal",
    "resend_refusal",
    "seq_refusal",
]

AckVerdict = Literal["take", "relearn"] | tuple[Literal["refuse"], str]


def check_kind_fits_topic(topic: str, env: Envelope, *, node_id: str) -> None:
    """Raise :class:`TopicError` unless ``env`` may travel on ``topic`` to ``node_id``.

    Presence (``state``) is on the retained state topics only, and everything else only on
    ``up`` and ``down``: an ``ack`` or a stream entry on a state topic would be retained and
    taken again after every restart. A node takes nothing but presence from its own id."""
    on_state = parse_topic(topic).direction == "state"
    if on_state != (env.kind == "state"):
        where = "a state topic" if on_state else "a stream topic"
        raise TopicError(f"a {env.kind} message does not travel on {where} ({topic})")
    if env.src == node_id and env.kind != "state":
        raise TopicError(f"a {env.kind} message from {env.src!r} is this node's own id")


class ClockBudget:
    """How far received Lamport clocks may still move this node's clock ahead.

    A token bucket: full (``burst``) when the node starts, refilled at ``rate_per_s`` by the
    monotonic clock (a wall clock stepped back or forward changes nothing). Spending is
    settled only once a batch commits, so a batch run again spends once. Thread-safe."""

    def __init__(
        self, burst: int, rate_per_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = burst
        self.rate = rate_per_s
        self.clock = clock
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()

    def available(self) -> float:
        """What may be spent now."""
        with self._lock:
            now = self.clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
            self._at = now
            return self._tokens

    def spend(self, amount: int) -> None:
        """Settle what a committed batch took."""
        with self._lock:
            self._tokens = max(0.0, self._tokens - amount)


def lc_refusal(received: int, own: int, budget: float) -> str | None:
    """Why a Lamport clock ``received`` may not move the clock ``own``, or None."""
    jump = received - own
    if jump <= budget:
        return None
    return (
        f"Lamport clock {received} is {jump} beyond this node's {own}; at most "
        f"{int(budget)} is plausible now"
    )


def seq_refusal(seq: int, applied: int, ahead_max: int) -> str | None:
    """Why entry ``seq`` of a stream applied up to ``applied`` is refused, or None."""
    ahead = seq - (applied + 1)
    if ahead <= ahead_max:
        return None
    return (
        f"seq {seq} is {ahead} beyond the next expected {applied + 1}; no sender has more "
        f"than {ahead_max} in flight"
    )


def ack_verdict(
    upto: int, *, acked: int, published: int, top: int, stream: bool, unsure: bool = False
) -> AckVerdict:
    """What to do with an ack for ``upto`` of a stream acked up to ``acked``, published up
    to ``published`` and numbered up to ``top`` (``stream``: this node has such a stream):
    take it, re-learn the counter from it (``unsure``: the store was recovered, the stream
    has no ack and this one is beyond its whole counter), or refuse it."""
    if upto <= acked or (stream and upto <= published):
        return "take"
    if unsure and acked == 0 and upto > top:
        return "relearn"
    if not stream:
        return ("refuse", f"ack up to {upto} for a stream this node never sent")
    return ("refuse", f"ack up to {upto} beyond the {published} entries published to the peer")


def resend_refusal(from_seq: int, published: int) -> str | None:
    """Why a resend request from ``from_seq`` is refused (nothing there was sent), or None."""
    if from_seq <= published + 1:
        return None
    return f"resend request from {from_seq}, beyond the {published} entries published to the peer"
