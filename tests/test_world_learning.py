"""Learning with hygiene: disrupted periods kept out of the baseline give better ETAs."""

from __future__ import annotations

from firmware_sim.world import World, hygiene_report, learn, load_scenario, simulate_work


def day(name: str, seed: int):  # type: ignore[no-untyped-def]
    return simulate_work(World(load_scenario(name, seed=seed)))


def test_disrupted_records_are_tagged() -> None:
    work = day("disrupted", 7)  # the default seed: own-2 breaks down mid-leg
    tags = {t for leg in work.legs for t in leg.tags}
    assert tags == {"jam", "breakdown", "outage"}
    assert day("calm", 2).disrupted_legs == 0
    assert day("disrupted", 7).legs == work.legs  # deterministic


def test_hygiene_gives_smaller_eta_errors_on_a_disrupted_day() -> None:
    history = [day("calm", 11), day("disrupted", 12), day("calm", 13), day("disrupted", 14)]
    target = day("disrupted", 15)
    report = hygiene_report(history, target)
    with_h, without_h = report["with_hygiene"], report["without_hygiene"]
    assert report["legs_excluded"] > 0
    assert with_h["stops"] == without_h["stops"] > 50
    assert with_h["mae_s"] < without_h["mae_s"] * 0.9
    assert with_h["mape"] < without_h["mape"]
    # the jam's hours are where the dirty baseline is most wrong
    factors = report["factor_by_hour"]
    assert factors["without_hygiene"][16] > factors["with_hygiene"][16] * 1.15


def test_on_calm_history_hygiene_changes_nothing() -> None:
    history = [day("calm", 21), day("calm", 22)]
    a, b = learn(history, hygiene=True), learn(history, hygiene=False)
    assert a == b and a.legs_excluded == 0
    assert 1.0 < a.default_factor < 1.6  # traffic makes the planner optimistic
    assert 60 < a.default_service_s < 400
