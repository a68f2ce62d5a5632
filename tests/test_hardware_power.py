"""A gateway process on simulated hardware loses its power mid-delivery; nothing is lost."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud import Coordinator
from firmware_sim.hardware import GatewayProcess
from tests.helpers import MosquittoBroker, unique_id, wait_for
from tests.support import assert_contiguous, cloud_log, make_plan, tiny_png

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


def deliver(gw: GatewayProcess, stop_id: str, event_id: str) -> tuple[int, dict[str, Any]]:
    r = httpx.post(
        f"{gw.url}/api/stops/{stop_id}/deliver",
        data={"event_id": event_id, "recipient": "At the door"},
        files={"photo": ("door.png", tiny_png(), "image/png")},
        headers=gw.auth,  # the tablet paired with the gateway
        timeout=30,
    )
    return r.status_code, r.json()


def test_power_cut_during_a_delivery_loses_nothing(
    broker: MosquittoBroker,
    cloud: Coordinator,
    tmp_path: Path,
) -> None:
    van = unique_id("van")
    gw = GatewayProcess(
        van,
        broker_url=broker.url,
        db=tmp_path / "van.db",
        log=tmp_path / "van.log",
        period_s=0.1,
        extra=["--fast-sync", "--speed", "30", "--garbage-every", "5", "--clock-offset", "-40"],
    )
    plan = make_plan(van, 5)
    event_ids = {s.stop_id: uuid.uuid4().hex for s in plan.stops}
    try:
        gw.start()
        cloud.send_plan(plan)
        wait_for(lambda: gw.status()["route"] is not None, timeout=30, interval=0.1)
        sid = gw.status()["next"]["stop_id"]
        assert deliver(gw, sid, event_ids[sid])[0] == 200

        in_doubt = gw.status()["next"]["stop_id"]
        answers = gw.power_cut_during(lambda: deliver(gw, in_doubt, event_ids[in_doubt]), 0.05)
        assert len(answers) == 1 and gw.power_cuts == 1 and not gw.running

        gw.start()  # power back
        code, body = deliver(gw, in_doubt, event_ids[in_doubt])  # the driver taps again
        assert code == 200
        assert [s["stop_id"] for s in body["done"]].count(in_doubt) == 1
        while (nxt := gw.status()["next"]) is not None:
            assert deliver(gw, nxt["stop_id"], event_ids[nxt["stop_id"]])[0] == 200
        state = wait_for(lambda: (s := gw.sim_state())["reader"]["samples"] >= 3 and s, timeout=20)
        assert state["gnss"]["bad_checksum"] + state["gnss"]["garbage"] > 0  # noise, skipped
        assert state["clock_error_s"] == pytest.approx(-40, abs=1)
        assert state["gnss_via"] == "pty" and state["can"]["decoded"] > 0  # real inputs
        gw.post("/sim/gnss", {"plugged": False})  # the receiver's cable comes out ...
        wait_for(lambda: gw.sim_state()["gnss"]["state"] == "down", timeout=20)
        gw.post("/sim/gnss", {"plugged": True})  # ... and goes back in
        wait_for(lambda: gw.sim_state()["gnss"]["reconnects"] == 1, timeout=20)
        wait_for(lambda: gw.status()["pending_sync"] == 0, timeout=60, interval=0.1)
        top = gw.status()  # still answering before the key turns
        assert top["counts"] == {"delivered": 5}
        gw.ignition_off(grace_s=0.3)
        assert not gw.running
    finally:
        gw.terminate()

    import sqlite3

    conn = sqlite3.connect(f"file:{tmp_path / 'van.db'}?mode=ro", uri=True)
    try:
        (next_seq,) = conn.execute("SELECT next_seq FROM sync_out WHERE peer = 'cloud'").fetchone()
        events = conn.execute("SELECT stop_id, event_id FROM stop_events WHERE type = 'delivered'")
        delivered = sorted(events.fetchall())
    finally:
        conn.close()
    assert delivered == sorted(event_ids.items())
    log = cloud_log(cloud, van)
    assert_contiguous(log, next_seq - 1)
    assert [k for _, k in log].count("telemetry") >= 3
    facts = cloud.store.read(
        "SELECT stop_id, event_id FROM stop_facts WHERE vehicle_id = ?", (van,)
    )
    assert dict((str(a), str(b)) for a, b in facts) == event_ids
    assert "Traceback" not in (tmp_path / "van.log").read_text()
