"""A vehicle's newest plan is the highest version of its newest route, whatever the clocks."""

from __future__ import annotations

from pathlib import Path

from cloud.route_plans import without_stop
from cloud.store import CloudStore
from sync import open_store
from tests.support import make_plan


def test_a_plan_stamped_earlier_but_saved_later_is_still_the_newest(tmp_path: Path) -> None:
    store = open_store(tmp_path / "cloud.db")
    try:
        db = CloudStore(store)
        db.migrate()
        with store.transaction() as conn:
            db.save_plan(conn, make_plan("van-1", 4, version=1), 1_000)
            db.save_plan(conn, make_plan("van-1", 4, version=2), 5_000)
            # a re-plan that read its clock before ingest saved version 2, saved after it
            db.save_plan(conn, make_plan("van-1", 3, version=3), 4_000)
            latest = db.latest_plan_of("van-1", conn)
            assert latest is not None and latest.version == 3
            # so the next version a repair makes is new, not version 3 again
            db.save_plan(conn, without_stop(latest, latest.stops[0].stop_id), 6_000)
        later = db.latest_plan_of("van-1")
        assert later is not None and (later.version, len(later.stops)) == (4, 2)
    finally:
        store.close()
