"""Regions solved in parallel worker processes give the plans a one-by-one solve gives."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from cloud import CloudSettings, Coordinator
from cloud.decisions import replay
from tests.test_cloud_support import D0, DAY, FAST, QUICK, add_orders, network

DEPOTS = ("dep1", "dep2", "dep3")


def _morning(path: Path, workers: int) -> tuple[Coordinator, list[dict[str, Any]]]:
    settings = CloudSettings(
        db_path=path, broker=None, sync=FAST, dispatch=replace(QUICK, workers=workers)
    )
    c = Coordinator(settings, clock=lambda: D0 + 7 * 3600)
    for k, depot in enumerate(DEPOTS):
        network(c, [f"{depot}-van1", f"{depot}-van2"], depot=depot)
        add_orders(c, 12 + 3 * k, depot)
    return c, c.dispatch.plan_day(DAY)


def test_parallel_regional_solves_equal_sequential_ones_and_replay(tmp_path: Path) -> None:
    seq, one_by_one = _morning(tmp_path / "seq.db", workers=1)
    par, side_by_side = _morning(tmp_path / "par.db", workers=2)
    try:
        assert [p["region"] for p in side_by_side] == [p["region"] for p in one_by_one]
        for a, b in zip(one_by_one, side_by_side, strict=True):
            da, db = seq.db.decision(a["decision_id"]), par.db.decision(b["decision_id"])
            assert da is not None and db is not None
            assert da["output"] == db["output"] and da["output_sha"] == db["output_sha"]
            assert da["params"]["stopped_by"] == "iterations"
            assert replay(par.db, b["decision_id"])["reproduced"]
        assert {p["status"] for p in side_by_side} == {"complete"}
    finally:
        seq.stop()
        par.stop()
