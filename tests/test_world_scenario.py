"""Scenario files: the shipped days load, bad files fail with a clear error, a seed is a world."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_sim.world import (
    SCENARIO_DIR,
    ScenarioError,
    SimClock,
    TravelModel,
    World,
    load_scenario,
    parse_scenario,
)

CALM = (SCENARIO_DIR / "calm.toml").read_text()


def test_shipped_scenarios_load() -> None:
    calm, disrupted = load_scenario("calm"), load_scenario("disrupted")
    assert {f.kind for f in calm.fleets} == {"own", "3pl", "gig"}
    assert calm.events == ()
    kinds = {e.kind: e for e in disrupted.events}
    assert set(kinds) == {"carrier_outage", "breakdown", "dead_zone", "jam", "order_spike"}
    assert kinds["carrier_outage"].at == 11 * 3600 and kinds["carrier_outage"].disruptive
    assert kinds["dead_zone"].until - kinds["dead_zone"].at == 3600
    assert kinds["order_spike"].params["extra_share"] == pytest.approx(0.4)
    w_calm, w_dis = World(calm), World(disrupted)
    assert w_dis.summary()["spike"] == round(calm.orders["count"] * 0.4)
    summary = w_calm.summary()
    assert summary["pickups"] > 0 and summary["midday"] > 0 and summary["reschedules"] > 0
    zones = w_dis.dead_zones()
    assert len(zones) == 1 and zones[0]["end_s"] - zones[0]["start_s"] == 3600


@pytest.mark.parametrize(
    "edit,message",
    [
        (
            lambda t: t.replace("radius_km = 7.0", "radius_km = 7.0\nradius_miles = 4"),
            "unknown key 'radius_miles' in \\[city\\]",
        ),
        (
            lambda t: t.replace('kind = "gig"', 'kind = "gig"\nbikes = true'),
            "unknown key 'bikes' in \\[\\[fleets\\]\\] #3",
        ),
        (lambda t: t + "\n[weather]\nrain = true\n", "unknown key 'weather' in the file"),
        (
            lambda t: t.replace("seed = 7 ", "seed = 'seven' "),
            "'seed' in \\[scenario\\] must be int",
        ),
        (lambda t: t.replace('start = "08:00"', 'start = "8 am"'), "must be HH:MM"),
        (lambda t: t.replace("count = 120", ""), "missing key 'count' in \\[orders\\]"),
        (lambda t: t.replace('kind = "3pl"', 'kind = "drones"'), "kind must be one of"),
        (lambda t: t + '\n[[events]]\nkind = "meteor"\nat = "10:00"\n', "unknown kind 'meteor'"),
        (
            lambda t: t + '\n[[events]]\nkind = "jam"\nat = "10:00"\ndistrict = 2\nspeed = 3\n',
            "unknown key 'speed' in \\[\\[events\\]\\] #1 \\(jam\\)",
        ),
        (
            lambda t: t + '\n[[events]]\nkind = "carrier_outage"\nat = "10:00"\nfleet = "nope"\n',
            "unknown fleet 'nope'",
        ),
        (
            lambda t: (
                t + '\n[[events]]\nkind = "jam"\nat = "10:00"\nuntil = "09:00"\ndistrict = 1\n'
            ),
            "ends before it starts",
        ),
        (lambda t: t.replace("[city]", "[city"), "not valid TOML"),
    ],
)
def test_bad_scenarios_say_what_is_wrong(edit, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(edit(CALM), source="bad.toml")


def test_unknown_scenario_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="known: calm, disrupted"):
        load_scenario("stormy")
    path = tmp_path / "mine.toml"
    path.write_text(CALM.replace('name = "calm"', 'name = "mine"'))
    assert load_scenario(path, seed=3).seed == 3


def test_a_seed_is_a_world() -> None:
    a, b = World(load_scenario("disrupted")), World(load_scenario("disrupted"))
    c = World(load_scenario("disrupted", seed=8))
    assert a.orders == b.orders and a.customers == b.customers and a.vehicles == b.vehicles
    assert a.orders != c.orders
    order = a.orders[5]
    assert a.attempt(order) == b.attempt(order)  # outcomes do not depend on who asks first
    ta, tb = TravelModel(a), TravelModel(b)
    p, q = (a.orders[0].lat, a.orders[0].lon), (a.orders[1].lat, a.orders[1].lon)
    assert ta.actual_s(p, q, 9 * 3600) == tb.actual_s(p, q, 9 * 3600)
    assert ta.actual_s(p, q, 9 * 3600)[0] != ta.estimate_s(p, q)


def test_jams_slow_travel_inside_their_area_and_time() -> None:
    world = World(load_scenario("disrupted"))
    travel = TravelModel(world)
    jam = next(e for e in world.scenario.events if e.kind == "jam")
    area = world.area_of(jam)
    assert area is not None
    inside = area[:2]
    assert travel.jam_factor(jam.at + 60, (inside,)) == 3.0
    assert travel.jam_factor(jam.at - 60, (inside,)) == 1.0
    assert travel.traffic_factor(jam.at + 60, inside) == pytest.approx(
        3.0 * travel.hour_factor(jam.at + 60)
    )


def test_sim_clock_runs_fast() -> None:
    now = [1000.0]
    clock = SimClock(1_800_000_000.0, speed=120, real=lambda: now[0])
    assert clock() == 1_800_000_000.0
    now[0] += 30
    assert clock() == 1_800_003_600.0
    assert clock.real_seconds(3600) == 30 and clock.real_at(1_800_003_600.0) == now[0]
    with pytest.raises(ValueError):
        SimClock(0, speed=0)
