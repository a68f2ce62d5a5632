"""A morning at the sorter's terminal in real Chromium: a few hundred parcels across several
vans, most typed into the scan field as a keyboard-wedge scanner does, the rest through the
API; bad input, another depot's parcel, an over-full van, a late re-sequence and a release."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.depot import ContainerSpec, DepotAgent, DepotSettings
from edge.depot.sample import OTHER_DEPOT, route_plan
from edge.depot.web import create_terminal_app
from protocol import RoutePlan, make_envelope
from tests.helpers import free_port, wait_for
from tests.paired import PAIRING_CODE, pair_client
from wayline.serve import HttpServer

SMALL = (ContainerSpec("BAG-1", "bag", 60.0, 25.0), ContainerSpec("CAGE-1", "cage", 150.0, 60.0))
THROUGH_PAGE = 220


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[tuple[DepotAgent, str]]:
    settings = DepotSettings(
        depot_id="depot-west",
        db_path=tmp_path / "depot.db",
        broker=None,
        vehicle_containers={"VAN-05": SMALL},
        pairing_code=PAIRING_CODE,
    )
    agent = DepotAgent(settings)
    server = HttpServer(create_terminal_app(agent), "127.0.0.1", free_port())
    server.start()
    try:
        yield agent, server.url
    finally:
        server.stop()
        agent.stop()


def give(agent: DepotAgent, *plans: RoutePlan) -> None:
    with agent.node.transaction() as tx:
        for i, plan in enumerate(plans, start=1):
            agent.apply(tx, "cloud", make_envelope(src="cloud", seq=i, lc=i, body=plan))


def scan_on_page(page: Any, raw: str, end: str = "Enter") -> None:
    """Type a read into the scan field like a keyboard-wedge scanner and wait for the answer."""
    done = int(page.evaluate("document.body.dataset.scans"))
    page.keyboard.insert_text(raw)
    page.keyboard.press(end)
    page.wait_for_function(f"document.body.dataset.scans === '{done + 1}'", timeout=5000)


def text(page: Any, testid: str) -> str:
    return str(page.get_by_test_id(testid).inner_text())


@pytest.mark.browser
def test_a_mornings_sort_at_the_terminal(page: Any, terminal: tuple[DepotAgent, str]) -> None:
    agent, url = terminal
    plans = [route_plan(v, 45, seed=3) for v in range(1, 5)]
    plans.append(route_plan(5, 25, seed=3, parcels_per_stop=(2, 2)))  # too much for SMALL
    give(agent, *plans, route_plan(9, 5, depot=OTHER_DEPOT))
    codes = [p.barcode for plan in plans for s in plan.stops for p in s.parcels]
    assert len(codes) > 300

    page.goto(url)
    # the terminal asks for the depot agent's pairing code once
    page.get_by_test_id("pairing").wait_for()
    page.fill("#pair-code", PAIRING_CODE)
    page.click("#pair-confirm")
    page.get_by_test_id("pairing").wait_for(state="hidden")
    page.wait_for_function("document.getElementById('vehicles').children.length === 5")
    assert page.evaluate("document.activeElement.id") == "scan"

    # most of the sort through the page, every few reads with scanner noise around the code
    for i, code in enumerate(codes[:THROUGH_PAGE]):
        if i % 10 == 3:
            scan_on_page(page, f"  {code}", end="Tab")  # a scanner that ends with Tab
        elif i % 10 == 7:
            scan_on_page(page, f"\x02{code.lower()}\x03")
        else:
            scan_on_page(page, code)
        if i % 25 == 0:
            row = agent.checklist(f"VAN-{code[2:4]}")["parcels"]
            slot = next(r for r in row if r["barcode"] == code)
            title = text(page, "dest-title")
            if slot["container"] == "OVERFLOW":
                assert "OVERFLOW" in title
            else:
                assert title == f"VAN-{code[2:4]} · {slot['container']} · #{slot['position']}"
            assert text(page, "dest-code") == code
    assert page.evaluate("document.activeElement.id") == "scan"
    # the rest through the terminal's API, as a second scanner on the same agent would
    with httpx.Client(base_url=url) as client:
        pair_client(client, PAIRING_CODE)
        for code in codes[THROUGH_PAGE:]:
            assert client.post("/api/scan", json={"code": code}).json()["result"] == "ok"

    # colour per container, readable from afar: two containers look different
    scan_on_page(page, codes[0])  # VAN-01, first stop: the door container
    assert page.get_by_test_id("dest").get_attribute("data-colour") == "0"
    door = page.evaluate("getComputedStyle(document.getElementById('dest')).backgroundColor")
    deep = next(c for c in codes if agent.scan(c)["container"] == "CAGE-1")
    scan_on_page(page, deep)
    assert (
        page.evaluate("getComputedStyle(document.getElementById('dest')).backgroundColor") != door
    )
    size = page.evaluate(
        "parseFloat(getComputedStyle(document.getElementById('dest-title')).fontSize)"
    )
    assert size >= 48

    # bad input: a clear message, the field keeps focus, nothing is lost
    scan_on_page(page, "WL01??##")
    assert text(page, "dest-title") == "NOT A BARCODE"
    assert "not a parcel barcode" in text(page, "dest-action")
    page.get_by_test_id("depot").click()
    page.wait_for_function("document.activeElement.id === 'scan'", timeout=2000)
    scan_on_page(page, "WL090011")
    assert text(page, "dest-title") == "OTHER DEPOT"
    assert "Rotterdam-Zuid" in text(page, "dest-action")
    van5 = [c for c in codes if c.startswith("WL05")]
    scan_on_page(page, van5[-1])
    assert "OVERFLOW" in text(page, "dest-title")
    page.wait_for_function(
        "[...document.querySelectorAll('#exceptions li')].map(l => l.dataset.category)"
        ".includes('misrouted_parcel')"
    )
    shown = page.evaluate(
        "[...document.querySelectorAll('#exceptions li')].map(l => l.dataset.category)"
    )
    assert {"misrouted_parcel", "container_overflow"} <= set(shown)
    wait_for(lambda: " 0 missing" in text(page, "progress-VAN-01"), message="VAN-01 complete")

    # a late re-sequence of VAN-02: only the parcels that must move are listed
    order = [*range(1, 30), 31, 30, *range(32, 46)]
    give(agent, route_plan(2, 45, seed=3, version=2, skip=frozenset({12}), order=order))
    resorts = agent.book.open_resorts()
    assert 0 < len(resorts) <= 6, resorts  # stop 12's parcels and one side of the swap
    page.wait_for_function(f"document.querySelectorAll('#resorts li').length === {len(resorts)}")
    move = next(r for r in resorts if r["kind"] == "reorder")
    scan_on_page(page, move["barcode"])
    assert text(page, "dest-title").startswith("RE-SORT")
    pull = next(r for r in resorts if r["kind"] == "pull")
    scan_on_page(page, pull["barcode"])
    assert text(page, "dest-title") == "CANCELLED"
    assert "returns" in text(page, "dest-action")

    # release VAN-01 from the terminal: everything is there
    page.get_by_test_id("release-VAN-01").click()
    page.wait_for_function("document.getElementById('dest').dataset.result === 'released'")
    assert text(page, "dest-title") == "VAN-01 READY"
    bodies = agent.store.read("SELECT kind, count(*) FROM sync_outbox GROUP BY kind")
    counts = {k: n for k, n in bodies}
    van1 = [c for c in codes if c.startswith("WL01")]
    assert counts["parcel_scan"] > len(codes) + len(van1)  # every scan, and VAN-01's loads
    assert counts["exception"] >= 3
