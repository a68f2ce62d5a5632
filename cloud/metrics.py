"""The coordinator's Prometheus metrics, in a registry of its own, served at ``/metrics``.

Each :class:`~cloud.coordinator.Coordinator` owns one :class:`CloudMetrics` with its own
``CollectorRegistry`` (never prometheus-client's global one), so several coordinators in one
process (tests, benchmarks) never share a counter. What it holds:

- the sync node's metrics, read when scraped (:func:`sync.metrics.sync_families`): ingest
  by message kind, lag, refusals by reason, resend requests, and per device the outbox depth,
  the age of its oldest unacked entry and the last sequence number applied from it;
- what the coordinator counts as it works: planner solve times, the re-sequencer solve
  times the vans report, exceptions raised by class, webhook delivery failures (the
  :class:`~cloud.ops.WebhookDispatcher`'s ``on_outcome`` is :meth:`CloudMetrics.webhook_outcome`);
- the process's own (CPU, memory, file descriptors, garbage collection).

Every label has a bounded set of values (a message kind, a solver, an exception class, a
webhook event type, a device id). ``docs/operations.md`` ("Health and metrics") lists them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from cloud.ops import WebhookOutcome
from protocol import RouteSequenceReport
from sync import SyncNode
from sync.metrics import sync_families
from sync.prometheus import to_prometheus

__all__ = ["PLAN_BUCKETS_S", "RESEQUENCE_BUCKETS_S", "CloudMetrics"]

PLAN_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
"""Upper bounds of ``wayline_plan_solve_seconds``: a small rebalance to a big morning plan."""
RESEQUENCE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Upper bounds of ``wayline_fleet_resequence_seconds`` (the vans' own histogram's too)."""


class CloudMetrics:
    """The coordinator's registry and the counters its parts call (module docstring)."""

    def __init__(self, node: SyncNode) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_SyncCollector(node))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.plan_seconds = Histogram(
            "wayline_plan_solve_seconds",
            "Seconds the planner took to solve one region, by decision kind and solver.",
            ["kind", "solver"],
            buckets=PLAN_BUCKETS_S,
            registry=self.registry,
        )
        self.resequence_seconds = Histogram(
            "wayline_fleet_resequence_seconds",
            "Seconds the vans' re-sequencer searched, as their route_sequence reports say.",
            buckets=RESEQUENCE_BUCKETS_S,
            registry=self.registry,
        )
        self.exceptions = Counter(
            "wayline_exceptions_raised_total",
            "Exceptions raised (reported by devices or predicted), by class and the action "
            "the policy chose.",
            ["class", "action"],
            registry=self.registry,
        )
        self.webhook_failures = Counter(
            "wayline_webhook_failures_total",
            "Webhook delivery attempts that failed, by event type: outcome 'retry' (it will be "
            "sent again) or 'failed' (given up).",
            ["event", "outcome"],
            registry=self.registry,
        )

    def plan_solved(self, kind: str, solver: str, seconds: float) -> None:
        """One region solved by the planner (a morning plan or a rebalance)."""
        self.plan_seconds.labels(kind, solver).observe(seconds)

    def sequence_reported(self, report: RouteSequenceReport) -> None:
        """A van's new order of stops; a search (not a kept order) counts its solve time."""
        if report.solver not in ("kept", "none") and math.isfinite(report.seconds):
            self.resequence_seconds.observe(report.seconds)

    def exception_raised(self, cls: str, action: str) -> None:
        self.exceptions.labels(cls, action).inc()

    def webhook_outcome(self, outcome: WebhookOutcome) -> None:
        """The webhook dispatcher's ``on_outcome``: where a delivery stands after an attempt.

        ``failed`` is given up; ``pending`` with a reason failed and will be sent again."""
        event = outcome.event_type or "unknown"
        if outcome.status == "failed":
            self.webhook_failures.labels(event, "failed").inc()
        elif outcome.status == "pending" and outcome.reason:
            self.webhook_failures.labels(event, "retry").inc()


class _SyncCollector:
    """The sync node's metrics, read at each scrape."""

    def __init__(self, node: SyncNode) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        for family in sync_families(self.node):
            yield to_prometheus(family)
