"""The morning plan runs by itself at each depot's cut-off, in the depot's time zone.

A real coordinator on a real SQLite file, on a clock the test sets (as the demo simulates
one); the schedule's own worker thread does the planning. Routes reach a real vehicle agent
through the real broker. Days are the depot's local days, clock changes included.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud import CloudSettings, Coordinator
from cloud.local_days import day_of, day_start, local_instant
from cloud.morning import MorningSettings
from cloud.snapshot import route_id_for
from edge.vehicle import VehicleAgent, VehicleSettings
from sync import BrokerAddress, parse_broker_url
from tests.helpers import MosquittoBroker, unique_id, wait_for
from tests.test_cloud_support import FAST, QUICK, api_client

AMS, NYC = "Europe/Amsterdam", "America/New_York"
TICK_S = 0.05
QUIET_S = 0.4
"""How long the tests watch a schedule that must do nothing (eight looks)."""


class Clock:
    """The coordinator's clock, set by the test."""

    def __init__(self, t: float) -> None:
        self.t = float(t)

    def __call__(self) -> float:
        return self.t

    def set(self, day: str, hhmm: str, zone: str, plus_s: int = 0) -> None:
        self.t = float(local_instant(day, hhmm, zone) + plus_s)


def make(
    path: Path, clock: Clock, broker: BrokerAddress | None = None, **morning: Any
) -> Coordinator:
    settings = CloudSettings(
        db_path=path,
        broker=broker,
        sync=FAST,
        dispatch=QUICK,
        morning=MorningSettings(tick_s=TICK_S, **morning),
    )
    return Coordinator(settings, clock=clock)


def depot(
    c: Coordinator, depot_id: str, zone: str | None, cutoff: str | None, vans: list[str]
) -> None:
    """A depot with its own vans (shift 08:00-19:00 of its local day)."""
    with c.store.transaction() as conn:
        c.db.put_depot(conn, depot_id, depot_id, 52.37, 4.89, None, 0, timezone=zone, cutoff=cutoff)
    fleet(c, depot_id, vans)


def fleet(c: Coordinator, depot_id: str, vans: list[str]) -> None:
    with c.store.transaction() as conn:
        c.db.put_fleet(
            conn, f"{depot_id}-own", "own", depot_id,
            {"cost_per_km": 40, "cost_per_hour": 3000, "fixed_cost": 1000}, 0,
        )  # fmt: skip
        for v in vans:
            c.db.put_vehicle(
                conn, v, f"{depot_id}-own",
                {"capacity": 100, "shift_start_s": 8 * 3600, "shift_end_s": 19 * 3600,
                 "skills": []},
                0,
            )  # fmt: skip


def order(depot_id: str, k: int, day: str | None, zone: str) -> dict[str, Any]:
    """An order with a 09:00-17:00 window on ``day`` (local), or no day and no window."""
    body: dict[str, Any] = {
        "order_id": f"{depot_id}-o{k}",
        "depot_id": depot_id,
        "lat": round(52.37 + 0.004 * (k % 5) - 0.008, 6),
        "lon": round(4.89 + 0.006 * (k % 7) - 0.018, 6),
        "service_s": 120,
        "parcels": [
            {"parcel_id": f"{depot_id}-p{k}", "barcode": f"M{depot_id}{k}", "weight_kg": 2}
        ],
    }
    if day is not None:
        body["day"] = day
        body["window"] = {
            "start": local_instant(day, "09:00", zone),
            "end": local_instant(day, "17:00", zone),
        }
    return body


def add(c: Coordinator, depot_id: str, day: str, zone: str, n: int, first: int = 0) -> None:
    from cloud.intake import parse_order, take_orders

    orders = [parse_order(order(depot_id, k, day, zone)) for k in range(first, first + n)]
    take_orders(c.store, c.db, orders, c.now_ms())


def plans(c: Coordinator, depot_id: str | None = None) -> list[dict[str, Any]]:
    rows = c.db.query(
        "SELECT decision_id, region, approved_by, trigger FROM decisions WHERE kind = 'plan' "
        "ORDER BY at_ms, decision_id"
    )
    return [r for r in rows if depot_id is None or r["region"].startswith(f"{depot_id}/")]


def quiet(c: Coordinator, depot_id: str | None = None) -> int:
    """Watch the running schedule for a while; how many morning plans it holds then."""
    time.sleep(QUIET_S)
    return len(plans(c, depot_id))


@pytest.fixture
def started() -> Iterator[list[Coordinator]]:
    """Coordinators a test starts; stopped when it ends, even when it fails."""
    running: list[Coordinator] = []
    yield running
    for c in running:
        c.stop()


def run(started: list[Coordinator], c: Coordinator) -> Coordinator:
    c.start()
    started.append(c)
    return c


def stop(started: list[Coordinator], c: Coordinator) -> None:
    started.remove(c)
    c.stop()


# -- at the cut-off, once, with routes sent ----------------------------------------------------


@pytest.mark.broker
def test_amsterdam_depot_is_planned_at_its_cutoff_once_and_its_vans_get_their_routes(
    tmp_path: Path, mosquitto: MosquittoBroker, started: list[Coordinator]
) -> None:
    day = day_of(time.time() + 2 * 86_400, AMS)  # ahead, so the real van sees nothing late
    clock = Clock(local_instant(day, "05:59", AMS))
    vans = [unique_id("van"), unique_id("van")]
    c = make(tmp_path / "cloud.db", clock, parse_broker_url(mosquitto.url))
    with api_client(c) as api:
        r = api.post(
            "/v1/depots",
            json={"depot_id": "ams", "lat": 52.37, "lon": 4.89, "timezone": AMS, "cutoff": "06:00"},
        )
        assert r.status_code == 201, r.text
        assert (r.json()["timezone"], r.json()["cutoff"]) == (AMS, "06:00")
    fleet(c, "ams", vans)
    depot(c, "quiet", AMS, "06:00", [])  # a second depot, with nothing to plan
    add(c, "ams", day, AMS, 8)
    agents = {
        v: VehicleAgent(
            VehicleSettings(
                vehicle_id=v,
                db_path=tmp_path / f"{v}.db",
                broker=parse_broker_url(mosquitto.url),
                sync=FAST,
            )
        )
        for v in vans
    }
    for a in agents.values():
        a.start()
    try:
        run(started, c)
        assert quiet(c) == 0, "nothing is planned before 06:00 in Amsterdam"
        assert all(c.db.latest_plan(route_id_for(v, day)) is None for v in vans)

        clock.set(day, "06:00", AMS)
        wait_for(lambda: plans(c), timeout=60, message="the morning plan at the cut-off")
        [made] = plans(c)
        assert made["region"] == f"ams/{day}" and made["approved_by"] == "policy:schedule"
        trigger = c.db.decision(made["decision_id"])["trigger"]
        assert trigger == {
            "kind": "morning_plan", "day": day, "by": "schedule", "timezone": AMS,
            "cutoff": "06:00", "cutoff_at_ms": local_instant(day, "06:00", AMS) * 1000,
        }  # fmt: skip
        assert {c.db.order(f"ams-o{k}")["status"] for k in range(8)} == {"assigned"}
        sent = [p for v in vans if (p := c.db.latest_plan(route_id_for(v, day))) is not None]
        assert sent, "the vans' routes are sent"
        for p in sent:  # the shift is 08:00-19:00 on Amsterdam's clock
            assert p.day == day and p.start_at == local_instant(day, "08:00", AMS)
            assert p.end_at == local_instant(day, "19:00", AMS)
        for p in sent:  # over the broker, to the real agents
            a = agents[p.vehicle_id]
            wait_for(lambda a=a: a.book.route() is not None, timeout=20)
            assert a.book.route()["version"] == p.version == 1

        clock.set(day, "06:30", AMS)
        assert quiet(c) == 1, "a second look plans nothing more"
        with api_client(c) as api:  # nor does a request for the same depot-day
            r = api.post("/v1/plan", json={"day": day, "depot_ids": ["ams"]})
        assert r.status_code == 200, r.text
        [again] = r.json()
        assert again["decision_id"] == made["decision_id"] and again["already_planned"]
        assert len(plans(c)) == 1
    finally:
        for a in agents.values():
            a.stop()


def test_a_plan_requested_before_the_cutoff_is_the_days_plan(
    tmp_path: Path, started: list[Coordinator]
) -> None:
    day = "2026-06-10"
    clock = Clock(local_instant(day, "05:00", AMS))
    c = make(tmp_path / "cloud.db", clock)
    depot(c, "ams", AMS, "06:00", ["ams-van1"])
    add(c, "ams", day, AMS, 4)
    with api_client(c) as api:
        r = api.post("/v1/plan", json={"day": day})
    assert r.status_code == 200 and not r.json()[0]["already_planned"], r.text
    run(started, c)
    clock.set(day, "06:00", AMS, plus_s=60)
    assert quiet(c) == 1
    assert plans(c)[0]["approved_by"] == "api:api"


# -- each depot at its own cut-off ---------------------------------------------------------------


def test_new_york_is_planned_at_its_own_cutoff_not_amsterdams(
    tmp_path: Path, started: list[Coordinator]
) -> None:
    day = "2026-06-10"  # Amsterdam is UTC+2, New York UTC-4: six hours apart
    clock = Clock(local_instant(day, "05:00", AMS))
    c = make(tmp_path / "cloud.db", clock)
    depot(c, "ams", AMS, "06:00", ["ams-van1"])
    depot(c, "nyc", NYC, "06:00", ["nyc-van1"])
    add(c, "ams", day, AMS, 4)
    add(c, "nyc", day, NYC, 4)
    run(started, c)

    clock.set(day, "06:00", AMS)  # midnight in New York
    wait_for(lambda: plans(c, "ams"), timeout=60)
    assert quiet(c, "nyc") == 0, "New York's cut-off has not come"
    clock.set(day, "05:59", NYC)
    assert quiet(c, "nyc") == 0
    clock.set(day, "06:00", NYC)
    wait_for(lambda: plans(c, "nyc"), timeout=60)
    assert [p["region"] for p in plans(c)] == [f"ams/{day}", f"nyc/{day}"]
    [nyc] = plans(c, "nyc")
    assert c.db.decision(nyc["decision_id"])["trigger"]["cutoff_at_ms"] == (
        dt.datetime(2026, 6, 10, 10, 0, tzinfo=dt.UTC).timestamp() * 1000
    )
    snap = c.db.decision(nyc["decision_id"])["inputs"]
    assert snap["day_start"] == day_start(day, NYC) == local_instant(day, "00:00", NYC)


def test_a_depot_without_a_zone_follows_the_coordinators_default(
    tmp_path: Path, started: list[Coordinator]
) -> None:
    day = "2026-06-10"
    clock = Clock(local_instant(day, "06:59", NYC))
    c = make(tmp_path / "cloud.db", clock, default_timezone=NYC, default_cutoff="07:00")
    depot(c, "plain", None, None, ["plain-van1"])
    assert (c.db.depot("plain")["timezone"], c.db.depot("plain")["cutoff"]) == (NYC, "07:00")
    add(c, "plain", day, NYC, 3)
    run(started, c)
    assert quiet(c) == 0
    clock.set(day, "07:00", NYC)
    wait_for(lambda: plans(c), timeout=60)


def test_a_depot_with_no_orders_yet_is_planned_when_its_first_order_comes(
    tmp_path: Path, started: list[Coordinator]
) -> None:
    day = "2026-06-10"
    clock = Clock(local_instant(day, "06:30", AMS))
    c = make(tmp_path / "cloud.db", clock)
    depot(c, "ams", AMS, "06:00", ["ams-van1"])
    run(started, c)
    assert quiet(c) == 0, "nothing to plan: no decision"
    add(c, "ams", day, AMS, 2)
    wait_for(lambda: plans(c), timeout=60)
    assert quiet(c) == 1


# -- clock changes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "zone,day,cutoff,due_utc",
    [
        # 02:00 CET becomes 03:00 CEST at 01:00 UTC: 02:30 never happens
        (AMS, "2026-03-29", "02:30", "2026-03-29T01:00:00"),
        (AMS, "2026-03-29", "06:00", "2026-03-29T04:00:00"),
        # 02:00 EST becomes 03:00 EDT at 07:00 UTC
        (NYC, "2026-03-08", "02:00", "2026-03-08T07:00:00"),
        (NYC, "2026-03-08", "06:00", "2026-03-08T10:00:00"),
    ],
)
def test_spring_forward_a_skipped_cutoff_runs_at_the_first_instant_that_exists(
    tmp_path: Path, started: list[Coordinator], zone: str, day: str, cutoff: str, due_utc: str
) -> None:
    due = int(dt.datetime.fromisoformat(due_utc).replace(tzinfo=dt.UTC).timestamp())
    assert local_instant(day, cutoff, zone) == due
    clock = Clock(due - 1)
    c = make(tmp_path / "cloud.db", clock)
    depot(c, "dep", zone, cutoff, ["dep-van1"])
    add(c, "dep", day, zone, 3)
    run(started, c)
    assert quiet(c) == 0
    clock.t = due
    wait_for(lambda: plans(c), timeout=60)
    assert plans(c)[0]["region"] == f"dep/{day}"
    clock.t = due + 3600
    assert quiet(c) == 1


@pytest.mark.parametrize(
    "zone,day,first_utc,second_utc",
    [
        # 03:00 CEST becomes 02:00 CET at 01:00 UTC: 02:30 happens at 00:30 and 01:30 UTC
        (AMS, "2026-10-25", "2026-10-25T00:30:00", "2026-10-25T01:30:00"),
        # 02:00 EDT becomes 01:00 EST at 06:00 UTC: 01:30 happens at 05:30 and 06:30 UTC
        (NYC, "2026-11-01", "2026-11-01T05:30:00", "2026-11-01T06:30:00"),
    ],
)
def test_fall_back_a_repeated_cutoff_runs_once_at_its_first_occurrence(
    tmp_path: Path,
    started: list[Coordinator],
    zone: str,
    day: str,
    first_utc: str,
    second_utc: str,
) -> None:
    first, second = (
        int(dt.datetime.fromisoformat(t).replace(tzinfo=dt.UTC).timestamp())
        for t in (first_utc, second_utc)
    )
    cutoff = dt.datetime.fromtimestamp(first, tz=_zone(zone)).strftime("%H:%M")
    assert dt.datetime.fromtimestamp(second, tz=_zone(zone)).strftime("%H:%M") == cutoff
    clock = Clock(first - 1)
    c = make(tmp_path / "cloud.db", clock)
    depot(c, "dep", zone, cutoff, ["dep-van1"])
    add(c, "dep", day, zone, 3)
    run(started, c)
    assert quiet(c) == 0
    clock.t = first
    wait_for(lambda: plans(c), timeout=60)
    clock.t = second  # the wall clock reads the cut-off again
    assert quiet(c) == 1
    clock.t = second + 60
    assert quiet(c) == 1


def _zone(name: str) -> dt.tzinfo:
    from cloud.local_days import zone

    return zone(name)


# -- local days ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "zone,local,utc_day,local_day",
    [
        (NYC, "2026-06-10T23:30", "2026-06-11", "2026-06-10"),  # 03:30 UTC the next day
        (AMS, "2026-06-10T00:30", "2026-06-09", "2026-06-10"),  # 22:30 UTC the day before
    ],
)
def test_an_order_belongs_to_its_depots_local_day(
    tmp_path: Path, zone: str, local: str, utc_day: str, local_day: str
) -> None:
    at = dt.datetime.fromisoformat(local).replace(tzinfo=_zone(zone)).timestamp()
    assert day_of(at) == utc_day and day_of(at, zone) == local_day
    c = make(tmp_path / "cloud.db", Clock(at))
    depot(c, "dep", zone, "06:00", ["dep-van1"])
    try:
        with api_client(c) as api:
            no_window = api.post("/v1/orders", json=order("dep", 1, None, zone))
            windowed = order("dep", 2, None, zone)
            windowed["window"] = {"start": int(at), "end": int(at) + 1800}
            by_window = api.post("/v1/orders", json=windowed)
            again = api.post("/v1/orders", json=order("dep", 1, None, zone))
        assert no_window.status_code == 201, no_window.text
        assert no_window.json()["day"] == local_day
        assert by_window.json()["day"] == local_day
        assert again.json() == no_window.json()
        assert c.db.order("dep-o1")["day"] == c.db.order("dep-o2")["day"] == local_day
        assert [o["order_id"] for o in c.db.region_orders("dep", local_day)] == [
            "dep-o1", "dep-o2",
        ]  # fmt: skip
    finally:
        c.stop()


def test_a_window_is_checked_against_the_depots_local_day(tmp_path: Path) -> None:
    day = "2026-06-10"  # Auckland is UTC+12: its morning is the evening before in UTC
    zone = "Pacific/Auckland"
    c = make(tmp_path / "cloud.db", Clock(local_instant(day, "05:00", zone)))
    depot(c, "akl", zone, "06:00", ["akl-van1"])
    try:
        with api_client(c) as api:
            ok = api.post("/v1/orders", json=order("akl", 1, day, zone))
            off = order("akl", 2, day, zone)
            later = day_start(day, zone) + 3 * 86_400
            off["window"] = {"start": later, "end": later + 60}
            bad = api.post("/v1/orders", json=off)
        assert ok.status_code == 201 and ok.json()["day"] == day, ok.text
        assert local_instant(day, "09:00", zone) < day_start(day), "before UTC's day begins"
        assert bad.status_code == 422 and "impossible window" in bad.json()["error"]
    finally:
        c.stop()


# -- catch-up after a restart -----------------------------------------------------------------


def test_a_restart_after_the_cutoff_catches_up_once(
    tmp_path: Path, started: list[Coordinator]
) -> None:
    day, tomorrow = "2026-06-10", "2026-06-11"
    clock = Clock(local_instant(day, "05:00", AMS))
    path = tmp_path / "cloud.db"
    c = make(path, clock)
    depot(c, "ams", AMS, "06:00", ["ams-van1"])
    add(c, "ams", day, AMS, 3)
    add(c, "ams", tomorrow, AMS, 3, first=10)
    run(started, c)
    assert quiet(c) == 0
    stop(started, c)  # down over the cut-off

    clock.set(day, "09:15", AMS)
    c = run(started, make(path, clock))
    wait_for(lambda: plans(c), timeout=60, message="the missed morning plan, on start")
    [made] = plans(c)
    assert made["region"] == f"ams/{day}"
    assert c.db.decision(made["decision_id"])["trigger"]["cutoff_at_ms"] == (
        local_instant(day, "06:00", AMS) * 1000
    )
    assert quiet(c) == 1
    stop(started, c)

    clock.set(day, "11:00", AMS)  # again the same day: nothing more
    c = run(started, make(path, clock))
    assert quiet(c) == 1
    stop(started, c)

    clock.set(tomorrow, "07:00", AMS)  # the next day: that day, never the one before again
    c = run(started, make(path, clock))
    wait_for(lambda: len(plans(c)) == 2, timeout=60)
    assert [p["region"] for p in plans(c)] == [f"ams/{day}", f"ams/{tomorrow}"]
    assert quiet(c) == 2


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value,expect",
    [
        ("timezone", "Mars/Olympus", "unknown IANA time zone 'Mars/Olympus'"),
        ("timezone", "../../etc/passwd", "is not an IANA time zone name"),
        ("timezone", "", "is not an IANA time zone name"),
        ("cutoff", "25:00", "cut-off '25:00' is not a local time HH:MM"),
        ("cutoff", "6am", "cut-off '6am' is not a local time HH:MM"),
    ],
)
def test_a_bad_zone_or_cutoff_is_refused_in_one_line_and_nothing_is_stored(
    tmp_path: Path, field: str, value: str, expect: str, caplog: pytest.LogCaptureFixture
) -> None:
    c = make(tmp_path / "cloud.db", Clock(0))
    try:
        with api_client(c) as api:
            body = {"depot_id": "bad", "lat": 52.0, "lon": 4.0, field: value}
            r = api.post("/v1/depots", json=body)
            assert r.status_code == 422, r.text
            error = r.json()["error"]
            assert error.startswith(f"depot 'bad': {field}: ") and expect in error
            assert "\n" not in error
            assert api.get("/v1/depots").json() == []
        assert any(expect in rec.getMessage() for rec in caplog.records)
    finally:
        c.stop()


@pytest.mark.parametrize(
    "kw,expect",
    [
        ({"default_timezone": "Nowhere/Else"}, "morning default_timezone: unknown IANA time zone"),
        ({"default_cutoff": "24:00"}, "morning default_cutoff: cut-off '24:00'"),
        ({"tick_s": 0}, "morning tick_s"),
    ],
)
def test_bad_schedule_settings_are_refused_naming_the_setting(
    kw: dict[str, Any], expect: str
) -> None:
    with pytest.raises(ValueError, match=expect):
        MorningSettings(**kw)
