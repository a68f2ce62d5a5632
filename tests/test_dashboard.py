"""The ops dashboard in real Chromium: log in, see a vehicle move, approve an escalation and
see what it carried out, mark the task it gave done."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud import create_api
from cloud.api_access import DEV_USER
from protocol import Telemetry
from tests.helpers import free_port
from tests.test_cloud_support import D0, add_orders, network
from tests.test_ops_flow import feed, make, report
from wayline.serve import HttpServer

pytestmark = pytest.mark.browser


def telemetry(at_s: float, lat: float, lon: float) -> Telemetry:
    return Telemetry(
        at=int(at_s * 1000), lat=lat, lon=lon, speed_kmh=30.0, heading_deg=90.0,
        odometer_km=1000.0, door_open=False, ignition=True,
    )  # fmt: skip


def test_log_in_see_a_vehicle_move_and_approve_an_escalation(tmp_path: Path, page) -> None:
    c = make(tmp_path / "cloud.db")
    server = HttpServer(create_api(c), "127.0.0.1", free_port())
    server.start()
    try:
        network(c, ["van-a", "van-b"])
        orders = add_orders(c, 4)
        feed(c, "van-a", telemetry(D0 + 8 * 3600, 52.370, 4.880))
        feed(c, "van-b", telemetry(D0 + 8 * 3600, 52.380, 4.900))
        t = int((D0 + 8 * 3600) * 1000)
        feed(c, "van-a", report("cold-1", "temperature_excursion", t, "critical",
                                stop_id=orders[0], data={"degrees_over": 3.0}))  # fmt: skip
        feed(c, "van-b", report("dup-1", "duplicate", int((D0 + 8 * 3600) * 1000)))
        [item] = c.db.exception_items(queue=True)

        page.goto(f"{server.url}/dashboard")
        assert page.url.endswith("/dashboard/login")
        page.fill("#username", DEV_USER[0])
        page.fill("#password", "wrong")
        page.click("#login-button")
        page.wait_for_selector("#login-error")
        page.fill("#username", DEV_USER[0])
        page.fill("#password", DEV_USER[1])
        page.click("#login-button")
        page.wait_for_url(f"{server.url}/dashboard")

        van = page.locator('#map g.vehicle[data-vehicle="van-a"]')
        van.wait_for()
        assert van.get_attribute("data-lat") == "52.37"
        row = page.locator('#vehicles tr[data-vehicle="van-a"] td.position')
        assert row.inner_text() == "52.37000, 4.88000"
        (tmp_path / "before.png").write_bytes(page.screenshot())

        feed(c, "van-a", telemetry(D0 + 8 * 3600 + 60, 52.375, 4.895))  # the van drives on
        page.wait_for_function(
            "document.querySelector('#map g.vehicle[data-vehicle=\"van-a\"]')"
            ".getAttribute('data-lat') === '52.375'",
            timeout=10_000,
        )
        assert row.inner_text() == "52.37500, 4.89500"

        queued = page.locator(f'#queue tr[data-item="{item["item_id"]}"]')
        queued.wait_for()
        assert "temperature_excursion" in queued.inner_text()
        (tmp_path / "dashboard.png").write_bytes(page.screenshot(full_page=True))
        queued.locator("button.approve").click()
        queued.wait_for(state="detached", timeout=10_000)
        page.wait_for_selector("#queue-empty:not([hidden])")

        page.fill("#decision-search", "ops:")
        decided = page.locator("#decisions tbody tr")
        decided.first.wait_for()
        page.wait_for_function(
            "[...document.querySelectorAll('#decisions tbody tr')].length === 1", timeout=10_000
        )
        text = decided.first.inner_text()
        assert "ops:ops" in text and "approved" in text
        assert c.db.exception_item(item["item_id"])["status"] == "approved"

        # what the approval carried out: an instruction for ops staff, shown with its outcome
        done = page.locator(f'#actions tr[data-item="{item["item_id"]}"][data-status="done"]')
        done.wait_for(timeout=10_000)
        outcome = done.locator("td.outcome").inner_text()
        assert "Bring the parcel back for inspection" in outcome and orders[0] in outcome
        [task] = c.db.tasks("open")
        row = page.locator(f'#tasks tr[data-task="{task["task_id"]}"]')
        row.wait_for()
        (tmp_path / "carried-out.png").write_bytes(page.screenshot(full_page=True))
        row.locator("button.done").click()
        row.wait_for(state="detached", timeout=10_000)
        page.wait_for_selector("#tasks-empty:not([hidden])")
        assert c.db.task(task["task_id"])["done_by"] == "ops:ops"
    finally:
        page.context.close()  # Chromium's keep-alive connections would hold the server open
        server.stop()
        c.stop()
