"""The guards in front of the coordinator's API and dashboard, and their count in ``/metrics``.

:class:`sync.http_guard.HttpGuard` refuses, before any route parses anything, a body over
``http_max_body_bytes`` (413), a malformed path (400) and a cross-site write carrying the
dashboard's session cookie (403); its refusals, with the dashboard's refused logins, are
``wayline_http_refused_total{reason}`` in the coordinator's registry (:mod:`cloud.metrics`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fastapi import FastAPI
from prometheus_client.core import CounterMetricFamily, Metric

from cloud.api_access import COOKIE
from sync.http_guard import HttpGuard, Refusals

if TYPE_CHECKING:
    from cloud.coordinator import Coordinator

__all__ = ["guard_api"]


def guard_api(app: FastAPI, coordinator: Coordinator) -> None:
    """Put the guards in front of ``app`` and the count of their refusals in the metrics."""
    access = coordinator.operations.access
    settings = access.settings
    app.add_middleware(
        HttpGuard,
        refusals=access.refusals,
        max_body_bytes=settings.http_max_body_bytes,
        session_cookie=COOKIE,
        trusted_origins=settings.trusted_origins,
    )
    # an API made before over the same coordinator registered it already: ValueError
    with contextlib.suppress(ValueError):
        coordinator.metrics.registry.register(RefusalCollector(access.refusals))


class RefusalCollector:
    """``wayline_http_refused_total{reason}``, read at each scrape."""

    def __init__(self, refusals: Refusals) -> None:
        self.refusals = refusals

    def collect(self) -> Iterator[Metric]:
        family = self.refusals.family()
        metric = CounterMetricFamily(family.name, family.help, labels=[family.label or "reason"])
        for reason, value in family.samples:
            metric.add_metric([reason], value)
        yield metric
