"""The coordinator end to end on a real broker with real vehicle agents: a carrier goes
down mid-day, and a stop delivered offline by one van while the cloud gave it to another."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.decisions import replay
from edge.vehicle import VehicleAgent, VehicleSettings
from sync import parse_broker_url
from tests.helpers import MosquittoBroker, unique_id, wait_for
from tests.test_cloud_support import (
    DAY,
    FAST,
    add_orders,
    api_client,
    assigned_to,
    coordinator,
    network,
)

pytestmark = pytest.mark.broker


@pytest.fixture
def fleet(tmp_path: Path, mosquitto: MosquittoBroker):
    vans = [unique_id("van"), unique_id("van")]
    c = coordinator(tmp_path / "cloud.db", parse_broker_url(mosquitto.url))
    agents: dict[str, VehicleAgent] = {}

    def start_agent(vid: str, online: bool = True) -> VehicleAgent:
        settings = VehicleSettings(
            vehicle_id=vid,
            db_path=tmp_path / f"{vid}.db",
            broker=parse_broker_url(mosquitto.url) if online else None,
            sync=FAST,
        )
        agent = VehicleAgent(settings)
        agent.start()
        agents[vid] = agent
        return agent

    def stop_agent(vid: str) -> None:
        agents.pop(vid).stop()

    c.start()
    yield c, vans, start_agent, stop_agent
    for vid in list(agents):
        stop_agent(vid)
    c.stop()


def version_of(agent: VehicleAgent) -> int:
    route = agent.book.route()
    return int(route["version"]) if route else 0


def test_carrier_outage_moves_its_open_orders_and_vans_get_new_versions(fleet) -> None:
    c, vans, start_agent, _ = fleet
    network(c, vans, carrier_price=20, carrier_stops=6)
    add_orders(c, 16)
    morning = c.dispatch.plan_day(DAY)
    assert [m["status"] for m in morning] == ["complete"]
    carrier_orders = assigned_to(c, "dep1-3pl")
    assert carrier_orders, "the cheap carrier should take some orders in the morning plan"
    agents = {v: start_agent(v) for v in vans}
    for v, version in morning[0]["versions"].items():
        wait_for(lambda v=v, version=version: version_of(agents[v]) == version, timeout=20)

    with api_client(c) as api:
        r = api.post("/v1/fleets/dep1-3pl/outage", json={"day": DAY})
        report = api.post(f"/v1/decisions/{r.json()['rebalanced'][0]['decision_id']}/replay")
    assert r.status_code == 200, r.text
    [rebalance] = r.json()["rebalanced"]
    assert rebalance["kind"] == "rebalance" and rebalance["status"] == "complete"
    assert set(carrier_orders) <= set(rebalance["moved"])
    assert assigned_to(c, "dep1-3pl") == []
    for oid in carrier_orders:
        a = c.db.assignment(oid)
        assert a is not None and a["vehicle_id"] != "dep1-3pl"
    # the vans that took them got a new version, over the broker, through the real agent
    assert rebalance["versions"], "some van must get a new plan version"
    for v, version in rebalance["versions"].items():
        assert version >= 2
        wait_for(lambda v=v, version=version: version_of(agents[v]) == version, timeout=20)
        got = {s.order_id for s in agents[v].book.remaining()}
        assert got == set(assigned_to(c, v))
    # recorded with its trigger and inputs, and it replays
    d = c.db.decision(rebalance["decision_id"])
    outage = {"kind": "outage", "subject": "dep1-3pl", "detail": {"fleet": "3pl"}}
    assert outage in d["trigger"]["events"]
    assert all(v["id"] != "dep1-3pl" for v in d["inputs"]["vehicles"])
    assert d["solver"] == "pyvrp" and d["seed"] == 3 and d["approved_by"] == "policy:rebalance"
    assert report.json()["reproduced"], report.json()["differences"]


def test_stop_delivered_offline_while_reassigned_fact_wins(fleet) -> None:
    c, vans, start_agent, stop_agent = fleet
    a_id, b_id = vans
    network(c, vans, carrier_stops=0)
    add_orders(c, 10)
    c.dispatch.plan_day(DAY)
    on_a = assigned_to(c, a_id)
    if not on_a:  # the solver put everything on one van: move one stop over first
        c.dispatch.reassign([assigned_to(c, b_id)[0]], a_id, "ops:test")
        on_a = assigned_to(c, a_id)
    stop = on_a[0]
    a, b = start_agent(a_id), start_agent(b_id)
    wait_for(lambda: a.book.stop(stop) is not None and not a.book.stop(stop).removed, timeout=20)
    wait_for(lambda: version_of(b) >= 1 or not assigned_to(c, b_id), timeout=20)
    stop_agent(a_id)  # van A loses its network

    moved = c.dispatch.reassign([stop], b_id, "ops:dispatcher")
    assert b_id in moved["versions"] and moved["handover"] == []
    b_version = moved["versions"][b_id]
    wait_for(lambda: version_of(b) == b_version and b.book.stop(stop) is not None, timeout=20)

    offline = start_agent(a_id, online=False)  # the driver delivers it anyway, offline
    offline.deliver(stop, recipient="Ms Jansen")
    stop_agent(a_id)
    a = start_agent(a_id)  # back online: the fact syncs

    wait_for(lambda: c.db.order(stop)["status"] == "delivered", timeout=20)
    wait_for(lambda: version_of(b) == b_version + 1, timeout=20)
    assert b.book.stop(stop).removed, "van B's new version no longer lists the stop"
    row = c.db.order(stop)
    assert row["done_by"] == a_id
    assert c.db.assignment(stop)["vehicle_id"] == a_id
    [d] = [x for x in c.db.decisions("repair", 50) if x["rule"] == "fact_elsewhere"]
    record = c.db.decision(d["decision_id"])
    assert record["output"]["remove_from"] == b_id
    assert record["applied"]["versions"] == {b_id: b_version + 1}
    assert replay(c.db, d["decision_id"])["reproduced"]
    # van A keeps its fact: the stop stays delivered there
    wait_for(lambda: a.book.stop(stop).status == "delivered", timeout=10)
