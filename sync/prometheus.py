"""The sync layer's metrics as prometheus-client's: the one module of sync that imports it.

:mod:`sync.metrics` keeps its counters and histograms in plain Python; the cloud's and the
edge's collectors hand each :class:`~sync.metrics.Family` through :func:`to_prometheus` when
their ``/metrics`` is scraped.
"""

from __future__ import annotations

import math

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from sync.metrics import Family

__all__ = ["to_prometheus"]


def to_prometheus(family: Family) -> Metric:
    """A library-neutral :class:`~sync.metrics.Family` as prometheus-client's metric."""
    if family.type == "histogram":
        h = family.histogram
        assert h is not None
        return HistogramMetricFamily(
            family.name,
            family.help,
            buckets=[(_le(bound), n) for bound, n in h.buckets],
            sum_value=h.sum,
        )
    kind = CounterMetricFamily if family.type == "counter" else GaugeMetricFamily
    metric = kind(family.name, family.help, labels=[family.label] if family.label else [])
    for value_label, value in family.samples:
        metric.add_metric([value_label] if family.label else [], value)
    return metric


def _le(bound: float) -> str:
    """A bucket's upper bound as the exposition writes it: ``0.05``, ``60.0``, ``+Inf``."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))
