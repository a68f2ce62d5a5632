"""The customer ETA window: narrowing stages, threshold, hysteresis, rate and quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cloud.ops import CustomerEtaRule, CustomerWindow, EtaSettings

MIN = 60_000
NOON = int(datetime(2026, 6, 2, 12, 0, tzinfo=UTC).timestamp() * 1000)
ETA = NOON + 3 * 60 * MIN  # 15:00


def rule(**settings) -> CustomerEtaRule:
    return CustomerEtaRule(EtaSettings(**settings))


def first(r: CustomerEtaRule, eta: int = ETA, now: int = NOON, stops: int | None = 12):
    decision = r.decide(None, eta, now, stops)
    assert decision.notify and decision.reason == "first_window"
    return decision.window


def test_the_window_narrows_as_the_van_approaches() -> None:
    r = rule()
    assert r.width_for(None) == r.width_for(6) == r.width_for(30) == 120
    assert r.width_for(5) == r.width_for(3) == 60
    assert r.width_for(2) == r.width_for(0) == 30
    w = r.window_for(ETA, 12, NOON)
    assert (w.start_ms, w.end_ms) == (ETA - 60 * MIN, ETA + 60 * MIN)
    w = r.window_for(ETA + 7 * MIN, 1, NOON)  # 15:07 → 14:45-15:15 on the 15-minute grid
    assert (w.start_ms, w.end_ms) == (ETA - 15 * MIN, ETA + 15 * MIN)


def test_no_message_under_the_threshold_one_for_a_real_shift_none_twice() -> None:
    r = rule(threshold_min=15, hysteresis_min=5, min_interval_min=0)
    told = first(r)
    small = r.decide(told, ETA + 14 * MIN, NOON + 10 * MIN, 12)
    assert not small.notify and small.reason == "below_threshold"
    assert small.change.shift_min == 14 and small.window == told

    real = r.decide(told, ETA + 25 * MIN, NOON + 20 * MIN, 12)
    assert real.notify and real.reason == "shift"
    assert real.change.previous_eta_ms == ETA and real.change.new_eta_ms == ETA + 25 * MIN
    assert real.change.previous_window == told
    told = real.window
    assert told.eta_ms == ETA + 25 * MIN and told.start_ms > ETA - 60 * MIN

    again = r.decide(told, ETA + 25 * MIN, NOON + 21 * MIN, 12)
    assert not again.notify and again.reason == "unchanged"
    drift = r.decide(told, ETA + 31 * MIN, NOON + 22 * MIN, 12)
    assert not drift.notify and drift.reason == "below_threshold"


def test_hysteresis_a_shift_back_needs_more_than_the_threshold() -> None:
    r = rule(threshold_min=15, hysteresis_min=5, min_interval_min=0)
    told = r.decide(first(r), ETA + 16 * MIN, NOON + 5 * MIN, 12).window
    back = r.decide(told, ETA, NOON + 10 * MIN, 12)  # -16: wavering around the threshold
    assert not back.notify and back.reason == "hysteresis"
    further = r.decide(told, ETA - 5 * MIN, NOON + 15 * MIN, 12)  # -21: a real shift back
    assert further.notify and further.reason == "shift"
    onward = r.decide(told, ETA + 32 * MIN, NOON + 15 * MIN, 12)  # +16 the same way: fine
    assert onward.notify


def test_at_most_so_often_and_the_change_stays_due() -> None:
    r = rule(threshold_min=10, min_interval_min=30)
    told = first(r)
    soon = r.decide(told, ETA + 40 * MIN, NOON + 10 * MIN, 12)
    assert not soon.notify and soon.reason == "rate_limited" and soon.due == "shift"
    assert soon.window == told
    later = r.decide(told, ETA + 40 * MIN, NOON + 30 * MIN, 12)
    assert later.notify and later.reason == "shift"
    assert later.change.shift_min == 40


def test_narrowing_is_told_once_per_stage() -> None:
    r = rule(min_interval_min=0)
    told = first(r)
    near = r.decide(told, ETA + 3 * MIN, NOON + 60 * MIN, 5)
    assert near.notify and near.reason == "narrowed" and near.window.width_min == 60
    same = r.decide(near.window, ETA + 4 * MIN, NOON + 70 * MIN, 4)
    assert not same.notify
    close = r.decide(near.window, ETA + 4 * MIN, NOON + 80 * MIN, 2)
    assert close.notify and close.window.width_min == 30


def test_quiet_hours_in_the_tenants_time_zone() -> None:
    r = rule(quiet_start_hour=21, quiet_end_hour=7, timezone="Europe/Berlin")
    late = int(datetime(2026, 6, 2, 19, 30, tzinfo=UTC).timestamp() * 1000)  # 21:30 Berlin
    d = r.decide(None, late + 14 * 60 * MIN, late, None)
    assert not d.notify and d.reason == "quiet_hours" and d.due == "first_window"
    evening = int(datetime(2026, 6, 2, 17, 0, tzinfo=UTC).timestamp() * 1000)  # 19:00 Berlin
    assert r.decide(None, evening + 16 * 60 * MIN, evening, None).notify


def test_every_decision_carries_its_change_as_data() -> None:
    r = rule(min_interval_min=0)
    told = first(r)
    data = r.decide(told, ETA + 20 * MIN, NOON + MIN, 12).as_dict()
    assert data["change"]["shift_min"] == 20.0
    assert data["change"]["previous_window"]["eta_ms"] == ETA
    assert data["window"]["eta_ms"] == ETA + 20 * MIN
    assert isinstance(told, CustomerWindow)


@pytest.mark.parametrize(
    "bad",
    [
        {"threshold_min": 0},
        {"threshold_min": "15"},
        {"timezone": "Mars/Olympus"},
        {"quiet_start_hour": 24},
        {"stages": ()},
    ],
)
def test_tenant_settings_are_validated(bad) -> None:
    with pytest.raises(ValidationError):
        EtaSettings(**bad)


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(-40, 40), st.integers(1, 20), st.integers(0, 15)),
        min_size=1,
        max_size=40,
    )
)
def test_any_eta_stream_respects_the_rate_and_never_repeats_a_shift(steps) -> None:
    """Whatever the operational ETA does, messages keep the minimum interval, and each one
    follows a window change: a new width or a shift of at least the threshold."""
    r = rule(threshold_min=15, hysteresis_min=5, min_interval_min=20, quiet_start_hour=None)
    told = first(r)
    now, eta = NOON, ETA
    for delta, minutes_later, stops in steps:
        now += minutes_later * MIN
        eta += delta * MIN
        decision = r.decide(told, eta, now, stops)
        assert decision.change.new_eta_ms == eta
        if not decision.notify:
            assert decision.window == told
            continue
        assert now - told.notified_ms >= 20 * MIN
        moved = abs(eta - told.eta_ms) >= 15 * MIN
        assert moved or decision.window.width_min < told.width_min
        told = decision.window
