"""A whole shift offline, a gateway killed mid-delivery, a late plan, and bad input.

Real parts throughout: a private Mosquitto per test, SQLite files in ``tmp_path``, the real
re-sequencer, a real ``cloud.Coordinator``, and for the kill test a real ``wayline vehicle``
process served over HTTP and killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud import ConflictError, Coordinator
from edge.tablet_api import create_tablet_app
from edge.vehicle import VehicleAgent
from tests.helpers import MosquittoBroker, free_port, unique_id, wait_for
from tests.paired import PAIRING_CODE, code_of, pair, pair_client
from tests.support import (
    assert_contiguous,
    cloud_facts,
    cloud_log,
    feed_plan,
    make_plan,
    outbox_top,
    running_agent,
    tiny_png,
)
from wayline.serve import HttpServer

ROOT = Path(__file__).resolve().parents[1]
REASONS = ("absent", "address_problem", "refused", "damaged", "no_access")


# -- (a) the whole shift with the broker down ---------------------------------------------


@pytest.mark.broker
@pytest.mark.e2e
def test_whole_shift_offline_then_everything_syncs_once_in_order(
    broker: MosquittoBroker, cloud: Coordinator, tmp_path: Path
) -> None:
    van = unique_id("van")
    plan = make_plan(van, 12)
    with running_agent(van, tmp_path / "van.db", broker) as agent:
        wait_for(lambda: agent.node.connected, message="the van online")
        cloud.send_plan(plan)
        wait_for(lambda: agent.book.route() is not None, timeout=20, message="the plan on the van")
        wait_for(lambda: agent.node.pending() == 0, timeout=20)

        broker.stop()  # the van's dead zone lasts the whole shift
        wait_for(lambda: not agent.node.connected, message="the van offline")
        expected: dict[str, tuple[str, str | None]] = {}
        i = 0
        while (nxt := agent.status()["next"]) is not None:
            sid = nxt["stop_id"]
            if i % 4 == 3:
                reason = REASONS[i % len(REASONS)]
                agent.fail(sid, reason)
                expected[sid] = ("failed", reason)
            else:
                agent.arrive(sid)
                agent.deliver(sid, recipient=f"R{i}", barcodes=(nxt["parcels"][0]["barcode"],))
                expected[sid] = ("delivered", None)
            i += 1
        assert len(expected) == 12
        status = agent.status()
        assert status["connected"] is False
        assert status["pending_sync"] > 24  # each fact and each new sequence, all waiting
        assert status["counts"] == {"delivered": 9, "failed": 3}
        assert cloud_facts(cloud, van) == {}

        broker.start()
        wait_for(lambda: agent.node.pending() == 0, timeout=60, message="the outbox drained")
        top = outbox_top(agent)
    log = cloud_log(cloud, van)
    assert_contiguous(log, top)
    kinds = [k for _, k in log]
    assert kinds.count("stop_event") == 12 + 9  # nine arrivals, twelve outcomes
    facts = cloud_facts(cloud, van)
    assert {sid: (f[0], f[2]) for sid, f in facts.items()} == expected
    ids = cloud.store.read("SELECT count(DISTINCT id), count(*) FROM events WHERE src = ?", (van,))
    assert ids[0][0] == ids[0][1] == top, "no message applied twice"


# -- (b) the gateway killed in the middle of a delivery ----------------------------------


class VehicleProcess:
    """``wayline vehicle`` as a real process with its tablet API on a loopback port."""

    def __init__(self, van: str, db: Path, broker: MosquittoBroker, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [
            sys.executable,
            "-m",
            "wayline",
            "vehicle",
            "--id",
            van,
            "--broker",
            broker.url,
            "--db",
            str(db),
            "--http",
            f"127.0.0.1:{self.port}",
        ]
        self.log = log
        self.p: subprocess.Popen[bytes] | None = None
        self.auth: dict[str, str] = {}
        """The paired tablet's session (it survives the process's restarts)."""

    def start(self) -> None:
        env = {**os.environ, "WAYLINE_PAIRING_CODE": PAIRING_CODE}
        with self.log.open("ab") as out:
            self.p = subprocess.Popen(
                self.args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        wait_for(self._answers, timeout=60, interval=0.1, message="the vehicle's tablet API")
        if not self.auth:
            self.auth = pair(self.url)

    def _answers(self) -> bool:
        assert self.p is not None
        if self.p.poll() is not None:
            raise AssertionError(f"vehicle exited: {self.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=5):
                return True
        except OSError:
            return False

    def status(self) -> dict[str, Any]:
        req = urllib.request.Request(f"{self.url}/api/status", headers=self.auth)
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def deliver(self, stop_id: str, event_id: str) -> tuple[int, dict[str, Any]]:
        form = {"event_id": event_id, "recipient": "At the door"}
        files = {"photo": ("door.png", tiny_png(), "image/png")}
        r = httpx.post(
            f"{self.url}/api/stops/{stop_id}/deliver",
            data=form,
            files=files,
            headers=self.auth,
            timeout=30,
        )
        return r.status_code, r.json()

    def kill(self) -> None:
        assert self.p is not None
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()

    def terminate(self) -> None:
        if self.p is not None and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


@pytest.mark.broker
@pytest.mark.e2e
def test_vehicle_killed_during_a_delivery_retry_records_once(
    broker: MosquittoBroker, cloud: Coordinator, tmp_path: Path
) -> None:
    van = unique_id("van")
    db = tmp_path / "van.db"
    vehicle = VehicleProcess(van, db, broker, tmp_path / "van.log")
    plan = make_plan(van, 8)
    event_ids = {s.stop_id: uuid.uuid4().hex for s in plan.stops}
    try:
        vehicle.start()
        cloud.send_plan(plan)
        wait_for(lambda: vehicle.status()["route"] is not None, timeout=30, interval=0.1)

        for _ in range(3):  # three deliveries go through
            sid = vehicle.status()["next"]["stop_id"]
            code, body = vehicle.deliver(sid, event_ids[sid])
            assert code == 200 and body["duplicate"] is False

        # a delivery is in flight when the power goes: its answer never comes; at two
        # moments, reading the request and writing the fact with its re-sequence
        for delay in (0.03, 0.1):
            in_doubt = vehicle.status()["next"]["stop_id"]
            answers: list[Any] = []

            def post(sid: str = in_doubt, out: list[Any] = answers) -> None:
                try:
                    out.append(vehicle.deliver(sid, event_ids[sid]))
                except httpx.HTTPError as exc:
                    out.append(exc)

            sender = threading.Thread(target=post)
            sender.start()
            time.sleep(delay)
            vehicle.kill()
            sender.join(30)
            assert len(answers) == 1

            vehicle.start()
            code, body = vehicle.deliver(in_doubt, event_ids[in_doubt])  # the driver taps again
            assert code == 200, body
            assert [s["stop_id"] for s in body["done"]].count(in_doubt) == 1

        while (nxt := vehicle.status()["next"]) is not None:
            code, body = vehicle.deliver(nxt["stop_id"], event_ids[nxt["stop_id"]])
            assert code == 200 and body["duplicate"] is False
        # a late retry of an early tap changes nothing
        first = plan.stops[0].stop_id
        code, body = vehicle.deliver(first, event_ids[first])
        assert code == 200 and body["duplicate"] is True
        wait_for(lambda: vehicle.status()["pending_sync"] == 0, timeout=60, interval=0.1)
    finally:
        vehicle.terminate()

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        events = conn.execute(
            "SELECT stop_id, event_id FROM stop_events WHERE type = 'delivered'"
        ).fetchall()
        top = outbox_top(conn)
        (photos,) = conn.execute("SELECT count(*) FROM photos").fetchone()
    finally:
        conn.close()
    assert sorted(events) == sorted(event_ids.items()), "each stop delivered once, its own id"
    assert photos == 1  # the same picture each time, stored once by its hash
    assert_contiguous(cloud_log(cloud, van), top)
    facts = cloud_facts(cloud, van)
    assert {sid: f[1] for sid, f in facts.items()} == event_ids
    assert {f[0] for f in facts.values()} == {"delivered"}
    assert "Traceback" not in (tmp_path / "van.log").read_text()


# -- (c) a late plan for a stop delivered offline; a stale plan --------------------------


@pytest.mark.broker
@pytest.mark.e2e
def test_late_plan_keeps_field_facts_and_stale_plan_is_refused(
    broker: MosquittoBroker, cloud: Coordinator, tmp_path: Path
) -> None:
    van = unique_id("van")
    v1 = make_plan(van, 5)
    with running_agent(van, tmp_path / "van.db", broker) as agent:
        wait_for(lambda: agent.node.connected, message="the van online")
        cloud.send_plan(v1)
        wait_for(lambda: agent.book.route() is not None, timeout=20)

        broker.stop()
        wait_for(lambda: not agent.node.connected)
        agent.deliver("s00", recipient="Ada")  # the cloud does not know yet
        agent.fail("s01", "refused")
        # meanwhile ops re-plan: v2 still lists s00 and s01 to do, drops s04, adds s09
        stops = [*v1.stops[:4], make_plan(van, 10).stops[9]]
        v2 = v1.model_copy(update={"version": 2, "stops": tuple(stops)})
        cloud.send_plan(v2)
        broker.start()

        wait_for(lambda: agent.book.route()["version"] == 2, timeout=30, message="v2 applied")
        wait_for(lambda: agent.node.pending() == 0 and cloud.node.pending() == 0, timeout=30)
        status = agent.status()
        assert {s["stop_id"]: s["status"] for s in status["done"]} == {
            "s00": "delivered",
            "s01": "failed",
        }
        assert [s["stop_id"] for s in status["remaining"]].count("s09") == 1
        assert "s04" not in {s["stop_id"] for s in status["remaining"]}
        conflicts = cloud.store.read(
            "SELECT stop_id, category, data FROM exceptions WHERE src = ? ORDER BY stop_id", (van,)
        )
        assert [(r[0], r[1]) for r in conflicts] == [
            ("s00", "plan_conflict"),
            ("s01", "plan_conflict"),
        ]
        assert all(json.loads(r[2]) == {"plan_version": 2} for r in conflicts)
        facts = cloud_facts(cloud, van)
        assert (facts["s00"][0], facts["s01"][0]) == ("delivered", "failed")

        # a stale plan: the cloud refuses to send it, and the van refuses it if it comes
        stale = v1.model_copy(update={"stops": tuple(v1.stops[2:])})
        with pytest.raises(ConflictError):
            cloud.send_plan(stale)
        before = agent.status()["remaining"]
        with cloud.node.transaction() as tx:  # forced down the wire anyway
            sent = tx.emit(van, stale)
        wait_for(lambda: agent.node.applied_upto("cloud") >= sent.seq, timeout=20)
        refused = agent.store.read("SELECT seq, kind, reason FROM sync_rejected")
        assert [(r[0], r[1]) for r in refused] == [(sent.seq, "route_plan")]
        assert "not newer" in refused[0][2]
        assert agent.book.route()["version"] == 2
        assert agent.status()["remaining"] == before


# -- (d) bad input over HTTP --------------------------------------------------------------


@pytest.fixture
def tablet_http(tmp_path: Path) -> Iterator[tuple[VehicleAgent, httpx.Client]]:
    van = unique_id("van")
    with running_agent(van, tmp_path / "van.db", None) as agent:
        feed_plan(agent, make_plan(van, 4), seq=1)
        wait_for(lambda: agent.book.route() is not None, message="the plan applied")
        app = create_tablet_app(agent)
        server = HttpServer(app, "127.0.0.1", free_port())
        server.start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                yield agent, pair_client(client, code_of(app))
        finally:
            server.stop()


def test_bad_input_is_refused_and_changes_nothing(tablet_http) -> None:
    agent, client = tablet_http

    def snapshot() -> tuple[Any, int, int]:
        events = agent.store.read("SELECT count(*) FROM stop_events")[0][0]
        return agent.status(), agent.node.pending(), events

    def refused(expect: int, method: str, path: str, **kw: Any) -> str:
        before = snapshot()
        r = client.request(method, path, **kw)
        assert r.status_code == expect, r.text
        assert snapshot() == before, f"{path} changed something"
        return str(r.json()["error"])

    assert "not on this route" in refused(404, "POST", "/api/stops/nope/deliver", data={})
    refused(404, "POST", "/api/stops/nope/fail", json={"reason": "absent"})
    refused(404, "POST", "/api/stops/nope/next")

    big = b"\x89PNG\r\n\x1a\n" + bytes(agent.settings.max_photo_bytes)
    files = {"photo": ("big.png", big, "image/png")}
    assert "limit" in refused(413, "POST", "/api/stops/s00/deliver", files=files)
    files = {"photo": ("x.png", b"%PDF-1.4 not a photo", "image/png")}
    assert "not a JPEG" in refused(422, "POST", "/api/stops/s00/deliver", files=files)
    assert "reason" in refused(422, "POST", "/api/stops/s00/fail", json={"reason": "bored"})
    refused(422, "POST", "/api/stops/s00/fail", json={"reason": "absent", "extra": 1})
    refused(422, "POST", "/api/stops/s00/move", json={"position": 2, "reason": ""})
    assert "reason" in refused(
        422, "POST", "/api/stops/s00/move", json={"position": 2, "reason": "  "}
    )
    refused(422, "POST", "/api/stops/s00/deliver", data={"recipient": "x" * 121})

    # the same event twice: recorded once; another event for a delivered stop: 409
    first = {"event_id": "tap-1", "recipient": "Ada"}
    r = client.post("/api/stops/s00/deliver", data=first)
    assert r.status_code == 200 and r.json()["duplicate"] is False
    after_first = snapshot()
    r = client.post("/api/stops/s00/deliver", data=first)
    assert r.status_code == 200 and r.json()["duplicate"] is True
    assert snapshot() == after_first
    assert "already" in refused(409, "POST", "/api/stops/s00/deliver", data={"event_id": "tap-2"})
    assert "another action" in refused(
        409, "POST", "/api/stops/s01/fail", json={"reason": "absent", "event_id": "tap-1"}
    )
    refused(409, "POST", "/api/stops/s00/fail", json={"reason": "absent", "event_id": "tap-3"})
    events = agent.store.read("SELECT stop_id, event_id FROM stop_events")
    assert events == [("s00", "tap-1")]

    # route edits retried with their event id are applied once
    r1 = client.post("/api/break", json={"event_id": "brk-1"})
    taken = agent.book.route()["break_taken_at"]
    pending = agent.node.pending()
    r2 = client.post("/api/break", json={"event_id": "brk-1"})
    assert (r1.status_code, r2.status_code) == (200, 200) and r2.json()["duplicate"] is True
    assert agent.node.pending() == pending and agent.book.route()["break_taken_at"] == taken


def test_tablet_page_and_status_are_served(tablet_http) -> None:
    _agent, client = tablet_http
    page = client.get("/")
    assert page.status_code == 200 and "app.js" in page.text
    for asset in ("/app.js", "/app.css"):
        assert client.get(asset).status_code == 200
    assert "cdn" not in page.text.lower() and "https://" not in client.get("/app.js").text
    status = client.get("/api/status").json()
    assert status["connected"] is False and status["cloud_online"] is None
    assert len(status["remaining"]) == 4
