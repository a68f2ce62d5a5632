"""Health and metrics: ``/healthz``, ``/readyz`` and ``/metrics`` on the cloud, a van and a depot.

Real parts: Mosquitto brokers stopped and started under the servers, SQLite files locked by a
second connection (tests may run as root, where a read-only mode stops nothing), uvicorn
serving each app on 127.0.0.1, and real messages between a real vehicle agent and a real
coordinator counted in the Prometheus text they expose.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cloud import CloudSettings, Coordinator, create_api
from cloud.operations import OperationsSettings
from cloud.ops import OpsSettings, Role
from edge.depot.agent import DepotAgent, DepotSettings
from edge.depot.web import create_terminal_app
from edge.tablet_api import create_tablet_app
from protocol import StopEvent, Telemetry, encode, make_envelope, up_topic
from sync import SyncNode, parse_broker_url
from sync.health import database_problem
from sync.metrics import LAG_BUCKETS_S, Histogram
from tests.helpers import REPO_ROOT, MosquittoBroker, free_port, unique_id, wait_for
from tests.support import FAST, make_plan, outbox_top, running_agent
from tests.test_cloud_support import DAY, add_orders, coordinator, network
from tests.test_ops_flow import _api, feed, make
from tests.test_ops_webhooks import Receiver, start
from wayline.serve import HttpServer

DOC = (REPO_ROOT / "docs" / "operations.md").read_text("utf-8")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


# --- helpers ---------------------------------------------------------------------------


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()


def delivered(stop_id: str) -> StopEvent:
    return StopEvent(
        event_id=f"ev-{stop_id}", route_id="r-1", plan_version=1, stop_id=stop_id,
        type="delivered", at=1_780_000_000_000,
    )  # fmt: skip


@contextlib.contextmanager
def served(app: Any) -> Iterator[httpx.Client]:
    server = HttpServer(app, "127.0.0.1", free_port())
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client
    finally:
        server.stop()


def samples(text: str) -> Samples:
    """Every sample of a Prometheus exposition, by (sample name, sorted labels)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(client: httpx.Client, **headers: str) -> Samples:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return samples(answer.text)


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def total(found: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples that have ``labels`` (and any others)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= set(ls))


def telemetry(at_ms: int) -> Telemetry:
    return Telemetry(
        at=at_ms, lat=52.5, lon=13.4, speed_kmh=0.0, heading_deg=0.0, odometer_km=1.0,
        door_open=False, ignition=True,
    )  # fmt: skip


def ready(client: httpx.Client) -> httpx.Response:
    return client.get("/readyz")


@contextlib.contextmanager
def locked(db: Path) -> Iterator[None]:
    """Another connection holds the store's write lock (works as root, unlike chmod)."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=5)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def publish_raw(broker: MosquittoBroker, topic: str, payload: bytes) -> None:
    """Publish bytes from outside Wayline (QoS 1, waits for the broker's ack)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_id("raw"))
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(timeout=5)
    finally:
        client.disconnect()
        client.loop_stop()


# --- the three apps under one probe flow ------------------------------------------------


def _cloud_app(broker: MosquittoBroker, db: Path) -> Iterator[tuple[Any, SyncNode]]:
    c = Coordinator(CloudSettings(db_path=db, broker=parse_broker_url(broker.url), sync=FAST))
    c.start()
    try:
        yield create_api(c), c.node
    finally:
        c.stop()


def _vehicle_app(broker: MosquittoBroker, db: Path) -> Iterator[tuple[Any, SyncNode]]:
    with running_agent(unique_id("van"), db, broker) as agent:
        yield create_tablet_app(agent), agent.node


def _depot_app(broker: MosquittoBroker, db: Path) -> Iterator[tuple[Any, SyncNode]]:
    address = parse_broker_url(broker.url)
    agent = DepotAgent(
        DepotSettings(depot_id=unique_id("depot"), db_path=db, broker=address, sync=FAST)
    )
    agent.start()
    try:
        yield create_terminal_app(agent), agent.node
    finally:
        agent.stop()


APPS: dict[str, Callable[[MosquittoBroker, Path], Iterator[tuple[Any, SyncNode]]]] = {
    "cloud": _cloud_app,
    "vehicle": _vehicle_app,
    "depot": _depot_app,
}


@pytest.mark.broker
@pytest.mark.parametrize("which", sorted(APPS))
def test_readyz_follows_the_broker_and_the_database(
    which: str, broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Live all along; ready only with the broker up and the store writable; back by itself."""
    db = tmp_path / f"{which}.db"
    with contextlib.contextmanager(APPS[which])(broker, db) as (app, node), served(app) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        wait_for(lambda: ready(http).status_code == 200, message="ready on a live broker")
        assert ready(http).json() == {
            "status": "ready",
            "checks": {"broker": "ok", "database": "ok"},
            "failing": [],
        }

        broker.stop()
        gone = wait_for(lambda: (r := ready(http)).status_code == 503 and r, message="503")
        assert gone.json()["checks"] == {"broker": "fail", "database": "ok"}
        assert gone.json()["failing"] == ["broker"]
        assert http.get("/healthz").status_code == 200  # alive: no restart for an outage

        broker.start()
        wait_for(lambda: ready(http).status_code == 200, timeout=15, message="ready again")

        with locked(db):
            answer = ready(http)
            assert answer.status_code == 503
            assert answer.json()["failing"] == ["database"]
            assert http.get("/healthz").status_code == 200
        assert ready(http).status_code == 200
        assert node.connected

    # the answers named checks only; the logs say why, once per change
    assert str(db) not in gone.text
    why = [r.getMessage() for r in caplog.records if "not ready" in r.getMessage()]
    assert sum(": broker: " in m for m in why) == 1, why
    assert sum(": database: " in m and "locked" in m for m in why) == 1, why


def test_a_store_that_cannot_be_opened_for_writing_is_not_ready(tmp_path: Path) -> None:
    missing = tmp_path / "gone.db"
    problem = database_problem(missing, 0.2)
    assert problem is not None and "gone.db" in problem
    assert not missing.exists()  # the check created nothing
    db = tmp_path / "ok.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE sync_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    conn.close()
    assert database_problem(db, 0.2) is None
    with sqlite3.connect(db) as conn:  # nothing stored changed
        assert conn.execute("SELECT count(*) FROM sync_meta").fetchone() == (0,)
    conn.close()


# --- metrics from real traffic ------------------------------------------------------------


@pytest.mark.broker
def test_metrics_count_real_messages_between_a_van_and_the_cloud(
    cloud: Coordinator, broker: MosquittoBroker, tmp_path: Path
) -> None:
    van = unique_id("van")
    with (
        running_agent(van, tmp_path / "van.db", broker) as agent,
        served(create_api(cloud)) as cloud_http,
        served(create_tablet_app(agent)) as van_http,
    ):
        before = scrape(cloud_http)
        assert value(before, "wayline_sync_applied_total", kind="stop_event") == 0
        assert value(before, "wayline_broker_connected") == 1

        cloud.send_plan(make_plan(van, 3))
        wait_for(lambda: agent.book.route() is not None, message="the plan on the van")
        agent.arrive("s00")
        agent.deliver("s00", recipient="Ann")
        agent.fail("s01", "absent")
        top = outbox_top(agent)
        wait_for(lambda: cloud.node.applied_upto(van) == top, message="the cloud applied all")
        wait_for(lambda: agent.node.pending() == 0, message="the van's outbox drained")
        wait_for(lambda: cloud.node.pending(van) == 0, message="the van acked its plan")

        # a message that is not one, and one ahead of a gap: refused, and a resend asked for
        publish_raw(broker, up_topic(van), b"\xc1 not msgpack")
        ahead = make_envelope(src=van, seq=top + 5, lc=10_000, body=telemetry(cloud.now_ms()))
        publish_raw(broker, up_topic(van), encode(ahead))
        wait_for(lambda: cloud.node.stats["resend_requests_out"] >= 1, message="a resend request")
        wait_for(lambda: agent.node.stats["resend_requests_in"] >= 1, message="it reached the van")

        after = scrape(cloud_http)
        on_van = scrape(van_http)

    # the cloud: ingest by kind, its lag, refusals, resend requests, the van's cursor
    assert value(after, "wayline_sync_applied_total", kind="stop_event") == 3
    assert value(after, "wayline_sync_applied_total", kind="route_sequence") >= 2
    applied = total(after, "wayline_sync_applied_total")
    assert value(after, "wayline_sync_lag_seconds_count") == applied == top
    assert value(after, "wayline_sync_lag_seconds_bucket", le="+Inf") == applied
    assert value(after, "wayline_sync_lag_seconds_bucket", le="60.0") == applied  # a live link
    assert value(after, "wayline_sync_rejected_total", reason="malformed") == 1
    assert value(after, "wayline_sync_gaps_total") == 1
    assert value(after, "wayline_sync_resend_requests_total", direction="sent") >= 1
    assert value(after, "wayline_sync_applied_seq", peer=van) == top
    assert value(after, "wayline_sync_outbox_depth", peer=van) == 0  # the plan was acked
    assert total(after, "wayline_exceptions_raised_total", **{"class": "failed_delivery"}) == 1
    assert any(n == "process_resident_memory_bytes" for n, _ in after)

    # the van: what came down, its own outbox, its re-sequencer
    assert value(on_van, "wayline_sync_applied_total", kind="route_plan") == 1
    assert value(on_van, "wayline_sync_outbox_depth", peer="cloud") == 0
    assert value(on_van, "wayline_sync_resend_requests_total", direction="received") >= 1
    assert value(on_van, "wayline_sync_published_total") >= top
    assert value(on_van, "wayline_resequence_seconds_count") >= 1
    assert value(on_van, "wayline_broker_connected") == 1


def test_a_van_offline_shows_its_backlog(tmp_path: Path) -> None:
    """Outbox depth and the age of its oldest entry, while nothing is acked."""
    with (
        running_agent(unique_id("van"), tmp_path / "van.db", None) as agent,
        served(create_tablet_app(agent)) as http,
    ):
        at = agent.now_ms()
        for k in range(4):
            agent.telemetry(telemetry(at + k))
        found = scrape(http)
        assert http.get("/readyz").json()["failing"] == ["broker"]  # none configured
    assert value(found, "wayline_sync_outbox_depth", peer="cloud") == 4
    assert value(found, "wayline_sync_oldest_unacked_seconds", peer="cloud") >= 0
    assert ("wayline_sync_oldest_unacked_seconds", (("peer", "cloud"),)) in found
    assert value(found, "wayline_broker_connected") == 0


def test_the_planner_times_its_solves(tmp_path: Path) -> None:
    c = coordinator(tmp_path / "cloud.db")
    try:
        network(c, ["van-a"])
        add_orders(c, 6)
        results = c.dispatch.plan_day(DAY)
        found = samples(generate_latest(c.metrics.registry).decode())
    finally:
        c.stop()
    counts = {ls: v for (n, ls), v in found.items() if n == "wayline_plan_solve_seconds_count"}
    assert sum(counts.values()) == len(results) == 1
    [labels] = counts
    assert dict(labels)["kind"] == "plan" and dict(labels)["solver"]
    spent = total(found, "wayline_plan_solve_seconds_sum")
    assert spent == pytest.approx(results[0]["seconds"], abs=0.001)


# --- the cloud's scrape credentials --------------------------------------------------------


def test_cloud_metrics_need_a_viewer_token_and_the_probes_none(tmp_path: Path) -> None:
    ops = OpsSettings(
        env="production", session_secret="s" * 40, token_pepper="p" * 40, webhook_secret="w" * 40
    )
    c = Coordinator(
        CloudSettings(
            db_path=tmp_path / "cloud.db",
            broker=None,
            operations=OperationsSettings(ops=ops),
        )
    )
    try:
        viewer, _ = c.operations.access.issue("prometheus", [Role.VIEWER])
        carrier, _ = c.operations.access.issue("a carrier", [Role.CARRIER], carrier_id="c1")
        with served(create_api(c)) as http:
            assert http.get("/v1/vehicles").status_code == 401
            assert http.get("/metrics").status_code == 401
            bad = http.get("/metrics", headers={"authorization": f"Bearer {carrier}"})
            assert bad.status_code == 403
            found = scrape(http, authorization=f"Bearer {viewer}")
            assert http.get("/healthz").json() == {"status": "ok"}
            answer = http.get("/readyz")  # no broker configured: never ready
            assert answer.status_code == 503
            assert answer.json()["checks"] == {"broker": "fail", "database": "ok"}
    finally:
        c.stop()
    assert value(found, "wayline_broker_connected") == 0


@pytest.mark.allow_errors(r"failed after 1 attempts: HTTP 404")
def test_webhook_failures_are_counted_by_the_coordinator_that_had_them(
    tmp_path: Path, receivers: list[Receiver]
) -> None:
    """A retried delivery and a refused one, on a real receiver; a second coordinator in the
    same process counts nothing of them (a registry each)."""
    flaky = start(receivers, fail_times=1, status=503)
    refusing = start(receivers, fail_times=10**6, status=404)
    quick = {
        "webhook_max_attempts": 3, "webhook_backoff_base_s": 0.05, "tick_s": 0.05,
        "webhook_allow_private": True,  # the receivers are on 127.0.0.1
    }  # fmt: skip
    a = make(tmp_path / "a.db", **quick)
    b = make(tmp_path / "b.db", **quick)
    try:
        a.start()
        b.start()
        with _api(a) as api_a, served(create_api(b)) as api_b:
            for receiver in (flaky, refusing):
                r = api_a.post("/v1/webhooks", json={"url": receiver.url})
                assert r.status_code == 201, r.text
            feed(a, "van-a", delivered("o-1"))
            wait_for(lambda: len(flaky.requests) == 2 and refusing.requests, timeout=10)
            failures = "wayline_webhook_failures_total"
            event = "delivery.confirmed"
            wait_for(
                lambda: (
                    (f := scrape(api_a))
                    and value(f, failures, event=event, outcome="failed") == 1
                    and value(f, failures, event=event, outcome="retry") == 1
                ),
                timeout=10,
                message="the retry and the failure counted",
            )
            on_b = scrape(api_b)
    finally:
        a.stop()
        b.stop()
    assert a.metrics.registry is not b.metrics.registry
    assert total(on_b, failures) == 0


# --- small parts and the docs --------------------------------------------------------------


def test_the_histogram_counts_into_cumulative_buckets() -> None:
    h = Histogram((1.0, 2.0))
    for v in (0.5, 1.0, 1.5, 3.0):
        h.observe(v)
    snap = h.snapshot()
    assert snap.buckets == ((1.0, 2), (2.0, 3), (float("inf"), 4))
    assert (snap.count, snap.sum) == (4, 6.0)
    with pytest.raises(ValueError):
        Histogram((2.0, 1.0))
    assert list(LAG_BUCKETS_S) == sorted(LAG_BUCKETS_S)


def test_every_metric_and_route_is_documented(tmp_path: Path) -> None:
    c = Coordinator(CloudSettings(db_path=tmp_path / "cloud.db", broker=None))
    try:
        with (
            running_agent(unique_id("van"), tmp_path / "van.db", None) as agent,
            served(create_api(c)) as cloud_http,
            served(create_tablet_app(agent)) as van_http,
        ):
            names = {
                f.name + ("_total" if f.type == "counter" else "")
                for http in (cloud_http, van_http)
                for f in text_string_to_metric_families(http.get("/metrics").text)
                if f.name.startswith("wayline_") and not f.name.endswith("_created")
            }
    finally:
        c.stop()
    assert len(names) >= 15
    missing = sorted(n for n in names if f"`{n}`" not in DOC)
    assert not missing, f"docs/operations.md does not list {missing}"
    for route in ("/healthz", "/readyz", "/metrics"):
        assert f"`{route}`" in DOC
