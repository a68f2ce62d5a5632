"""Learning from completed work, with hygiene: disrupted periods stay out of the baseline.

From legs (planner estimate vs observed time) :func:`learn` fits a travel-time factor per
hour of the day (the geometric mean of observed/estimate) and from stops a service time per
customer (the median, with the global median for customers seen too little). With
``hygiene=True`` every record tagged by a disruption (an outage, a breakdown, a jam) is
left out; without it they pull the factors of their hours up for every ordinary day after.

:func:`hygiene_report` learns both ways from a history and measures the ETA error each
gives on a day's ordinary work (travel to a stop plus the service there).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from firmware_sim.world.work import CompletedWork, LegRecord, ServiceRecord

__all__ = ["LearnedTimes", "eta_error", "hygiene_report", "learn"]

MIN_SAMPLES_PER_HOUR = 5
MIN_SAMPLES_PER_CUSTOMER = 2


@dataclass(frozen=True, slots=True)
class LearnedTimes:
    """What the planner should multiply its estimates by, and how long stops take."""

    factor_by_hour: dict[int, float]
    default_factor: float
    service_by_customer: dict[str, float]
    default_service_s: float
    legs_used: int
    legs_excluded: int
    services_used: int
    services_excluded: int

    def factor(self, hour: int) -> float:
        return self.factor_by_hour.get(hour, self.default_factor)

    def service_s(self, customer_id: str) -> float:
        return self.service_by_customer.get(customer_id, self.default_service_s)


def learn(history: Iterable[CompletedWork], *, hygiene: bool = True) -> LearnedTimes:
    """Fit factors per hour and service times from completed work."""
    legs: list[LegRecord] = []
    services: list[ServiceRecord] = []
    excluded_legs = excluded_services = 0
    for day in history:
        for leg in day.legs:
            if leg.estimate_s <= 0:
                continue
            if hygiene and leg.tags:
                excluded_legs += 1
            else:
                legs.append(leg)
        for svc in day.services:
            if hygiene and svc.tags:
                excluded_services += 1
            elif svc.delivered:
                services.append(svc)
    logs: dict[int, list[float]] = defaultdict(list)
    for leg in legs:
        logs[leg.hour].append(math.log(max(leg.observed_s, 1.0) / leg.estimate_s))
    everything = [x for xs in logs.values() for x in xs]
    default = math.exp(statistics.fmean(everything)) if everything else 1.0
    by_hour = {
        h: math.exp(statistics.fmean(xs))
        for h, xs in logs.items()
        if len(xs) >= MIN_SAMPLES_PER_HOUR
    }
    per_customer: dict[str, list[float]] = defaultdict(list)
    for svc in services:
        per_customer[svc.customer_id].append(svc.observed_s)
    all_services = [x for xs in per_customer.values() for x in xs]
    return LearnedTimes(
        factor_by_hour=by_hour,
        default_factor=default,
        service_by_customer={
            c: statistics.median(xs)
            for c, xs in per_customer.items()
            if len(xs) >= MIN_SAMPLES_PER_CUSTOMER
        },
        default_service_s=statistics.median(all_services) if all_services else 150.0,
        legs_used=len(legs),
        legs_excluded=excluded_legs,
        services_used=len(services),
        services_excluded=excluded_services,
    )


def eta_error(
    model: LearnedTimes, day: CompletedWork, *, ordinary_only: bool = True
) -> dict[str, Any]:
    """Mean absolute ETA error (s) and percentage error of each stop's arrival-to-done time."""
    errors: list[float] = []
    relative: list[float] = []
    for leg, svc in zip(day.legs, day.services, strict=True):
        if ordinary_only and (leg.tags or svc.tags):
            continue
        predicted = leg.estimate_s * model.factor(leg.hour) + model.service_s(svc.customer_id)
        actual = leg.observed_s + svc.observed_s
        errors.append(abs(predicted - actual))
        relative.append(abs(predicted - actual) / max(actual, 1.0))
    if not errors:
        return {"stops": 0, "mae_s": 0.0, "mape": 0.0}
    return {
        "stops": len(errors),
        "mae_s": round(statistics.fmean(errors), 1),
        "mape": round(statistics.fmean(relative), 4),
    }


def hygiene_report(history: list[CompletedWork], day: CompletedWork) -> dict[str, Any]:
    """ETA error on ``day``'s ordinary work, learning from ``history`` with and without hygiene."""
    with_h = learn(history, hygiene=True)
    without_h = learn(history, hygiene=False)
    return {
        "history_days": len(history),
        "legs_excluded": with_h.legs_excluded,
        "services_excluded": with_h.services_excluded,
        "with_hygiene": eta_error(with_h, day),
        "without_hygiene": eta_error(without_h, day),
        "factor_by_hour": {
            "with_hygiene": {h: round(f, 3) for h, f in sorted(with_h.factor_by_hour.items())},
            "without_hygiene": {
                h: round(f, 3) for h, f in sorted(without_h.factor_by_hour.items())
            },
        },
    }
