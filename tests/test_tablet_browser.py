"""The driver's tablet in real Chromium, on a phone-sized screen, against a real agent.

The agent has a real SQLite store and receives a real route plan through its sync ingest;
there is no broker, so the van is offline the whole time and every fact waits in the outbox.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.tablet_api import create_tablet_app
from edge.vehicle import VehicleAgent, VehicleSettings
from tests.helpers import free_port, unique_id, wait_for
from tests.paired import PAIRING_CODE
from tests.support import feed_plan, make_plan, tiny_png
from wayline.serve import HttpServer

pytestmark = pytest.mark.browser

PHONE = {"width": 412, "height": 915}


@pytest.fixture
def tablet(tmp_path: Path) -> Iterator[tuple[VehicleAgent, str]]:
    van = unique_id("van")
    settings = VehicleSettings(
        vehicle_id=van, db_path=tmp_path / "van.db", broker=None, pairing_code=PAIRING_CODE
    )
    agent = VehicleAgent(settings)
    agent.start()
    server = HttpServer(create_tablet_app(agent), "127.0.0.1", free_port())
    try:
        feed_plan(agent, make_plan(van, 6), seq=1)
        wait_for(lambda: agent.book.route() is not None, message="the plan applied")
        server.start()
        yield agent, server.url
    finally:
        server.stop()
        agent.stop()


def stop_events(agent: VehicleAgent, stop_id: str) -> list[dict[str, Any]]:
    rows = agent.store.read(
        "SELECT event_id, type, reason, recipient, photo_sha256, barcodes, signature_svg "
        "FROM stop_events WHERE stop_id = ?",
        (stop_id,),
    )
    keys = ("event_id", "type", "reason", "recipient", "photo", "barcodes", "signature")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def png_file(name: str, data: bytes) -> dict[str, Any]:
    """A file for an <input type=file>, given as bytes (no file read on Playwright's loop)."""
    return {"name": name, "mimeType": "image/png", "buffer": data}


def screenshot(page: Any, path: Path, *, full_page: bool = False) -> None:
    """Written here, not by Playwright: its file writes leave an executor thread behind."""
    path.write_bytes(page.screenshot(full_page=full_page))


def pending_shown(page: Any) -> int:
    return int(page.get_by_test_id("pending").inner_text().removesuffix(" to sync"))


def next_id(page: Any) -> str:
    return page.get_attribute("[data-testid=next]", "data-stop-id")


def pair_page(page: Any, code: str = PAIRING_CODE) -> None:
    """The tablet asks for the gateway's pairing code once; the driver types it."""
    page.get_by_test_id("pairing").wait_for()
    page.fill("#pair-code", code)
    page.click("#pair-confirm")
    page.get_by_test_id("pairing").wait_for(state="hidden")


def test_a_whole_route_on_the_tablet(tablet, page, tmp_path: Path) -> None:
    agent, url = tablet
    page.set_viewport_size(PHONE)
    page.goto(url)
    banner = page.get_by_test_id("banner")

    # not paired yet: the tablet asks for the gateway's code; a wrong one is refused
    page.get_by_test_id("pairing").wait_for()
    page.fill("#pair-code", "00000000")
    page.click("#pair-confirm")
    page.get_by_test_id("pair-error").filter(has_text="wrong pairing code").wait_for()
    pair_page(page)

    # the route shows: next stop prominent, the list in order, offline and waiting to sync
    first = agent.status()["next"]
    page.get_by_test_id("next-address").filter(has_text=first["address"]).wait_for()
    assert page.locator("#remaining li").count() == 6
    assert page.get_by_test_id("conn").inner_text() == "Offline"
    assert "BC00000" in page.get_by_test_id("next").inner_text()
    wait_for(lambda: pending_shown(page) == agent.node.pending(), message="the pending count")

    # deliver with recipient, a drawn signature, a photo and a scanned barcode
    page.click("#btn-deliver")
    page.fill("#recipient", "Ada Meyer")
    box = page.locator("#signature").bounding_box()
    page.mouse.move(box["x"] + 30, box["y"] + 120)
    page.mouse.down()
    for i in range(1, 12):
        page.mouse.move(box["x"] + 30 + 20 * i, box["y"] + 120 - (40 if i % 2 else 0), steps=3)
    page.mouse.up()
    page.set_input_files("#photo", png_file("door.png", tiny_png()))
    page.fill("#barcode", first["parcels"][0]["barcode"])
    page.press("#barcode", "Enter")  # what a keyboard-wedge scanner sends
    assert page.get_by_test_id("barcodes").inner_text().startswith("✓")
    screenshot(page, tmp_path / "deliver-sheet.png")
    page.click("#deliver-confirm")
    banner.filter(has_text="Delivered").wait_for()
    (event,) = stop_events(agent, first["stop_id"])
    assert event["type"] == "delivered" and event["recipient"] == "Ada Meyer"
    assert event["signature"].startswith("M") and event["signature"].count("L") >= 10
    assert json.loads(event["barcodes"]) == [first["parcels"][0]["barcode"]]
    assert event["photo"] == hashlib.sha256(tiny_png()).hexdigest()
    page.locator("#done li").filter(has_text="Delivered").wait_for(state="attached")
    assert page.locator("#remaining li").count() == 5

    # fail the next one with a reason; the first answer is lost on the way back, the tablet
    # retries with the same event id and the stop fails once
    failing = next_id(page)
    lost: list[str] = []

    def lose_answer(route: Any) -> None:
        if not lost:
            route.fetch()  # the gateway records it ...
            lost.append(route.request.post_data or "")
            route.abort()  # ... and the answer never arrives
        else:
            route.continue_()

    page.route("**/fail", lose_answer)
    page.click("#btn-fail")
    page.click("button[data-reason=absent]")
    banner.filter(has_text="Failed").wait_for()
    page.unroute("**/fail")
    (event,) = stop_events(agent, failing)
    assert (event["type"], event["reason"]) == ("failed", "absent")
    assert json.loads(lost[0])["event_id"] == event["event_id"]

    # the driver chooses the last stop in the list as the next one
    last = page.locator("#remaining li").last.get_attribute("data-stop-id")
    page.locator(f"#remaining li[data-stop-id={last}] button", has_text="Next").click()
    wait_for(lambda: next_id(page) == last, message="the chosen stop shows as next")
    assert "chosen by you" in page.get_by_test_id("next").text_content()
    assert "null" not in page.get_by_test_id("next").text_content()

    # move the third stop up to second, with a reason
    third = page.locator("#remaining li").nth(2).get_attribute("data-stop-id")
    page.locator(f"#remaining li[data-stop-id={third}] button[aria-label='Move up']").click()
    page.click("button.quick-reason:has-text('Parking')")
    page.click("#move-confirm")
    banner.filter(has_text="Moved").wait_for()
    wait_for(lambda: page.locator("#remaining li").nth(1).get_attribute("data-stop-id") == third)
    assert "Moved: Parking" in page.locator("#remaining li").nth(1).inner_text()
    assert next_id(page) == last

    # the break
    page.click("#btn-break")
    banner.filter(has_text="Break recorded").wait_for()
    page.locator("#btn-break", has_text="Break taken").wait_for()
    assert page.locator("#btn-break").is_disabled()
    assert agent.book.route()["break_taken_at"] is not None

    # bad actions get a clear banner and change nothing: a photo that is not an image ...
    before = (agent.status()["counts"], agent.node.pending())
    page.click("#btn-deliver")
    page.set_input_files("#photo", png_file("notes.png", b"this is not a picture at all"))
    page.click("#deliver-confirm")
    banner.filter(has_text="Check the details").wait_for()
    assert "not a JPEG, PNG" in banner.inner_text()
    assert (agent.status()["counts"], agent.node.pending()) == before
    page.click(".sheet:not([hidden]) .sheet-cancel")
    page.click("#banner-close")

    # ... and a stop somebody else finished while the sheet was open
    page.click("#btn-deliver")
    taken = next_id(page)
    agent.deliver(taken, recipient="Neighbour")
    page.click("#deliver-confirm")
    banner.filter(has_text="Already done").wait_for()
    page.click(".sheet:not([hidden]) .sheet-cancel")
    assert len(stop_events(agent, taken)) == 1

    # the rest of the route, each delivered from the bottom bar
    while agent.status()["next"] is not None:
        sid = agent.status()["next"]["stop_id"]
        wait_for(lambda sid=sid: next_id(page) == sid, message=f"{sid} shown as next")
        page.click("#btn-deliver")
        page.fill("#recipient", f"Recipient of {sid}")
        page.click("#deliver-confirm")
        wait_for(lambda sid=sid: agent.book.stop(sid).final, message=f"{sid} delivered")
        page.locator("#sheet-deliver").wait_for(state="hidden")
    page.get_by_test_id("next").filter(has_text="All stops done").wait_for()
    assert page.locator("#done li").count() == 6
    assert page.locator("#btn-deliver").is_disabled()
    counts = agent.status()["counts"]
    assert counts == {"delivered": 5, "failed": 1}
    wait_for(lambda: pending_shown(page) == agent.node.pending(), message="the pending count")
    assert agent.node.pending() > 6
    screenshot(page, tmp_path / "done.png", full_page=True)


def test_layout_for_a_phone(tablet, page, tmp_path: Path) -> None:
    """Touch targets of 48 px or more; the primary actions sit at the bottom of the screen."""
    _agent, url = tablet
    page.set_viewport_size(PHONE)
    page.goto(url)
    pair_page(page)
    page.locator("#remaining li").first.wait_for()
    screenshot(page, tmp_path / "route.png")
    small = page.evaluate(
        """() => [...document.querySelectorAll('button:not([disabled]), .btn')]
            .filter(b => b.offsetParent !== null)
            .map(b => [b.textContent.trim() || b.getAttribute('aria-label'),
                       b.getBoundingClientRect().height, b.getBoundingClientRect().width])
            .filter(([, h, w]) => h < 48 || w < 48)"""
    )
    assert small == []
    deliver = page.locator("#btn-deliver").bounding_box()
    assert deliver["y"] + deliver["height"] > PHONE["height"] - 100
    assert deliver["height"] >= 64
