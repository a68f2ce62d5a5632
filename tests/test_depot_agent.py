"""The depot agent on its own (no broker): plans, the scan flow, bad input, release, the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.depot import ContainerSpec, DepotAgent, DepotSettings
from edge.depot.sample import OTHER_DEPOT, morning, route_plan
from edge.depot.web import create_terminal_app
from edge.errors import BarcodeError, ReleaseError
from protocol import RoutePlan, decode, make_envelope
from sync import Rejected
from tests.helpers import free_port
from tests.paired import code_of, pair_client
from wayline.serve import HttpServer

SMALL = (
    ContainerSpec("BAG-1", "bag", 60.0, 25.0),
    ContainerSpec("CAGE-1", "cage", 200.0, 80.0),
)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[DepotAgent]:
    a = DepotAgent(DepotSettings(depot_id="depot-w", db_path=tmp_path / "depot.db", broker=None))
    yield a
    a.stop()


def give(agent: DepotAgent, *plans: RoutePlan) -> None:
    """The cloud's copies of the vehicles' plans, as the sync handler applies them."""
    with agent.node.transaction() as tx:
        for i, plan in enumerate(plans, start=1):
            env = make_envelope(src="cloud", seq=i, lc=i, body=plan)
            agent.apply(tx, "cloud", env)


def outbox(agent: DepotAgent) -> list[Any]:
    rows = agent.store.read("SELECT payload FROM sync_outbox ORDER BY seq")
    return [decode(r[0]).body for r in rows]


def test_a_scan_shows_the_destination_and_reports_the_load_position(agent: DepotAgent) -> None:
    give(agent, *morning(3, 10))
    out = agent.scan("WL020011")
    assert out["result"] == "ok" and out["tone"] == "ok"
    assert (out["vehicle_id"], out["container"], out["position"]) == ("VAN-02", "BAG-1", 1)
    assert out["title"] == "VAN-02 · BAG-1 · #1"
    scan = outbox(agent)[-1]
    assert scan.result == "ok" and scan.depot_id == "depot-w"
    assert (scan.vehicle_id, scan.container, scan.position) == ("VAN-02", "BAG-1", 1)


def test_an_older_plan_is_refused(agent: DepotAgent) -> None:
    give(agent, route_plan(1, 5, version=3))
    with pytest.raises(Rejected, match="not newer"):
        give(agent, route_plan(1, 5, version=2))
    with pytest.raises(Rejected, match="does not take"), agent.node.transaction() as tx:
        agent.apply(tx, "cloud", make_envelope(src="cloud", seq=9, lc=9, body=outbox_scan()))


def outbox_scan() -> Any:
    from protocol import ParcelScan

    return ParcelScan(scan_id="x1", barcode="B", at=1, result="ok")


def test_every_problem_is_flagged_recorded_and_reported(agent: DepotAgent) -> None:
    give(agent, route_plan(1, 10), route_plan(7, 4, depot=OTHER_DEPOT))
    agent.scan("WL010011")
    dup = agent.scan("WL010011")
    assert dup["result"] == "duplicate" and "Already sorted" in dup["title"]
    wrong = agent.scan("C:VAN-01:CAGE-1")
    assert wrong["result"] == "wrong_container" and "BAG-1" in wrong["action"]
    right = agent.scan("C:VAN-01:BAG-1")
    assert right["result"] == "confirmed"  # taken out and put in the right one
    assert agent.scan("C:VAN-01:BAG-1")["result"] == "label"  # nothing awaits a label now
    unknown = agent.scan("XX999")
    assert unknown["result"] == "unknown" and "problem shelf" in unknown["action"]
    other = agent.scan("WL070011")
    assert other["result"] == "other_depot" and "Rotterdam-Zuid" in other["action"]
    give(agent, route_plan(1, 10, version=2, skip=frozenset({5})))
    cancelled = agent.scan("WL010051")
    assert cancelled["result"] == "cancelled" and "returns" in cancelled["action"]
    agent.scan("XX999")  # the same unknown parcel again: no second exception
    bodies = outbox(agent)
    results = [b.result for b in bodies if hasattr(b, "result")]
    assert results == [
        "ok",
        "duplicate",
        "wrong_container",
        "unknown",
        "other_depot",
        "cancelled",
        "unknown",
    ]
    categories = [b.category for b in bodies if hasattr(b, "category")]
    assert categories == ["unknown_parcel", "misrouted_parcel", "cancelled_parcel"]
    recorded = {r["result"] for r in agent.book.recent_scans(20)}
    assert {"ok", "duplicate", "wrong_container", "unknown", "other_depot", "cancelled"} <= recorded
    assert {x["category"] for x in agent.book.open_exceptions()} == {
        "unknown_parcel",
        "misrouted_parcel",
        "cancelled_parcel",
    }


def test_junk_is_refused_and_recorded_locally_without_a_message(agent: DepotAgent) -> None:
    give(agent, route_plan(1, 3))
    before = agent.node.pending()
    with pytest.raises(BarcodeError, match="not a parcel barcode"):
        agent.scan("WL01%%0011")
    assert agent.node.pending() == before
    assert agent.book.recent_scans(1)[0]["result"] == "invalid"
    assert agent.scan("\x02 wl010011 \r\n")["result"] == "ok"  # stray characters, caps lock


def test_late_resequence_resorts_only_what_must_move(agent: DepotAgent) -> None:
    give(agent, route_plan(1, 20))
    codes = [p.barcode for s in route_plan(1, 20).stops for p in s.parcels]
    for code in codes:
        assert agent.scan(code)["result"] == "ok"
    # v2: stop 4 cancelled, stops 10 and 11 swapped, stop 21 added
    order = [*range(1, 10), 11, 10, *range(12, 22)]
    give(agent, route_plan(1, 21, version=2, skip=frozenset({4}), order=order))
    resorts = agent.book.open_resorts()
    pulled = {r["barcode"] for r in resorts if r["kind"] == "pull"}
    assert pulled == {c for c in codes if c.startswith("WL01004")}
    reordered = {r["barcode"] for r in resorts if r["kind"] == "reorder"}
    assert reordered and all(c[4:7] in ("010", "011") for c in reordered)
    assert len(resorts) == len(pulled) + len(reordered)
    # doing the re-sort: scanning a parcel with an instruction completes it
    code = sorted(reordered)[0]
    done = agent.scan(code)
    assert done["result"] == "ok" and done["resort"] and done["title"].startswith("RE-SORT")
    assert code not in {r["barcode"] for r in agent.book.open_resorts()}


def test_plan_over_capacity_goes_to_overflow_with_an_exception(tmp_path: Path) -> None:
    settings = DepotSettings(
        depot_id="depot-s",
        db_path=tmp_path / "d.db",
        broker=None,
        vehicle_containers={"VAN-01": SMALL},
    )
    agent = DepotAgent(settings)
    try:
        plan = route_plan(1, 30, parcels_per_stop=(2, 2))
        give(agent, plan)
        sent = [b for b in outbox(agent) if getattr(b, "category", "") == "container_overflow"]
        assert len(sent) == 1 and sent[0].vehicle_id == "VAN-01"
        assert sent[0].data["parcels"] > 0 and "OVERFLOW" in sent[0].detail
        last = plan.stops[-1].parcels[-1].barcode
        out = agent.scan(last)
        assert out["container"] == "OVERFLOW" and "overflow shelf" in out["action"]
        assert out["tone"] == "warn" and out["colour"] == -1
        status = agent.status()
        assert status["vehicles"][0]["overflow"] == sent[0].data["parcels"]
        assert any(x["category"] == "container_overflow" for x in status["exceptions"])
    finally:
        agent.stop()


def test_release_checklist_missing_parcels_and_ready_to_depart(agent: DepotAgent) -> None:
    plan = route_plan(3, 6)
    give(agent, plan)
    codes = [p.barcode for s in plan.stops for p in s.parcels]
    for code in codes[:-2]:
        agent.scan(code)
    check = agent.checklist("VAN-03")
    assert check["missing"] == 2 and check["sorted"] == len(codes) - 2
    with pytest.raises(ReleaseError, match="2 parcels missing"):
        agent.release("VAN-03")
    done = agent.release("VAN-03", force=True)
    assert done["missing"] == codes[-2:] and done["loaded"] == len(codes) - 2
    bodies = outbox(agent)
    loaded = [b for b in bodies if getattr(b, "result", "") == "loaded"]
    assert len(loaded) == len(codes) - 2
    assert sorted(b.position for b in loaded) == list(range(1, len(codes) - 1))
    tail = [b.category for b in bodies if hasattr(b, "category")]
    assert tail == ["missing_parcel", "missing_parcel", "ready_to_depart"]
    ready = bodies[-1]
    assert ready.severity == "info" and ready.data["missing"] == 2 and ready.data["forced"]
    with pytest.raises(ReleaseError, match="already released"):
        agent.release("VAN-03", force=True)


def test_the_terminal_api(agent: DepotAgent) -> None:
    give(agent, route_plan(1, 4))
    app = create_terminal_app(agent)
    server = HttpServer(app, "127.0.0.1", free_port())
    server.start()
    try:
        with httpx.Client(base_url=server.url) as client:
            _api(pair_client(client, code_of(app)))
    finally:
        server.stop()


def _api(client: httpx.Client) -> None:
    r = client.post("/api/scan", json={"code": "WL010011\n"})
    assert r.status_code == 200 and r.json()["container"] == "BAG-1"
    r = client.post("/api/scan", json={"code": "WL01#0011"})
    assert r.status_code == 422 and "not a parcel barcode" in r.json()["error"]
    r = client.post("/api/scan", json={"barcode": "x"})
    assert r.status_code == 422 and "error" in r.json()
    assert client.get("/api/vehicles/NOPE/checklist").status_code == 404
    r = client.post("/api/vehicles/VAN-01/release", json={"force": False})
    assert r.status_code == 409 and "missing" in r.json()["error"]
    status = client.get("/api/status").json()
    assert status["vehicles"][0]["sorted"] == 1 and status["depot_id"] == "depot-w"
    page = client.get("/")
    assert page.status_code == 200 and 'id="scan"' in page.text
    for asset in ("app.js", "app.css"):
        assert client.get(f"/{asset}").status_code == 200
    assert "http" not in page.text.replace("http-equiv", ""), "every asset is local"
