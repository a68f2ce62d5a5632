"""The cellular modem: coverage holes cut the agent's real MQTT link; the outbox catches up."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from cloud import Coordinator
from edge.vehicle import VehicleAgent, VehicleSettings
from firmware_sim.hardware import CoverageMap, DeadZone, HardwareRig, ModemProxy, VanModel
from firmware_sim.world import SimClock
from sync import parse_broker_url
from tests.helpers import MosquittoBroker, unique_id, wait_for
from tests.support import FAST, assert_contiguous, cloud_log, make_plan, outbox_top


def test_coverage_map_by_place_and_time() -> None:
    tunnel = DeadZone("tunnel", kind="tunnel", lat=52.50, lon=13.40, radius_km=0.3)
    outage = DeadZone("cell outage", start_s=100, end_s=200)
    district = DeadZone("district", lat=52.55, lon=13.45, radius_km=1.0, start_s=50, end_s=80)
    cov = CoverageMap([tunnel, outage, district])
    assert not cov.online(0, (52.501, 13.401))
    assert cov.online(0, (52.52, 13.40))
    assert not cov.online(150, (52.52, 13.40)) and cov.online(200, (52.52, 13.40))
    assert not cov.online(60, (52.555, 13.45)) and cov.online(90, (52.555, 13.45))
    assert cov.dead_zone(0, None) is None
    with pytest.raises(ValueError, match="together"):
        DeadZone("half", lat=1.0)


def test_proxy_refuses_and_cuts_while_offline() -> None:
    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    upstream.listen(4)
    with upstream, ModemProxy(upstream.getsockname()) as modem:
        client = socket.create_connection(modem.address, timeout=2)
        server, _ = upstream.accept()
        client.sendall(b"ping")
        assert server.recv(16) == b"ping"
        server.sendall(b"pong")
        assert client.recv(16) == b"pong"
        modem.force(False)
        client.settimeout(2)
        assert client.recv(16) == b""  # cut
        wait_for(lambda: not modem.is_online)
        refused = socket.create_connection(modem.address, timeout=2)
        refused.settimeout(2)
        assert refused.recv(16) == b""
        for s in (client, server, refused):
            s.close()
        stats = modem.stats()
        assert (
            stats["disconnections"] == 1 and stats["refused"] == 1 and stats["offline_periods"] == 1
        )
        time.sleep(0.05)
        modem.force(None)
        wait_for(lambda: modem.is_online)
        assert modem.stats()["max_offline_s"] > 0, modem.offline_periods


@pytest.mark.broker
@pytest.mark.e2e
def test_a_dead_zone_cuts_mqtt_and_the_outbox_catches_up(
    broker: MosquittoBroker, cloud: Coordinator, tmp_path: Path
) -> None:
    van_id = unique_id("van")
    clock = SimClock(1_800_000_000.0, speed=1)
    van = VanModel(52.50, 13.40, clock=clock)
    # a tunnel 1 km north; the van is parked outside it
    tunnel = DeadZone("tunnel", kind="tunnel", lat=52.51, lon=13.40, radius_km=0.2)
    rig = HardwareRig(
        van,
        broker=parse_broker_url(broker.url),
        clock=clock,
        coverage=CoverageMap([tunnel]),
        period_s=0.05,
    )
    rig.start()
    agent = VehicleAgent(
        VehicleSettings(
            vehicle_id=van_id,
            db_path=tmp_path / "van.db",
            broker=rig.broker,
            sync=FAST,
            hardware=rig.hardware_settings(),
        ),
        clock=rig.agent_clock,
    )
    agent.start()
    try:
        reader = agent.hardware.reader
        assert reader is not None and rig.modem is not None
        wait_for(lambda: agent.node.connected, message="the van online through the modem")
        cloud.send_plan(make_plan(van_id, 4))
        wait_for(lambda: agent.book.route() is not None, timeout=20, message="the plan")

        van.place(52.51, 13.40)  # into the tunnel
        wait_for(lambda: not agent.node.connected, timeout=20, message="the link cut")
        samples_before = reader.stats["samples"]
        first = agent.status()["next"]["stop_id"]
        agent.arrive(first)
        agent.deliver(first, recipient="Tunnel shop")
        wait_for(lambda: reader.stats["samples"] > samples_before + 5, message="offline samples")
        assert agent.node.pending() > 0 and not agent.node.connected
        assert rig.modem.stats()["disconnections"] == 1

        van.place(52.50, 13.40)  # out again
        wait_for(lambda: agent.node.connected, timeout=20, message="the link back")
        wait_for(lambda: agent.node.pending() == 0, timeout=30, message="the outbox drained")
        top = outbox_top(agent)
    finally:
        agent.stop()
        rig.stop()
    log = cloud_log(cloud, van_id)
    assert_contiguous(log, top)
    kinds = [k for _, k in log]
    assert kinds.count("telemetry") >= 5 and kinds.count("stop_event") == 2
    facts = cloud.store.read(
        "SELECT stop_id, status FROM stop_facts WHERE vehicle_id = ?", (van_id,)
    )
    assert [tuple(r) for r in facts] == [(first, "delivered")]
    assert rig.modem.stats()["max_offline_s"] > 0
