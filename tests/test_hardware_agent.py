"""The real vehicle agent reads its hardware from its settings, and its telemetry reaches MQTT.

Every test runs a real ``VehicleAgent`` against a real Mosquitto, with real inputs: NMEA on
a pseudo-terminal or over TCP, gpsd's JSON over TCP, FMS frames encoded with
``deploy/fms.dbc`` or OBD-II answers on a ``udp_multicast`` CAN bus. The agent gets only a
``HardwareSettings``; what it sends is read off the broker (the van's up topic, decoded
with the protocol's codec). Then bad input, one kind per test: the agent keeps running,
says so in one line naming the input, and stores nothing it should not.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import can
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.hardware import CanSignals, HardwareSettings
from edge.vehicle import VehicleAgent, VehicleSettings
from firmware_sim.hardware import (
    CanSimulator,
    GnssSimulator,
    GnssState,
    GpsdSimulator,
    nmea_sentences,
    shared_bus_spec,
)
from protocol import Telemetry, TelemetryEnvelope, decode, up_topic
from sync import parse_broker_url
from tests.helpers import REPO_ROOT, MosquittoBroker, free_port, unique_id, wait_for
from tests.support import FAST

pytestmark = [pytest.mark.broker]

DBC = REPO_ROOT / "deploy" / "fms.dbc"
UTC = dt.datetime(2026, 11, 23, 10, 15, 30, tzinfo=dt.UTC)
HERE = (52.5163, 13.3777)
TRUCK = CanSignals(
    speed_kmh=42.5,
    odometer_km=181_234.5,
    fuel_pct=55.0,
    ignition=True,
    doors=0b1000,
    temperature_c=4.0,
)


class UpListener:
    """Subscribes to a van's up topic and decodes what it sends, as the cloud would."""

    def __init__(self, broker: MosquittoBroker, van: str) -> None:
        self.telemetry: list[Telemetry] = []
        self.undecodable = 0
        self._lock = threading.Lock()
        address = parse_broker_url(broker.url)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=unique_id("listener"), protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        self.client.subscribe(up_topic(van), qos=1)
        wait_for(lambda: self.client.is_connected(), message="the listener connected")

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            envelope = decode(msg.payload)
        except Exception:
            self.undecodable += 1
            return
        if isinstance(envelope, TelemetryEnvelope):
            with self._lock:
                self.telemetry.append(envelope.body)

    def samples(self) -> list[Telemetry]:
        with self._lock:
            return list(self.telemetry)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def agent_on(
    broker: MosquittoBroker, tmp_path: Path, hardware: HardwareSettings
) -> Iterator[tuple[VehicleAgent, UpListener]]:
    van = unique_id("van")
    listener = UpListener(broker, van)
    agent = VehicleAgent(
        VehicleSettings(
            vehicle_id=van,
            db_path=tmp_path / "van.db",
            broker=parse_broker_url(broker.url),
            sync=FAST,
            hardware=hardware,
        )
    )
    agent.start()
    try:
        wait_for(lambda: agent.node.connected, message="the agent online")
        yield agent, listener
    finally:
        agent.stop()
        listener.close()


def fast(**fields: object) -> HardwareSettings:
    base = {"telemetry_interval_s": 0.1, "reconnect_min_s": 0.05, "reconnect_max_s": 0.2}
    return HardwareSettings(**{**base, **fields})  # type: ignore[arg-type]


def warnings_naming(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and text in r.getMessage()
    ]


# -- telemetry from real inputs ----------------------------------------------------------------


def test_pty_nmea_and_fms_frames_become_telemetry_on_the_broker(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    # GNSS says 10 km/h, the wheels say 42.5: the bus wins, decoded through the DBC
    gnss = GnssSimulator(
        lambda: GnssState(*HERE, speed_kmh=10.0, heading_deg=80.0, utc=UTC),
        period_s=0.05,
        serial_link=tmp_path / "ttyACM0",
    )
    truck = {"signals": TRUCK}
    spec = shared_bus_spec()
    with (
        gnss,
        CanSimulator(lambda: truck["signals"], bus=spec, dbc=DBC, period_s=0.05),
        agent_on(broker, tmp_path, fast(gnss=gnss.serial_address, can=spec, can_dbc=DBC)) as (
            agent,
            up,
        ),
    ):
        wait_for(lambda: len(up.samples()) >= 3, timeout=20, message="telemetry on the broker")
        t = up.samples()[-1]
        assert t.speed_kmh == pytest.approx(42.5, abs=0.01)
        assert t.odometer_km == pytest.approx(181_234.5, abs=0.005)
        assert t.fuel_pct == pytest.approx(55.0, abs=0.4)
        assert t.temperature_c == pytest.approx(4.0, abs=0.04)
        assert t.ignition is True and t.door_open is True
        assert (t.lat, t.lon) == pytest.approx(HERE, abs=1e-5)
        assert t.heading_deg == pytest.approx(80.0, abs=0.1)
        truck["signals"] = replace(TRUCK, speed_kmh=0.0, ignition=False, doors=0)
        parked = wait_for(
            lambda: (s := up.samples()) and not s[-1].ignition and s[-1],
            message="the key turned off, on the broker",
        )
        assert parked.speed_kmh == 0.0 and not parked.door_open
        stats = agent.hardware.stats()
        assert stats["can"]["unknown"] == 0 and stats["can"]["bad"] == 0
        position = agent.book.position()
        assert position is not None and position["lat"] == pytest.approx(HERE[0], abs=1e-5)
    assert up.undecodable == 0


def test_gpsd_and_obd2_answers_become_telemetry_on_the_broker(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    van = CanSignals(speed_kmh=37.0, odometer_km=45_678.9, charge_pct=71.0, ignition=True)
    spec = shared_bus_spec()
    gpsd = GpsdSimulator(lambda: GnssState(*HERE, speed_kmh=20.0, utc=UTC), period_s=0.05)
    hardware = fast(gnss=gpsd.address, can=spec, can_profile="obd2")
    with (
        gpsd,
        CanSimulator(lambda: van, bus=spec, profile="obd2") as ecu,
        agent_on(broker, tmp_path, hardware) as (agent, up),
    ):
        wait_for(lambda: len(up.samples()) >= 3, timeout=20, message="telemetry on the broker")
        t = up.samples()[-1]
        assert t.speed_kmh == 37.0 and t.odometer_km == pytest.approx(45_678.9)
        assert t.charge_pct == pytest.approx(71.0, abs=0.4) and t.fuel_pct is None
        assert t.ignition is True and t.door_open is False  # OBD-II knows no doors
        assert (t.lat, t.lon) == pytest.approx(HERE, abs=1e-6)
        assert ecu.answered > 0 and agent.hardware.stats()["can"]["requests"] > 0


# -- bad input: the agent keeps running ----------------------------------------------------------


@pytest.mark.allow_errors(r"hardware.can_dbc: DBC file .*broken.dbc does not parse")
def test_a_dbc_that_does_not_parse_leaves_the_agent_running_without_can(
    broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "broken.dbc"
    broken.write_text(DBC.read_text()[:900] + "\nSG_ oops : nonsense\n")
    gnss = GnssSimulator(lambda: GnssState(*HERE, utc=UTC), period_s=0.05)
    hardware = fast(gnss=gnss.address, can=shared_bus_spec(), can_dbc=broken)
    with gnss, agent_on(broker, tmp_path, hardware) as (agent, up):
        wait_for(lambda: agent.hardware.gnss and agent.hardware.gnss.latest(), message="a fix")
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and str(broken) in errors[0], errors
        assert "runs without CAN" in errors[0]
        assert agent.hardware.stats()["can"]["state"] == "off"
        assert agent.status()["connected"] is True  # the agent serves on
        threading.Event().wait(0.5)
        assert up.samples() == [] and agent.book.position() is None  # nothing invented


def test_an_unreachable_gpsd_is_retried_and_the_agent_runs_on(
    broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = f"gpsd://127.0.0.1:{free_port()}"
    can_spec = shared_bus_spec()
    with (
        CanSimulator(lambda: TRUCK, bus=can_spec, dbc=DBC, period_s=0.05),
        agent_on(broker, tmp_path, fast(gnss=spec, can=can_spec, can_dbc=DBC)) as (agent, up),
    ):
        gnss = agent.hardware.gnss
        assert gnss is not None
        wait_for(lambda: gnss.stats["failures"] >= 5, message="attempts on gpsd")
        assert warnings_naming(caplog, spec) == [
            f"GNSS {spec}: cannot connect (Connection refused); "
            "retrying every 0.05-0.2 s until it answers"
        ]
        reader = agent.hardware.reader
        assert reader is not None
        wait_for(lambda: reader.stats["no_fix"] >= 3, message="samples skipped for want of a fix")
        assert agent.status()["connected"] is True
        assert up.samples() == [] and agent.book.position() is None
        assert agent.node.pending() == 0  # offline GNSS sends nothing, stores nothing


def test_a_receiver_unplugged_mid_shift_and_plugged_back(
    broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    where = {"lat": HERE[0]}
    gnss = GnssSimulator(
        lambda: GnssState(where["lat"], HERE[1], utc=UTC),
        period_s=0.05,
        serial_link=tmp_path / "ttyUSB0",
    )
    port = gnss.serial
    assert port is not None
    spec = shared_bus_spec()
    hardware = fast(gnss=gnss.serial_address, can=spec, can_dbc=DBC)
    with (
        gnss,
        CanSimulator(lambda: TRUCK, bus=spec, dbc=DBC, period_s=0.05),
        agent_on(broker, tmp_path, hardware) as (agent, up),
    ):
        reader = agent.hardware.reader
        assert reader is not None
        wait_for(lambda: len(up.samples()) >= 2, timeout=20, message="telemetry before")
        port.unplug()
        wait_for(lambda: reader.stats["no_fix"] >= 3, timeout=20, message="no fix, no samples")
        during = reader.stats["samples"]
        where["lat"] = HERE[0] + 0.01
        threading.Event().wait(0.3)
        assert reader.stats["samples"] == during  # nothing sent on a stale fix
        port.plug()
        wait_for(
            lambda: (s := up.samples()) and s[-1].lat > HERE[0] + 0.005,
            timeout=20,
            message="telemetry from the plugged-back receiver",
        )
        gone = warnings_naming(caplog, gnss.serial_address)
        assert len(gone) == 1 and "went away" in gone[0], gone
        assert agent.status()["connected"] is True


def test_noisy_nmea_and_foreign_frames_are_counted_and_never_stored(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    good = nmea_sentences(GnssState(*HERE, utc=UTC))
    far = nmea_sentences(GnssState(48.0, 11.0, utc=UTC))
    bad = [line[:-2] + ("00" if line[-2:] != "00" else "11") for line in far]  # bad checksums
    noise = "".join(f"{line}\r\n" for line in [*bad, *good, "\x00\xffjunk"]).encode()
    with socket.create_server(("127.0.0.1", 0)) as server:
        stop = threading.Event()

        def feed() -> None:
            server.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                with conn:
                    while not stop.wait(0.05):
                        try:
                            conn.sendall(noise)
                        except OSError:
                            break

        feeder = threading.Thread(target=feed)
        feeder.start()
        spec = shared_bus_spec()
        hardware = fast(gnss=f"tcp://127.0.0.1:{server.getsockname()[1]}", can=spec, can_dbc=DBC)
        try:
            with (
                CanSimulator(lambda: TRUCK, bus=spec, dbc=DBC, period_s=0.05) as truck,
                agent_on(broker, tmp_path, hardware) as (agent, up),
            ):
                wait_for(lambda: len(up.samples()) >= 3, timeout=20, message="telemetry")
                stats = agent.hardware.stats()
                assert stats["gnss"]["bad_checksum"] >= 3 and stats["gnss"]["garbage"] >= 1

                def foreign_frames_counted() -> bool:
                    for arb in (0x18FEE000, 0x18FEE500, 0x0CF00300):  # VD, HOURS, EEC2
                        truck.send(can.Message(arbitration_id=arb, data=bytes(8)))
                    return agent.hardware.stats()["can"]["unknown"] >= 3

                wait_for(foreign_frames_counted, interval=0.2, message="foreign frames counted")
                assert all(t.lat == pytest.approx(HERE[0], abs=1e-5) for t in up.samples())
                position = agent.book.position()
                assert position is not None and position["lat"] == pytest.approx(HERE[0], abs=1e-5)
        finally:
            stop.set()
            feeder.join(5)
