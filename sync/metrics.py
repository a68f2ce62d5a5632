"""What a sync node counts, kept without a metrics library: ingest by kind, lag, backlog.

Wayline's core (``protocol`` and ``sync``) depends on no metrics library. A node keeps its
counts here and in :attr:`SyncNode.stats`; the processes that serve HTTP turn them into
Prometheus metrics when scraped (:mod:`cloud.metrics`, :mod:`edge.metrics`), from the
:class:`Family` values :func:`sync_families` describes. Names, meanings and labels are
therefore written once, here, for the cloud, the vans and the depots alike.

Counters count from the start of the process, as Prometheus expects; a restart resets
them. Every label has a bounded set of values: a message kind, a refusal reason, a
direction, or a peer (on the cloud, one per device).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from protocol import Envelope

if TYPE_CHECKING:
    from sync.node import SyncNode

__all__ = [
    "LAG_BUCKETS_S",
    "Family",
    "Histogram",
    "HistogramSnapshot",
    "SyncMetrics",
    "sync_families",
]

LAG_BUCKETS_S: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0,
)  # fmt: skip
"""Upper bounds of the lag histogram, in seconds: from a live link (tens of ms) to a van
that was offline all day (its outbox arrives hours late, and that is not a fault)."""

#: Keys of :attr:`SyncNode.stats` exposed as plain counters: (stat, metric, help).
_COUNTERS = (
    ("received", "wayline_sync_received_total", "Messages received from the broker."),
    ("published", "wayline_sync_published_total", "Stream entries published to a peer."),
    ("retransmits", "wayline_sync_retransmits_total", "Times a stream was sent again from "
     "its first unacked entry because no ack moved for a whole timeout."),
    ("duplicates", "wayline_sync_duplicates_total", "Entries received again and dropped."),
    ("gaps", "wayline_sync_gaps_total", "Entries received ahead of a gap and dropped."),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """A histogram at one moment: cumulative counts per upper bound (``inf`` last)."""

    buckets: tuple[tuple[float, int], ...]
    count: int
    sum: float


class Histogram:
    """Observations counted into fixed buckets; safe to use from several threads."""

    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError("histogram bounds must be increasing and not empty")
        self.bounds = tuple(float(b) for b in bounds)
        self._counts = [0] * (len(self.bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        self.observe_many((value,))

    def observe_many(self, values: Iterable[float]) -> None:
        """Several observations under one acquisition of the lock (a batch of messages)."""
        bounds, counts = self.bounds, self._counts
        with self._lock:
            for value in values:
                counts[bisect.bisect_left(bounds, value)] += 1
                self._sum += value

    def snapshot(self) -> HistogramSnapshot:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), counts, strict=True):
            running += n
            cumulative.append((bound, running))
        return HistogramSnapshot(tuple(cumulative), running, total)


class SyncMetrics:
    """Entries applied, by kind, and how late they arrived; the rest is in ``stats``.

    Lag is the receiver's clock at commit minus the envelope's ``ts`` (the sender's clock
    when it created the entry), so it includes the time spent in the sender's outbox and is
    only as exact as the two clocks agree; a negative difference counts as 0.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lag = Histogram(LAG_BUCKETS_S)
        self._applied: Counter[str] = Counter()
        self._lock = threading.Lock()

    def applied(self, envelopes: Iterable[Envelope]) -> None:
        """Count entries whose writes just committed."""
        now_ms = self.clock() * 1000
        kinds: Counter[str] = Counter()
        lags = []
        for env in envelopes:
            kinds[env.kind] += 1
            lags.append(max(0.0, (now_ms - env.ts) / 1000))
        self.lag.observe_many(lags)
        with self._lock:
            self._applied.update(kinds)

    def applied_by_kind(self) -> dict[str, int]:
        with self._lock:
            return dict(self._applied)


@dataclass(frozen=True, slots=True)
class Family:
    """One metric, library-neutral: samples by the value of its one label (if any)."""

    name: str
    type: Literal["counter", "gauge", "histogram"]
    help: str
    label: str | None = None
    samples: tuple[tuple[str, float], ...] = ()
    """(label value, value); the label value is ``""`` when the metric has no label."""
    histogram: HistogramSnapshot | None = None


def sync_families(node: SyncNode) -> list[Family]:
    """Everything a node's metrics say now: counts since start, cursors, backlog, lag."""
    stats = dict(node.stats)  # one C-level copy: the worker may add keys meanwhile
    streams = node.streams()
    families = [
        Family(
            "wayline_broker_connected",
            "gauge",
            "1 while the MQTT link to the broker is up, else 0.",
            samples=(("", 1.0 if node.connected else 0.0),),
        ),
        Family(
            "wayline_sync_applied_total",
            "counter",
            "In-order stream entries applied (their writes committed), by message kind.",
            "kind",
            tuple(sorted((k, float(n)) for k, n in node.metrics.applied_by_kind().items())),
        ),
        Family(
            "wayline_sync_lag_seconds",
            "histogram",
            "Receive time (at commit) minus the sender's time of the entry, applied entries.",
            histogram=node.metrics.lag.snapshot(),
        ),
        Family(
            "wayline_sync_rejected_total",
            "counter",
            "Messages refused: by the protocol (the error's reason) or by the handler "
            "(reason 'handler').",
            "reason",
            tuple(
                sorted(
                    ("handler" if k == "rejected_by_handler" else k[len("rejected_") :], float(n))
                    for k, n in stats.items()
                    if k.startswith("rejected_")
                )
            ),
        ),
        Family(
            "wayline_sync_resend_requests_total",
            "counter",
            "Resend requests: 'sent' after a gap, 'received' from a peer that saw one.",
            "direction",
            (
                ("received", float(stats.get("resend_requests_in", 0))),
                ("sent", float(stats.get("resend_requests_out", 0))),
            ),
        ),
        *(
            Family(metric, "counter", text, samples=(("", float(stats.get(stat, 0))),))
            for stat, metric, text in _COUNTERS
        ),
        Family(
            "wayline_sync_outbox_depth",
            "gauge",
            "Entries stored for a peer and not yet acked by it.",
            "peer",
            tuple((p, float(s["unacked"])) for p, s in sorted(streams.items()) if "unacked" in s),
        ),
        Family(
            "wayline_sync_oldest_unacked_seconds",
            "gauge",
            "Age of the oldest entry a peer has not acked (peers with a backlog only).",
            "peer",
            tuple(sorted(_oldest_unacked(node, streams).items())),
        ),
        Family(
            "wayline_sync_applied_seq",
            "gauge",
            "The last sequence number applied from a peer.",
            "peer",
            tuple((p, float(s["applied"])) for p, s in sorted(streams.items()) if "applied" in s),
        ),
    ]
    return families


def _oldest_unacked(node: SyncNode, streams: dict[str, dict[str, int]]) -> dict[str, float]:
    """Per peer with a backlog, the age of its first unacked entry (one index lookup each)."""
    now_ms = node.metrics.clock() * 1000
    ages: dict[str, float] = {}
    for peer, s in streams.items():
        if not s.get("unacked"):
            continue
        rows = node.store.read(
            "SELECT created_ms FROM sync_outbox WHERE peer = ? ORDER BY seq LIMIT 1", (peer,)
        )
        if rows:
            ages[peer] = max(0.0, (now_ms - int(rows[0][0])) / 1000)
    return ages
