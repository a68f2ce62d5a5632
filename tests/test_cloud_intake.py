"""Order intake over the REST API (idempotency and each bad input), files, and replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.errors import InvalidError
from cloud.geo import TravelModel
from cloud.intake import take_orders
from cloud.order_files import read_orders_file, solomon_orders
from tests.helpers import DATA_DIR
from tests.test_cloud_support import D0, DAY, DEPOT, add_orders, api_client, coordinator, network
from wayline.cli import main

SOLOMON = DATA_DIR / "solomon" / "C101.txt"


@pytest.fixture
def cloud(tmp_path: Path):
    c = coordinator(tmp_path / "cloud.db")
    network(c, ["van1", "van2"])
    yield c
    c.stop()


def test_orders_are_idempotent_by_the_callers_id(cloud) -> None:
    from tests.test_cloud_support import order

    with api_client(cloud) as api:
        first = api.post("/v1/orders", json=order(1))
        again = api.post("/v1/orders", json=order(1))
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        other = api.post("/v1/orders", json=order(1, service_s=999))
        assert other.status_code == 409 and "different body" in other.json()["error"]
        assert api.get("/v1/orders/dep1-o1").json()["status"] == "open"


@pytest.mark.parametrize(
    "change,expect",
    [
        ({"window": {"start": D0 + 50_000, "end": D0 + 40_000}}, "impossible window"),
        ({"window": {"start": D0 + 5 * 86_400, "end": D0 + 6 * 86_400}}, "impossible window"),
        ({"depot_id": "nowhere"}, "unknown depot 'nowhere'"),
        ({"size": -3}, "size"),
        ({"parcels": [{"parcel_id": "x", "barcode": "b", "weight_kg": -1}]}, "weight_kg"),
    ],
)
def test_bad_orders_get_a_clear_error_and_nothing_is_written(cloud, change, expect) -> None:
    from tests.test_cloud_support import order

    with api_client(cloud) as api:
        r = api.post("/v1/orders", json=order(7, **change))
        assert r.status_code == 422, r.text
        assert expect in r.json()["error"]
        assert api.get("/v1/orders/dep1-o7").status_code == 404


def test_a_batch_with_a_duplicate_id_writes_nothing(cloud) -> None:
    from tests.test_cloud_support import order

    with api_client(cloud) as api:
        r = api.post("/v1/orders/batch", json=[order(1), order(2), order(1)])
        assert r.status_code == 422 and "appears twice" in r.json()["error"]
        assert api.get("/v1/orders").json() == []


def test_no_capacity_left_marks_orders_unplanned_with_the_reason(tmp_path: Path) -> None:
    c = coordinator(tmp_path / "c.db")
    network(c, ["van1"], carrier_stops=0)
    with c.store.transaction() as conn:  # a van that can carry almost nothing
        c.db.put_vehicle(
            conn, "van1", "dep1-own",
            {"capacity": 4, "shift_start_s": 8 * 3600, "shift_end_s": 19 * 3600, "skills": []}, 0,
        )  # fmt: skip
        c.db.set_vehicle_status(conn, "dep1-bike", "broken", 0)
    add_orders(c, 3)
    [d] = c.dispatch.plan_day(DAY)
    assert d["status"] == "partial"
    reasons = {o["order_id"]: o["reason"] for o in c.db.orders_list(DAY, "unplanned", 10)}
    assert len(reasons) == 2 and set(reasons.values()) == {"no capacity"}
    c.stop()


def test_files_and_solomon_load_as_a_days_orders(cloud, tmp_path: Path) -> None:
    csv = tmp_path / "orders.csv"
    csv.write_text(
        "order_id,depot_id,day,lat,lon,window_start,window_end,barcode,weight_kg\n"
        f"f1,dep1,{DAY},52.36,4.88,{D0 + 32_400},{D0 + 50_000},F1,2\n"
    )
    js = tmp_path / "orders.json"
    js.write_text(json.dumps({"orders": [{"order_id": "j1", "depot_id": "dep1", "day": DAY,
                                         "lat": 52.38, "lon": 4.9}]}))  # fmt: skip
    got = read_orders_file(csv) + read_orders_file(js)
    assert [o.order_id for o in got] == ["f1", "j1"] and got[0].record()["size"] == 2
    bad = tmp_path / "bad.csv"
    bad.write_text(f"order_id,depot_id,day,lat,lon\nx,dep1,{DAY},north,4.9\n")
    with pytest.raises(InvalidError, match="row 2"):
        read_orders_file(bad)
    a = solomon_orders(SOLOMON, depot_id="dep1", depot=DEPOT, day=DAY, travel=TravelModel())
    b = solomon_orders(SOLOMON, depot_id="dep1", depot=DEPOT, day=DAY, travel=TravelModel())
    assert len(a) == 100 and a == b
    take_orders(cloud.store, cloud.db, a[:30], cloud.now_ms())
    assert len(cloud.db.orders_list(DAY, "open", 1000)) == 30


def test_recorded_plan_replays_to_the_same_plan(cloud, tmp_path: Path, capsys) -> None:
    add_orders(cloud, 12)
    [d] = cloud.dispatch.plan_day(DAY)
    cloud.stop()
    db = str(tmp_path / "cloud.db")
    assert main(["audit", "replay", d["decision_id"], "--db", db]) == 0
    assert "reproduced" in capsys.readouterr().out
    assert main(["audit", "replay", "dec-nope", "--db", db]) == 1
    cloud.__init__(cloud.settings, clock=cloud.clock)  # reopened for the fixture's stop
