"""A van's or a depot's Prometheus metrics, in a registry of its own, for ``/metrics``.

Read when scraped, nothing kept twice: the sync node's metrics
(:func:`sync.metrics.sync_families`: what came from the cloud by kind and how late, refusals,
resend requests, this device's outbox depth and the age of its oldest unacked entry, the
broker link), on a van the re-sequencer's solve times (``wayline_resequence_seconds``), and
the process's own (CPU, memory, file descriptors). The registry is the app's, never
prometheus-client's global one, so several agents in one process keep apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    Metric,
)
from prometheus_client.process_collector import ProcessCollector

from sync import SyncNode
from sync.metrics import Family, sync_families
from sync.prometheus import to_prometheus

if TYPE_CHECKING:
    from edge.resequencing import Resequencer

__all__ = ["edge_registry"]


def edge_registry(node: SyncNode, resequencer: Resequencer | None = None) -> CollectorRegistry:
    """A registry with the node's metrics, the re-sequencer's if given, and the process's."""
    registry = CollectorRegistry()
    registry.register(_EdgeCollector(node, resequencer))
    ProcessCollector(registry=registry)
    return registry


class _EdgeCollector:
    """The sync node's and the re-sequencer's metrics, read at each scrape."""

    def __init__(self, node: SyncNode, resequencer: Resequencer | None) -> None:
        self.node = node
        self.resequencer = resequencer

    def collect(self) -> Iterator[Metric]:
        families = sync_families(self.node)
        if self.resequencer is not None:
            families.append(
                Family(
                    "wayline_resequence_seconds",
                    "histogram",
                    "Seconds each search of the re-sequencer took (kept orders search nothing).",
                    histogram=self.resequencer.solve_times.snapshot(),
                )
            )
        for family in families:
            yield to_prometheus(family)
