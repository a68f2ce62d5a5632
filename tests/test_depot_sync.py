"""The depot agent against a real broker and a real cloud coordinator.

Plans arrive on the depot's downlink; then the network is down for the whole sort; when it
comes back, every scan, exception and release reaches the coordinator once and in order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud import CloudSettings, Coordinator
from edge.depot import DepotAgent, DepotSettings
from edge.depot.sample import OTHER_DEPOT, morning, route_plan
from protocol import RoutePlan, decode
from sync import SyncSettings, parse_broker_url
from tests.helpers import MosquittoBroker, wait_for

FAST = SyncSettings(
    ack_timeout_s=0.3,
    ack_timeout_max_s=1.0,
    reconnect_min_s=0.1,
    reconnect_max_s=0.5,
    keepalive_s=5,
)


def send_to_depot(coordinator: Coordinator, depot_id: str, *plans: RoutePlan) -> None:
    """The cloud's copy of each vehicle's plan on the depot's downlink."""
    with coordinator.node.transaction() as tx:
        for plan in plans:
            tx.emit(depot_id, plan)


@pytest.mark.broker
@pytest.mark.e2e
def test_network_down_for_the_whole_sort_then_everything_syncs_in_order(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    address = parse_broker_url(broker.url)
    coordinator = Coordinator(CloudSettings(tmp_path / "cloud.db", address, sync=FAST))
    depot = DepotAgent(DepotSettings("depot-a", tmp_path / "depot.db", address, sync=FAST))
    coordinator.start()
    depot.start()
    try:
        plans = morning(4, 30)
        send_to_depot(coordinator, "depot-a", *plans, route_plan(9, 5, depot=OTHER_DEPOT))
        # an older copy arriving late is refused, and the stream moves on
        send_to_depot(coordinator, "depot-a", plans[0])
        wait_for(lambda: len(depot.book.routes()) == 4, message="the depot has the plans")
        wait_for(lambda: depot.node.applied_upto("cloud") == 6, message="all six applied")
        assert depot.store.read("SELECT count(*) FROM sync_rejected")[0][0] == 1
        wait_for(lambda: coordinator.node.pending() == 0, message="plans acked")

        broker.stop()
        wait_for(lambda: not depot.node.connected, message="the depot sees the outage")
        codes = [p.barcode for plan in plans for s in plan.stops for p in s.parcels]
        for i, code in enumerate(codes):
            raw = f" {code.lower()}\r\n" if i % 7 == 0 else code
            assert depot.scan(raw)["result"] == "ok"
        assert depot.scan(codes[3])["result"] == "duplicate"
        assert depot.scan("XX0001")["result"] == "unknown"
        assert depot.scan("WL090011")["result"] == "other_depot"
        for plan in plans:
            assert depot.release(plan.vehicle_id)["missing"] == []
        emitted = depot.node.pending()
        assert emitted == len(codes) * 2 + 3 + 2 + 4  # scans, loaded, problems, releases
        assert not coordinator.node.stats.get("applied")

        broker.start()
        wait_for(lambda: depot.node.pending() == 0, timeout=60, message="the outbox drains")
        events = coordinator.db.query(
            "SELECT seq, kind, payload FROM events WHERE src = 'depot-a' ORDER BY seq"
        )
        assert [e["seq"] for e in events] == list(range(1, emitted + 1)), "once each, in order"
        bodies = [decode(e["payload"]).body for e in events]
        local = [
            r[0]
            for r in depot.store.read(
                "SELECT scan_id FROM depot_scans WHERE result NOT IN "
                "('invalid', 'confirmed', 'label') ORDER BY rowid"
            )
        ]
        sent = [b.scan_id for b in bodies if getattr(b, "result", "loaded") != "loaded"]
        assert sent == local, "the cloud saw the scans in the order they happened"
        scans = coordinator.db.query("SELECT result, count(*) AS n FROM scans GROUP BY result")
        assert {s["result"]: s["n"] for s in scans} == {
            "ok": len(codes),
            "loaded": len(codes),
            "duplicate": 1,
            "unknown": 1,
            "other_depot": 1,
        }
        loaded = coordinator.db.query(
            "SELECT vehicle_id, container, position FROM scans WHERE result = 'loaded' "
            "AND vehicle_id = 'VAN-01' ORDER BY position"
        )
        assert [r["position"] for r in loaded] == list(range(1, len(loaded) + 1))
        cats = coordinator.db.query(
            "SELECT category, count(*) AS n FROM exceptions WHERE src = 'depot-a' GROUP BY category"
        )
        assert {c["category"]: c["n"] for c in cats} == {
            "unknown_parcel": 1,
            "misrouted_parcel": 1,
            "ready_to_depart": 4,
        }
    finally:
        depot.stop()
        coordinator.stop()
