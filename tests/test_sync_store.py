"""The node's store: sequence numbers survive restarts, rollbacks leave nothing, corruption
is quarantined and recovered, never deleted."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from protocol import ExceptionReport, Telemetry, decode
from sync import StoreError, SyncError, SyncNode, SyncSettings, open_store


class Nothing:
    def apply(self, tx, peer, envelope) -> None:  # pragma: no cover - not called here
        raise AssertionError

    def on_state(self, tx, peer, envelope) -> None:  # pragma: no cover
        raise AssertionError


def sample(i: int) -> Telemetry:
    return Telemetry(
        at=i,
        lat=1.0,
        lon=2.0,
        speed_kmh=0.0,
        heading_deg=0.0,
        odometer_km=0.0,
        door_open=False,
        ignition=False,
    )


def node(path: Path) -> SyncNode:
    return SyncNode(
        node_id="van-1", role="device", store=open_store(path), handler=Nothing(), broker=None
    )


def outbox(n: SyncNode) -> list[tuple[int, int]]:
    return [
        (s, decode(p).lc)
        for s, p in n.store.read("SELECT seq, payload FROM sync_outbox ORDER BY seq")
    ]


def test_sequence_and_clock_survive_a_restart(tmp_path: Path) -> None:
    a = node(tmp_path / "v.db")
    with a.transaction() as tx:
        tx.emit("cloud", sample(1))
        tx.emit("cloud", sample(2))
    a.store.close()
    b = node(tmp_path / "v.db")
    with b.transaction() as tx:
        env = tx.emit("cloud", sample(3))
    assert env.seq == 3
    entries = outbox(b)
    assert [s for s, _ in entries] == [1, 2, 3]
    assert [lc for _, lc in entries] == sorted({lc for _, lc in entries})  # Lamport clock grows
    b.store.close()


def test_a_rolled_back_transaction_emits_nothing_and_reuses_no_number(tmp_path: Path) -> None:
    a = node(tmp_path / "v.db")
    with a.transaction() as tx:
        tx.emit("cloud", sample(1))
    with pytest.raises(RuntimeError), a.transaction() as tx:
        tx.emit("cloud", sample(2))
        tx.conn.execute("CREATE TABLE half_written (x)")
        raise RuntimeError("power cut in the middle")
    assert "half_written" not in a.store.table_names()
    with a.transaction() as tx:
        env = tx.emit("cloud", sample(3))
    assert env.seq == 2  # the rolled-back 2 never existed for anyone
    assert [s for s, _ in outbox(a)] == [1, 2]
    a.store.close()


def test_an_oversize_message_is_refused_before_it_is_stored(tmp_path: Path) -> None:
    a = SyncNode(
        node_id="van-1",
        role="device",
        store=open_store(tmp_path / "v.db"),
        handler=Nothing(),
        broker=None,
        settings=SyncSettings(max_payload=300),
    )
    big = ExceptionReport(
        exception_id="x1", category="other", severity="info", at=1, detail="y" * 1000
    )
    with pytest.raises(SyncError, match="over the 300-byte limit"), a.transaction() as tx:
        tx.emit("cloud", big)
    assert outbox(a) == []
    a.store.close()


def test_a_corrupt_store_is_quarantined_and_what_is_intact_recovered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, allowed_errors: list[str]
) -> None:
    allowed_errors.extend(["failed its integrity check", "recovering table", "lost entries"])
    path = tmp_path / "v.db"
    a = node(path)
    with a.transaction() as tx:
        for i in range(2000):
            tx.emit("cloud", sample(i))
    a.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    a.store.close()
    data = bytearray(path.read_bytes())
    page = 4096
    pages = len(data) // page
    bad = pages // 2  # a page in the middle of the outbox's table
    for off in range(bad * page, (bad + 1) * page):
        data[off] = 0xA5
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.CRITICAL, logger="sync.store"):
        b = node(path)
    quarantined = list(tmp_path.glob("v.db.corrupt-*"))
    assert quarantined, "the corrupt store is kept beside the new one"
    assert any("failed its integrity check" in r.message for r in caplog.records)
    entries = b.store.read("SELECT seq, kind FROM sync_outbox ORDER BY seq")
    assert [r[0] for r in entries] == list(range(1, 2001)), "the stream is whole again"
    lost = [r[0] for r in entries if r[1] == "exception"]
    assert 0 < len(lost) < 500, len(lost)  # one page's rows lost (and reported), not the rest
    assert lost[-1] < 2000, "rows after the damaged page are recovered"
    assert b.store.read("PRAGMA quick_check")[0][0] == "ok"
    with b.transaction() as tx:  # and the node keeps working on the fresh store
        tx.emit("cloud", sample(999))
    b.store.close()


def test_an_unopenable_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="cannot open store"):
        open_store(tmp_path / "dir.db")


def test_a_hole_left_by_a_damaged_page_is_filled_so_the_stream_moves_on(
    tmp_path: Path, allowed_errors: list[str]
) -> None:
    allowed_errors.append("lost entries replaced")
    a = node(tmp_path / "v.db")
    with a.transaction() as tx:
        for i in range(10):
            tx.emit("cloud", sample(i))
    a.store.conn.execute("DELETE FROM sync_outbox WHERE seq IN (4, 5)")  # as a lost page would
    a.store.close()
    b = node(tmp_path / "v.db")
    entries = b.store.read("SELECT seq, kind, payload FROM sync_outbox ORDER BY seq")
    assert [r[0] for r in entries] == list(range(1, 11))
    lost = [decode(r[2]).body for r in entries if r[1] == "exception"]
    assert [(x.category, x.data["seq"]) for x in lost] == [("entry_lost", 4), ("entry_lost", 5)]
    with b.transaction() as tx:
        assert tx.emit("cloud", sample(11)).seq == 11
    b.store.close()


def test_a_damaged_entry_copied_by_recovery_is_reported_lost_so_the_stream_moves_on(
    tmp_path: Path, allowed_errors: list[str]
) -> None:
    allowed_errors.extend(["damaged in the store", "lost entries replaced"])
    a = node(tmp_path / "v.db")
    with a.transaction() as tx:
        for i in range(10):
            tx.emit("cloud", sample(i))
    good = a.store.read("SELECT payload FROM sync_outbox WHERE seq = 3")[0][0]
    a.store.conn.execute("UPDATE sync_outbox SET payload = x'93a1ff00' WHERE seq = 6")  # garbled
    a.store.conn.execute("UPDATE sync_outbox SET payload = ? WHERE seq = 8", (good,))  # another's
    a.store.close()
    store = open_store(tmp_path / "v.db")
    store.recovered = True  # as open_store marks a store recovered from a quarantined copy
    b = SyncNode(node_id="van-1", role="device", store=store, handler=Nothing(), broker=None)
    entries = b.store.read("SELECT seq, payload FROM sync_outbox ORDER BY seq")
    assert [seq for seq, _ in entries] == list(range(1, 11))
    decoded = {seq: decode(payload) for seq, payload in entries}  # every entry whole again
    assert all(env.seq == seq and env.src == "van-1" for seq, env in decoded.items())
    lost = {seq: env.body for seq, env in decoded.items() if env.kind == "exception"}
    assert sorted(lost) == [6, 8]
    assert all(x.category == "entry_lost" and x.data["seq"] == seq for seq, x in lost.items())
    b.store.close()


def test_a_counter_that_went_backwards_follows_the_peers_ack(
    tmp_path: Path, allowed_errors: list[str]
) -> None:
    from protocol import Ack, encode, make_envelope, up_topic

    allowed_errors.append("beyond this store's counter")
    store = open_store(tmp_path / "v.db")
    store.recovered = True  # as open_store marks a store recovered from a quarantined copy
    a = SyncNode(node_id="van-1", role="device", store=store, handler=Nothing(), broker=None)
    with a.transaction() as tx:  # the counter row and the outbox were lost: numbers restart
        tx.emit("cloud", sample(1))
        tx.emit("cloud", sample(2))
    # The cloud had applied up to 7 before the van's store was damaged; it re-acks 7.
    ack = make_envelope(src="cloud", seq=0, lc=50, body=Ack(upto=7))
    a.feed(up_topic("van-1").replace("/up", "/down"), encode(ack))
    a._process(a._take_batch())
    entries = a.store.read("SELECT seq, payload FROM sync_outbox ORDER BY seq")
    assert [r[0] for r in entries] == [8, 9]
    assert [decode(r[1]).body.at for r in entries] == [1, 2]
    with a.transaction() as tx:
        assert tx.emit("cloud", sample(3)).seq == 10
    a.store.close()


# -- a store another process holds locked ---------------------------------------------------


@contextmanager
def locked_for(path: Path, seconds: float) -> Iterator[None]:
    """Another connection holds ``path`` exclusively locked for ``seconds`` (as a second
    process copying or checking the file would), then lets go."""
    held = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("UPDATE sync_meta SET value = value WHERE key = 'lc'")
        held.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(5)
        yield
    finally:
        holder.join(seconds + 10)


def _store_with_rows(path: Path) -> int:
    n = node(path)
    with n.transaction() as tx:
        for i in range(50):
            tx.emit("cloud", sample(i + 1))
    pending = n.pending()
    n.store.close()
    return pending


def test_a_store_locked_longer_than_sqlites_own_wait_is_waited_for_not_quarantined(
    tmp_path: Path,
) -> None:
    path = tmp_path / "van.db"
    assert _store_with_rows(path) == 50
    with locked_for(path, 6.0):  # past SQLite's default busy timeout of 5 s
        store = open_store(path)
    try:
        assert not store.recovered
        assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name) == []
    finally:
        store.close()
    reopened = node(path)
    assert reopened.pending() == 50  # every unsent fact still there
    reopened.store.close()


def test_a_store_still_locked_after_the_wait_is_refused_and_left_as_it_is(
    tmp_path: Path,
) -> None:
    path = tmp_path / "van.db"
    _store_with_rows(path)
    before = {p.name for p in tmp_path.iterdir()}
    with locked_for(path, 2.0), pytest.raises(StoreError, match="locked by another process"):
        open_store(path, lock_wait_s=0.3)
    assert {p.name for p in tmp_path.iterdir()} == before
