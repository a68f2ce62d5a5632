"""Batched ingest: buffered writes commit with the stream cursor, a faulty entry is refused
alone, after-commit hooks run once, and the cloud keeps every telemetry sample."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from cloud import CloudSettings, Coordinator
from protocol import ExceptionReport, Telemetry, encode, make_envelope, up_topic
from sync import SyncNode, Tx, open_store
from tests.helpers import wait_for


def sample(at: int) -> Telemetry:
    return Telemetry(
        at=at,
        lat=52.5,
        lon=13.4,
        speed_kmh=30.0,
        heading_deg=0.0,
        odometer_km=100.0,
        door_open=False,
        ignition=True,
    )


class SeenBuffer:
    """Gathers ``(peer, seq)`` of applied entries; one statement per flush."""

    flushes = 0

    def __init__(self) -> None:
        self.rows: list[tuple[str, int]] = []

    def flush(self, conn: sqlite3.Connection) -> None:
        if self.rows:
            conn.executemany("INSERT INTO seen (peer, seq) VALUES (?, ?)", self.rows)
            SeenBuffer.flushes += 1
        self.discard()

    def discard(self) -> None:
        self.rows.clear()


class Buffering:
    """A handler that buffers every entry and fails on the ones it is told to."""

    def __init__(self, fail_on: set[int]) -> None:
        self.fail_on = fail_on

    def apply(self, tx: Tx, peer: str, envelope) -> None:  # type: ignore[no-untyped-def]
        tx.buffer(SeenBuffer).rows.append((peer, envelope.seq))
        if envelope.seq in self.fail_on:
            raise RuntimeError(f"cannot take #{envelope.seq}")

    def on_state(self, tx: Tx, peer: str, envelope) -> None:  # type: ignore[no-untyped-def]
        pass


def hub(path: Path, handler: Buffering) -> SyncNode:
    store = open_store(path)
    with store.transaction() as conn:
        conn.execute("CREATE TABLE seen (peer TEXT, seq INTEGER, PRIMARY KEY (peer, seq))")
    return SyncNode(node_id="cloud", role="hub", store=store, handler=handler, broker=None)


def feed(node: SyncNode, src: str, seqs: range) -> None:
    for seq in seqs:
        env = make_envelope(src=src, seq=seq, lc=seq, body=sample(seq))
        node.feed(up_topic(src), encode(env))


def test_a_batch_of_buffered_writes_commits_once_with_the_cursor(tmp_path: Path) -> None:
    node = hub(tmp_path / "hub.db", Buffering(fail_on=set()))
    feed(node, "van-1", range(1, 301))
    feed(node, "van-2", range(1, 301))
    before = SeenBuffer.flushes
    node.start()
    try:
        wait_for(lambda: node.applied_upto("van-1") == 300 and node.applied_upto("van-2") == 300)
    finally:
        node.stop()
    rows = node.store.read("SELECT peer, count(*), max(seq) FROM seen GROUP BY peer")
    assert sorted(tuple(r) for r in rows) == [("van-1", 300, 300), ("van-2", 300, 300)]
    # 600 entries queued before the worker started: a handful of batches, not 600 writes.
    assert SeenBuffer.flushes - before <= 10
    cursors = dict(node.store.read("SELECT peer, applied_upto FROM sync_in"))
    assert cursors == {"van-1": 300, "van-2": 300}


@pytest.mark.allow_errors("handler failed on telemetry #3 from van-1")
def test_a_faulty_entry_is_refused_alone_and_its_buffered_write_dropped(tmp_path: Path) -> None:
    node = hub(tmp_path / "hub.db", Buffering(fail_on={3}))
    feed(node, "van-1", range(1, 7))
    node.start()
    try:
        wait_for(lambda: node.applied_upto("van-1") == 6)
    finally:
        node.stop()
    seen = [r[0] for r in node.store.read("SELECT seq FROM seen ORDER BY seq")]
    assert seen == [1, 2, 4, 5, 6]
    refused = node.store.read("SELECT seq, reason FROM sync_rejected")
    assert [r[0] for r in refused] == [3]
    assert "cannot take #3" in refused[0][1]


def test_after_commit_hooks_run_once_and_never_after_a_rollback(tmp_path: Path) -> None:
    node = hub(tmp_path / "hub.db", Buffering(fail_on=set()))
    calls: list[str] = []

    def hook() -> None:
        calls.append("woken")

    with node.transaction() as tx:
        tx.on_commit(hook)
        tx.on_commit(hook)
        assert calls == []  # not before the commit
    assert calls == ["woken"]
    with pytest.raises(RuntimeError), node.transaction() as tx:
        tx.on_commit(hook)
        raise RuntimeError("rolled back")
    assert calls == ["woken"]
    node.store.close()


def test_the_cloud_keeps_each_vehicles_newest_position_and_logs_every_sample(
    tmp_path: Path,
) -> None:
    cloud = Coordinator(CloudSettings(db_path=tmp_path / "cloud.db", broker=None))
    # Samples arrive in stream order, but a gateway's clock may step back: the newest
    # position wins, as one statement per sample would have it.
    t0 = int(time.time() * 1000) - 3_600_000  # device times are taken when plausible
    times = {"van-1": [10, 30, 20, 25], "van-2": [5, 6, 7, 1]}
    for van, ats in times.items():
        for seq, at in enumerate(ats, start=1):
            env = make_envelope(src=van, seq=seq, lc=seq, body=sample(t0 + at))
            cloud.node.feed(up_topic(van), encode(env))
    report = ExceptionReport(
        exception_id="x-1",
        category="vehicle_breakdown",
        severity="critical",
        at=40,
        vehicle_id="van-1",
        detail="flat tyre",
    )
    env = make_envelope(src="van-1", seq=5, lc=5, body=report)
    cloud.node.feed(up_topic("van-1"), encode(env))
    cloud.start()
    try:
        wait_for(lambda: cloud.node.applied_upto("van-1") == 5)
        wait_for(lambda: cloud.node.applied_upto("van-2") == 4)
    finally:
        cloud.stop()
    conn = sqlite3.connect(tmp_path / "cloud.db")
    positions = dict(conn.execute("SELECT vehicle_id, at_ms FROM positions").fetchall())
    assert positions == {"van-1": t0 + 30, "van-2": t0 + 7}
    logged = conn.execute("SELECT src, seq, kind FROM events ORDER BY src, seq").fetchall()
    assert logged == [
        *[("van-1", s, "telemetry") for s in range(1, 5)],
        ("van-1", 5, "exception"),
        *[("van-2", s, "telemetry") for s in range(1, 5)],
    ]
    conn.close()
