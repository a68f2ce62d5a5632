"""Store schema migrations: a van's or depot's store written by today's code is upgraded in
place by a later step with nothing lost; a step cut short leaves the store as it was; a store
from a newer Wayline is refused untouched; the cloud's migrations split SQL as SQLite does.

Real parts: the real vehicle and depot agents on SQLite files in ``tmp_path``, a real
process killed in the middle of a step, and the real CLI for the one-line refusal.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cloud.store.composed
import edge.depot.depot_book
import edge.route_book
from cloud.store import MIGRATIONS, CloudStore
from edge.depot import DepotAgent, DepotSettings
from edge.depot.sample import morning
from edge.vehicle import VehicleAgent, VehicleSettings
from protocol import make_envelope
from sync import SYNC_SCHEMA, SchemaVersionError, Step, StoreError, open_store
from sync.migrations import run_script, split_statements
from tests.helpers import wait_for
from tests.support import FAST, feed_plan, make_plan
from wayline.cli import main

ROOT = Path(__file__).resolve().parents[1]
ROUTE_BOOK = edge.route_book.SCHEMA  # the steps of today's code, before a test adds one
DEPOT_BOOK = edge.depot.depot_book.SCHEMA
VAN = "van-mig"

Rows = tuple[list[str], list[tuple[Any, ...]]]
Tables = dict[str, Rows]


# -- building real stores with today's code ------------------------------------------------


def vehicle(path: Path) -> VehicleAgent:
    return VehicleAgent(VehicleSettings(vehicle_id=VAN, db_path=path, broker=None, sync=FAST))


def depot(path: Path) -> DepotAgent:
    return DepotAgent(DepotSettings(depot_id="depot-mig", db_path=path, broker=None, sync=FAST))


def make_vehicle_store(path: Path) -> None:
    """A van's store as today's code writes it: a route of six stops, one delivered, one
    failed, so its outbox holds their facts."""
    agent = vehicle(path)
    agent.start()  # its sync worker applies the plan
    try:
        feed_plan(agent, make_plan(VAN, 6), 1)
        wait_for(lambda: len(agent.book.stops()) == 6, message="the plan on the van")
        first, second = (s.stop_id for s in agent.book.stops()[:2])
        agent.arrive(first)
        agent.deliver(first, recipient="Ms Berg", note="front door; left of the bell")
        agent.fail(second, "absent")
        assert agent.book.route() is not None
        assert outbox_count(agent.store.conn) >= 3
    finally:
        agent.stop()


def make_depot_store(path: Path) -> None:
    """A depot's store as today's code writes it: three vans' plans and two scans."""
    agent = depot(path)
    try:
        with agent.node.transaction() as tx:
            for i, plan in enumerate(morning(3, 10), start=1):
                agent.apply(tx, "cloud", make_envelope(src="cloud", seq=i, lc=i, body=plan))
        assert agent.scan("WL020011")["result"] == "ok"
        assert agent.scan("XX999")["result"] == "unknown"
        assert outbox_count(agent.store.conn) >= 2
    finally:
        agent.stop()


def outbox_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM sync_outbox").fetchone()[0])


def raw(path: Path, *statements: str) -> None:
    """Change a store behind Wayline's back (to set it up as another version left it)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def snapshot(path: Path) -> Tables:
    """Every table's columns and rows in rowid order (the sync version row left out: each
    test checks the versions itself)."""
    conn = sqlite3.connect(path)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {name: _table(conn, name, _columns(conn, name)) for name in names}
    finally:
        conn.close()


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]


def _table(conn: sqlite3.Connection, name: str, cols: list[str]) -> Rows:
    where = " WHERE key != 'schema'" if name == "sync_meta" else ""
    query = f'SELECT {", ".join(cols)} FROM "{name}"{where} ORDER BY rowid'
    return cols, conn.execute(query).fetchall()


def assert_kept(before: Tables, path: Path) -> None:
    """Every table, column and row of ``before`` is in the store at ``path``, unchanged."""
    conn = sqlite3.connect(path)
    try:
        changed = [
            name for name, (cols, _) in before.items() if _table(conn, name, cols) != before[name]
        ]
    finally:
        conn.close()
    assert not changed, f"tables changed: {changed}"
    assert sum(len(rows) for _, rows in before.values()) > 20, "the store held real rows"


def pragma(path: Path, sql: str) -> Any:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def schema_sql(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        conn.close()


def columns(path: Path, table: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


# -- a later step upgrades a store in place -------------------------------------------------


def _stop_labels(conn: sqlite3.Connection) -> None:
    """A backfill in Python: one label row per stop, from what the SQL already filled."""
    rows = conn.execute("SELECT stop_id, address_key FROM stops ORDER BY stop_id").fetchall()
    conn.executemany(
        "INSERT INTO stop_labels (stop_id, label) VALUES (?, ?)",
        [(sid, f"{sid}:{key}") for sid, key in rows],
    )


VEHICLE_STEP_2 = Step(
    "stop address keys and labels",
    """
    ALTER TABLE stops ADD COLUMN address_key TEXT;
    UPDATE stops SET address_key = upper(coalesce(address, '')) || ';' || order_id;
    CREATE TABLE stop_labels (stop_id TEXT PRIMARY KEY, label TEXT NOT NULL);
    """,
    _stop_labels,
)


def test_a_store_from_before_versions_is_adopted_as_version_1_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "van.db"
    make_vehicle_store(path)
    # what the code before versions left: the same tables, user_version 0, no sync version
    raw(path, "PRAGMA user_version = 0", "DELETE FROM sync_meta WHERE key = 'schema'")
    before, tables = snapshot(path), schema_sql(path)
    agent = vehicle(path)
    try:
        assert len(agent.book.stops()) == 6
    finally:
        agent.stop()
    assert pragma(path, "PRAGMA user_version") == 1
    assert pragma(path, "SELECT value FROM sync_meta WHERE key = 'schema'") == 1
    assert schema_sql(path) == tables, "adopting changes no table"
    assert snapshot(path) == before


def test_a_vehicle_store_is_upgraded_by_a_new_step_with_nothing_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "van.db"
    make_vehicle_store(path)
    assert pragma(path, "PRAGMA user_version") == 1
    before = snapshot(path)
    monkeypatch.setattr(edge.route_book, "SCHEMA", ROUTE_BOOK.extended(VEHICLE_STEP_2))
    agent = vehicle(path)
    try:
        assert pragma(path, "PRAGMA user_version") == 2
        assert_kept(before, path)
        assert "address_key" in columns(path, "stops")
        keys = agent.store.read("SELECT stop_id, order_id, address_key FROM stops")
        assert len(keys) == 6 and all(k.endswith(";" + o) for _, o, k in keys)
        labels = agent.store.read("SELECT count(*) FROM stop_labels")[0][0]
        assert labels == 6
        # and the van carries on with its shift on the upgraded store
        nxt = agent.status()["next"]
        agent.arrive(nxt["stop_id"])
        agent.deliver(nxt["stop_id"], recipient="Mr Yilmaz")
        assert outbox_count(agent.store.conn) > len(before["sync_outbox"])
    finally:
        agent.stop()
    agent = vehicle(path)  # opening it again takes no step
    try:
        assert agent.store.read("SELECT count(*) FROM stop_labels")[0][0] == 6
    finally:
        agent.stop()


def test_a_depot_store_is_upgraded_by_a_new_step_with_nothing_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "depot.db"
    make_depot_store(path)
    assert pragma(path, "PRAGMA user_version") == 1
    before = snapshot(path)
    step = Step(
        "scan shifts",
        """
        ALTER TABLE depot_scans ADD COLUMN shift TEXT NOT NULL DEFAULT 'early';
        CREATE INDEX depot_scans_shift ON depot_scans (shift, at_ms);
        UPDATE depot_scans SET shift = 'late' WHERE result != 'ok';
        """,
    )
    monkeypatch.setattr(edge.depot.depot_book, "SCHEMA", DEPOT_BOOK.extended(step))
    agent = depot(path)
    try:
        assert pragma(path, "PRAGMA user_version") == 2
        assert_kept(before, path)
        shifts = dict(agent.store.read("SELECT result, shift FROM depot_scans"))
        assert shifts == {"ok": "early", "unknown": "late"}
        assert agent.scan("WL010011")["result"] == "ok"  # the terminal works on it
    finally:
        agent.stop()


# -- a step cut short leaves the store as it was -------------------------------------------


def test_a_step_that_fails_midway_leaves_the_store_at_the_step_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "van.db"
    make_vehicle_store(path)
    before = snapshot(path)

    def cut(conn: sqlite3.Connection) -> None:
        raise RuntimeError("power cut")

    broken = Step("floors", "ALTER TABLE stops ADD COLUMN floor INTEGER;", cut)
    monkeypatch.setattr(edge.route_book, "SCHEMA", ROUTE_BOOK.extended(VEHICLE_STEP_2, broken))
    with pytest.raises(RuntimeError, match="power cut"):
        vehicle(path)
    assert pragma(path, "PRAGMA user_version") == 2, "the step before it stays"
    assert "floor" not in columns(path, "stops") and "address_key" in columns(path, "stops")
    assert_kept(before, path)

    bad_sql = Step("floors", "ALTER TABLE stops ADD COLUMN floor INTEGER; UPDATE nowhere SET x=1")
    monkeypatch.setattr(edge.route_book, "SCHEMA", ROUTE_BOOK.extended(VEHICLE_STEP_2, bad_sql))
    with pytest.raises(StoreError, match=r"step 3 \(floors\) failed.*stays at version 2"):
        vehicle(path)
    assert "floor" not in columns(path, "stops")
    assert_kept(before, path)


CUT_SHORT = """
import os, sys
from edge import route_book
from sync import Step, open_store

def cut(conn):
    os._exit(9)  # the power goes: no rollback, no close

route_book.SCHEMA = route_book.SCHEMA.extended(
    Step("floors", "ALTER TABLE stops ADD COLUMN floor INTEGER; UPDATE stops SET floor = 1", cut)
)
route_book.RouteBook(open_store(sys.argv[1]))
"""


def test_a_process_killed_mid_step_leaves_the_store_intact_and_upgradable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "van.db"
    make_vehicle_store(path)
    before = snapshot(path)
    done = subprocess.run(
        [sys.executable, "-c", CUT_SHORT, str(path)], cwd=ROOT, timeout=60, capture_output=True
    )
    assert done.returncode == 9, done.stderr.decode()
    assert pragma(path, "PRAGMA user_version") == 1
    assert "floor" not in columns(path, "stops")
    assert_kept(before, path)
    monkeypatch.setattr(edge.route_book, "SCHEMA", ROUTE_BOOK.extended(VEHICLE_STEP_2))
    vehicle(path).stop()  # the next start takes the step whole
    assert pragma(path, "PRAGMA user_version") == 2
    assert_kept(before, path)


# -- a store from a newer Wayline is refused untouched -------------------------------------


@pytest.mark.parametrize("kind", ["vehicle", "depot"])
def test_a_store_from_a_newer_wayline_is_refused_untouched(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.db"
    (make_vehicle_store if kind == "vehicle" else make_depot_store)(path)
    raw(path, "PRAGMA user_version = 7")
    data = path.read_bytes()
    book = "route book" if kind == "vehicle" else "depot book"
    with pytest.raises(SchemaVersionError) as refused:
        (vehicle if kind == "vehicle" else depot)(path)
    message = str(refused.value)
    assert "\n" not in message
    assert str(path) in message and f"{book} schema version 7" in message
    assert "this Wayline's 1" in message
    assert path.read_bytes() == data
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0


def test_newer_sync_tables_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    path = tmp_path / "van.db"
    make_vehicle_store(path)
    raw(path, "UPDATE sync_meta SET value = 4 WHERE key = 'schema'")
    data = path.read_bytes()
    with pytest.raises(SchemaVersionError, match=r"sync schema version 4, newer than this"):
        open_store(path)
    assert path.read_bytes() == data
    assert SYNC_SCHEMA.version == 1


def test_the_cli_refuses_a_newer_store_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "van.db"
    make_vehicle_store(path)
    raw(path, "PRAGMA user_version = 3")
    data = path.read_bytes()
    argv = ["vehicle", "--id", VAN, "--db", str(path), "--broker", "mqtt://127.0.0.1:1"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert str(path) in err and "version 3" in err and "upgrade Wayline" in err
    assert path.read_bytes() == data


# -- a recovered store keeps its version and indexes ---------------------------------------


def test_a_corrupt_store_is_recovered_at_its_version_with_its_indexes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allowed_errors: list[str]
) -> None:
    allowed_errors.extend(["failed its integrity check", "recovering"])
    path = tmp_path / "van.db"
    make_vehicle_store(path)
    monkeypatch.setattr(edge.route_book, "SCHEMA", ROUTE_BOOK.extended(VEHICLE_STEP_2))
    vehicle(path).stop()
    blob = bytes(range(256)) * 8
    raw(
        path,
        *(
            f"INSERT INTO photos VALUES ('{i:064x}', 'image/png', x'{blob.hex()}')"
            for i in range(400)
        ),
    )
    data = bytearray(path.read_bytes())
    page = pragma(path, "PRAGMA page_size")
    middle = len(data) // page // 2 * page
    data[middle : middle + page] = b"\xa5" * page
    path.write_bytes(bytes(data))
    agent = vehicle(path)
    try:
        assert list(tmp_path.glob("van.db.corrupt-*")), "quarantined beside the new store"
        assert agent.store.read("PRAGMA user_version")[0][0] == 2
        names = {r[0] for r in agent.store.read("SELECT name FROM sqlite_master")}
        assert {"parcels_stop", "stop_labels"} <= names
        assert len(agent.book.stops()) == 6
    finally:
        agent.stop()


# -- the cloud's migrations ------------------------------------------------------------------

TRIGGER_AND_LITERAL = """
CREATE TABLE delivery_notes (id INTEGER PRIMARY KEY, note TEXT NOT NULL);
CREATE TABLE delivery_notes_log (note_id INTEGER NOT NULL, what TEXT NOT NULL);
-- a trigger body holds statements of its own; a comment; holds semicolons too
CREATE TRIGGER delivery_notes_logged AFTER INSERT ON delivery_notes
BEGIN
    INSERT INTO delivery_notes_log (note_id, what) VALUES (new.id, 'added; logged');
    UPDATE delivery_notes SET note = trim(note) WHERE id = new.id;
END;
INSERT INTO delivery_notes (note) VALUES ('  ring twice; then knock  ');
/* the last statement has no semicolon */
INSERT INTO delivery_notes (note) VALUES ('leave at 3;30')
"""


def test_cloud_migrations_keep_triggers_and_literals_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cloud.store.composed, "MIGRATIONS", (*MIGRATIONS, TRIGGER_AND_LITERAL))
    store = open_store(tmp_path / "cloud.db")
    try:
        cs = CloudStore(store)
        assert store.read("SELECT max(version) FROM schema_migrations")[0][0] == len(MIGRATIONS) + 1
        assert store.read("SELECT note FROM delivery_notes ORDER BY id") == [
            ("ring twice; then knock",),
            ("leave at 3;30",),
        ]
        assert store.read("SELECT what FROM delivery_notes_log") == [("added; logged",)] * 2
        assert cs.migrate() == len(MIGRATIONS) + 1  # again: nothing to do
    finally:
        store.close()


def test_a_cloud_migration_that_fails_leaves_nothing_of_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = "CREATE TABLE depot_hours (depot_id TEXT PRIMARY KEY, opens TEXT)"
    bad = "CREATE TABLE half_done (x INTEGER); INSERT INTO missing_table VALUES (1)"
    monkeypatch.setattr(cloud.store.composed, "MIGRATIONS", (*MIGRATIONS, good, bad))
    path = tmp_path / "cloud.db"
    store = open_store(path)
    try:
        with pytest.raises(StoreError, match=rf"cloud migration {len(MIGRATIONS) + 2} failed"):
            CloudStore(store)
        names = {r[0] for r in store.read("SELECT name FROM sqlite_master")}
        assert "depot_hours" in names and "half_done" not in names
        assert store.read("SELECT max(version) FROM schema_migrations")[0][0] == len(MIGRATIONS) + 1
    finally:
        store.close()


def test_a_cloud_store_from_a_newer_wayline_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "cloud.db"
    store = open_store(path)
    CloudStore(store)
    store.close()
    raw(path, f"INSERT INTO schema_migrations (version) VALUES ({len(MIGRATIONS) + 5})")
    data = path.read_bytes()
    store = open_store(path)
    try:
        with pytest.raises(
            SchemaVersionError, match=rf"cloud schema version {len(MIGRATIONS) + 5}"
        ):
            CloudStore(store)
    finally:
        store.close()
    assert path.read_bytes() == data


# -- splitting SQL as SQLite does ------------------------------------------------------------


def test_statements_split_where_sqlite_ends_them() -> None:
    found = split_statements(TRIGGER_AND_LITERAL)
    assert len(found) == 5
    assert found[2].startswith("-- a trigger body") and found[2].endswith("END;")
    assert found[3] == "INSERT INTO delivery_notes (note) VALUES ('  ring twice; then knock  ');"
    assert found[4].endswith("VALUES ('leave at 3;30')\n\n;")
    conn = sqlite3.connect(":memory:")
    try:
        run_script(conn, "  -- nothing here;\n /* nor; here */ ")  # only comments: nothing runs
    finally:
        conn.close()
    with pytest.raises(ValueError, match="unfinished"):
        split_statements("INSERT INTO t VALUES ('open; string")
