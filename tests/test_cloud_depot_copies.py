"""The cloud sends each van's plan to the depot sorter that loads it, over the real broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud import CloudSettings, Coordinator
from edge.depot import DepotAgent, DepotSettings
from edge.depot.sample import route_plan
from sync import SyncSettings, parse_broker_url
from tests.helpers import MosquittoBroker, unique_id, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

FAST = SyncSettings(
    ack_timeout_s=0.3,
    ack_timeout_max_s=1.0,
    reconnect_min_s=0.1,
    reconnect_max_s=0.5,
    keepalive_s=5,
)


def depot(tmp_path: Path, name: str, url: str) -> DepotAgent:
    return DepotAgent(
        DepotSettings(
            depot_id=name, db_path=tmp_path / f"{name}.db", broker=parse_broker_url(url), sync=FAST
        )
    )


def test_sorters_get_the_plans_of_their_vans(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    cloud = Coordinator(
        CloudSettings(
            db_path=tmp_path / "cloud.db", broker=parse_broker_url(mosquitto.url), sync=FAST
        )
    )
    early = depot(tmp_path, unique_id("depot"), mosquitto.url)
    late = None
    cloud.start()
    early.start()
    try:
        wait_for(lambda: early.depot_id in cloud.db.depot_devices(), timeout=20)
        van = unique_id("van")
        plan = route_plan(1, 12).model_copy(update={"vehicle_id": van, "route_id": f"R-{van}"})
        cloud.send_plan(plan)  # the van's copy and the sorter's copy, one transaction
        wait_for(lambda: any(v["vehicle_id"] == van for v in early.vehicles()), timeout=20)
        barcode = plan.stops[0].parcels[0].barcode
        assert early.scan(barcode)["result"] == "ok"

        late = depot(
            tmp_path, unique_id("depot"), mosquitto.url
        )  # a sorter seen for the first time
        late.start()
        wait_for(lambda: any(v["vehicle_id"] == van for v in late.vehicles()), timeout=20)
        assert cloud.node.pending(van) >= 1  # the van itself has not connected: still queued
    finally:
        for agent in (early, late):
            if agent is not None:
                agent.stop()
        cloud.stop()


def test_a_released_van_learns_where_each_parcel_sits(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    from edge.vehicle import VehicleAgent, VehicleSettings

    url = parse_broker_url(mosquitto.url)
    cloud = Coordinator(CloudSettings(db_path=tmp_path / "cloud.db", broker=url, sync=FAST))
    sorter = depot(tmp_path, unique_id("depot"), mosquitto.url)
    van_id = unique_id("van")
    van = VehicleAgent(
        VehicleSettings(vehicle_id=van_id, db_path=tmp_path / "van.db", broker=url, sync=FAST)
    )
    for part in (cloud, sorter, van):
        part.start()
    try:
        wait_for(lambda: sorter.depot_id in cloud.db.depot_devices(), timeout=20)
        plan = route_plan(2, 8).model_copy(update={"vehicle_id": van_id, "route_id": f"R-{van_id}"})
        cloud.send_plan(plan)
        wait_for(lambda: van.book.route() is not None, timeout=20)
        wait_for(lambda: any(v["vehicle_id"] == van_id for v in sorter.vehicles()), timeout=20)
        for stop in plan.stops:
            for parcel in stop.parcels:
                assert sorter.scan(parcel.barcode)["result"] == "ok"
        sorter.release(van_id)

        def positions() -> dict[str, int | None]:
            return {
                p["parcel_id"]: p["load_position"]
                for s in plan.stops
                for p in van.book.parcels(s.stop_id)
            }

        wait_for(lambda: all(positions().values()), timeout=30)
        assert van.book.route()["version"] == 2
        placed = positions()
        assert len(set(placed.values())) == len(placed)  # one place per parcel
        first, last = plan.stops[0].parcels[0], plan.stops[-1].parcels[0]
        assert placed[first.parcel_id] < placed[last.parcel_id]  # first delivery nearest the door
    finally:
        for part in (van, sorter, cloud):
            part.stop()
