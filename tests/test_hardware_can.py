"""CAN: FMS frames decoded through deploy/fms.dbc, OBD-II PIDs, and the bus between processes."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import can
import pytest

from edge.errors import SettingsError
from edge.hardware import (
    DEFAULT_FMS_DBC,
    FMS_FIELDS,
    IGNORED,
    PIDS,
    CanBusError,
    CanReader,
    CanSignals,
    DbcDecoder,
    DbcError,
    HardwareSettings,
    ObdDecoder,
    load_dbc,
    open_bus,
    parse_can_spec,
    reply_frame,
    request_frame,
)
from firmware_sim.hardware import CanSimulator, shared_bus_spec
from tests.helpers import REPO_ROOT, unique_id, wait_for

DBC = REPO_ROOT / "deploy" / "fms.dbc"
FIELDS = ("speed_kmh", "odometer_km", "fuel_pct", "ignition", "doors", "temperature_c")


def fms() -> DbcDecoder:
    return DbcDecoder(load_dbc(DBC), name="fms.dbc")


def decode_all(decoder: DbcDecoder | ObdDecoder, frames: list[can.Message]) -> dict:
    out: dict = {}
    for frame in frames:
        updates = decoder.decode(frame)
        assert updates is not None, hex(frame.arbitration_id)
        out.update(updates)
    return out


def sim_frames(signals: CanSignals) -> list[can.Message]:
    sim = CanSimulator(lambda: signals, bus=f"virtual:{unique_id('can')}")
    try:
        return sim.frames()
    finally:
        sim.bus.shutdown()


# -- the DBC ----------------------------------------------------------------------------------


def test_the_shipped_dbc_is_fms_j1939() -> None:
    assert DEFAULT_FMS_DBC.read_bytes() == DBC.read_bytes()  # deploy/fms.dbc is the shipped one
    db = load_dbc(DBC)
    pgns = {m.name: (m.frame_id >> 8) & 0x3FFFF for m in db.messages}
    assert pgns["CCVS1"] == 0xFEF1 and pgns["VDHR"] == 0xFEC1 and pgns["DD"] == 0xFEFC
    assert pgns["EEC1"] == 0xF004 and pgns["ET1"] == 0xFEEE and pgns["DC2"] == 0xFDA5
    assert all(m.is_extended_frame and m.length == 8 for m in db.messages)
    speed = db.get_message_by_name("CCVS1").get_signal_by_name("WheelBasedVehicleSpeed")
    assert (speed.start, speed.length, speed.scale) == (8, 16, 1 / 256)  # SPN 84
    assert fms().missing == []


@pytest.mark.parametrize(
    "signals",
    [
        CanSignals(
            speed_kmh=48.37,
            odometer_km=123456.78,
            fuel_pct=63.5,
            ignition=True,
            doors=0b1000,
            temperature_c=4.3,
        ),
        CanSignals(speed_kmh=0.0, odometer_km=0.0, ignition=False, doors=0, temperature_c=-18.5),
        CanSignals(speed_kmh=130.0, odometer_km=5.0, ignition=True, doors=0b0011),
    ],
)
def test_fms_frames_round_trip_through_the_dbc(signals: CanSignals) -> None:
    got = decode_all(fms(), sim_frames(signals))
    assert got["speed_kmh"] == pytest.approx(signals.speed_kmh, abs=1 / 256)
    assert got["odometer_km"] == pytest.approx(signals.odometer_km, abs=0.005)
    assert got["ignition"] is signals.ignition and got["doors"] == signals.doors
    expected_fuel = None if signals.fuel_pct is None else pytest.approx(signals.fuel_pct, abs=0.4)
    assert got["fuel_pct"] == expected_fuel
    expected_temp = (
        None if signals.temperature_c is None else pytest.approx(signals.temperature_c, abs=0.04)
    )
    assert got["temperature_c"] == expected_temp


def test_frames_match_by_pgn_whatever_the_source_address() -> None:
    decoder = fms()
    db = decoder.db
    ccvs = db.get_message_by_name("CCVS1")
    raw = {sig.name: (1 << sig.length) - 1 for sig in ccvs.signals}  # all "not available"
    raw["WheelBasedVehicleSpeed"] = 42 * 256
    data = ccvs.encode(raw, scaling=False, padding=True)
    for arb in (0x18FEF100, 0x18FEF1EE, 0x0CFEF117):  # engine, tachograph, other priority
        got = decoder.decode(can.Message(arbitration_id=arb, data=data, is_extended_id=True))
        assert got is not None and got["speed_kmh"] == pytest.approx(42.0)
    # the same number as an 11-bit id is another frame
    assert (
        decoder.decode(can.Message(arbitration_id=0x7F1, data=data, is_extended_id=False)) is None
    )


def test_not_available_and_error_values_become_unknown() -> None:
    decoder = fms()
    na = bytes([0xFF] * 8)
    for arb in (0x18FEF100, 0x18FEFC17):  # CCVS1, DD
        got = decoder.decode(can.Message(arbitration_id=arb, data=na, is_extended_id=True))
        assert got is not None and set(got.values()) == {None}
    # required signals are never set to "unknown": the last good value stays
    assert (
        decoder.decode(can.Message(arbitration_id=0x18FEC1EE, data=na, is_extended_id=True))
        == IGNORED
    )


def test_reader_counts_unknown_and_bad_frames_and_logs_each_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edge.hardware")
    reader = CanReader("virtual:unused", fms())
    good = sim_frames(CanSignals(speed_kmh=30.0, odometer_km=10.0, ignition=True))
    odd = [
        can.Message(arbitration_id=0x18FEE000, data=bytes(8), is_extended_id=True),  # not in DBC
        can.Message(arbitration_id=0x18FEE100, data=bytes(8), is_extended_id=True),
        can.Message(arbitration_id=0x123, data=b"\x01", is_extended_id=False),
        can.Message(arbitration_id=0x18FEF100, data=b"\x01\x02", is_extended_id=True),  # short
        can.Message(arbitration_id=0x18FEC1EE, data=bytes(9), is_extended_id=True),  # long
    ]
    for frame in [*odd, *good, *odd]:
        reader.feed(frame)
    assert reader.stats["unknown"] == 6 and reader.stats["bad"] == 4
    signals = reader.signals()
    assert signals.speed_kmh == pytest.approx(30.0) and signals.odometer_km == pytest.approx(10.0)
    assert {"odometer_km", "ignition"} <= signals.seen
    messages = [r.getMessage() for r in caplog.records]
    assert sum("frames fms.dbc does not describe are ignored" in m for m in messages) == 1
    assert sum("malformed frame" in m for m in messages) == 1


# -- the spec and the DBC file as bad input ---------------------------------------------------


def test_can_specs() -> None:
    spec = parse_can_spec("udp_multicast:ff11::7761:1?port=43113&hop_limit=1")
    assert (spec.interface, spec.channel) == ("udp_multicast", "ff11::7761:1")
    assert dict(spec.options) == {"port": 43113, "hop_limit": 1}
    assert parse_can_spec("socketcan:can0").label == "socketcan:can0"


@pytest.mark.parametrize(
    "spec,message",
    [
        ("can0", "INTERFACE:CHANNEL"),
        ("socketcan:", "INTERFACE:CHANNEL"),
        ("warpcan:can0", "no interface 'warpcan'"),
        ("socketcan:can0?bitrate", "bad option"),
    ],
)
def test_bad_can_specs_are_one_clear_line(spec: str, message: str) -> None:
    with pytest.raises(CanBusError, match=message):
        parse_can_spec(spec)
    with pytest.raises(SettingsError, match=f"^hardware.can: .*{message}"):
        HardwareSettings(can=spec)


def test_a_dbc_that_does_not_parse_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.dbc"
    bad.write_text(DBC.read_text().replace("BO_ 2566844672 CCVS1: 8 Engine", "BO_ CCVS1: 8"))
    with pytest.raises(DbcError, match=re.escape(f"DBC file {bad} does not parse")):
        load_dbc(bad)
    with pytest.raises(DbcError, match=r"cannot read DBC file .*nope\.dbc"):
        load_dbc(tmp_path / "nope.dbc")
    empty = tmp_path / "empty.dbc"
    empty.write_text('VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_:\n')
    with pytest.raises(DbcError, match="describes no CAN messages"):
        load_dbc(empty)


def test_an_interface_that_is_not_there_is_retried_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(CanBusError, match="cannot open CAN bus socketcan:wlcan9"):
        open_bus("socketcan:wlcan9")
    with CanReader("socketcan:wlcan9", fms(), reconnect_min_s=0.02, reconnect_max_s=0.05) as r:
        wait_for(lambda: r.link.failures >= 5, message="attempts on the missing interface")
        assert r.link.state == "down"
    lines = [m.getMessage() for m in caplog.records if "socketcan:wlcan9" in m.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("CAN socketcan:wlcan9: "), lines


# -- OBD-II -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pid,value,decoded",
    [
        (0x0D, 57.0, 57.0),
        (0x2F, 63.5, pytest.approx(63.5, abs=0.4)),
        (0x05, 91.0, 91.0),
        (0x5B, 77.0, pytest.approx(77.0, abs=0.4)),
        (0xA6, 123456.7, pytest.approx(123456.7)),
    ],
)
def test_obd_answers_decode(pid: int, value: float, decoded: object) -> None:
    got = ObdDecoder().decode(reply_frame(pid, value, ecu=1))
    assert got == {PIDS[pid].field: decoded, "ignition": True}


def test_obd_requests_and_odd_answers() -> None:
    decoder = ObdDecoder()
    assert [bytes(f.data)[:3] for f in decoder.requests()] == [bytes([2, 1, pid]) for pid in PIDS]
    assert all(f.arbitration_id == 0x7DF and not f.is_extended_id for f in decoder.requests())
    assert decoder.decode(request_frame(0x0D)) == IGNORED  # our own request, looped back

    def std(arb: int, data: bytes) -> can.Message:
        return can.Message(arbitration_id=arb, data=data, is_extended_id=False)

    assert decoder.decode(std(0x7E8, bytes([3, 0x7F, 0x01, 0x12, 0, 0, 0, 0]))) == IGNORED
    assert decoder.decode(std(0x7E8, bytes([3, 0x41, 0x0C, 0x12, 0, 0, 0, 0]))) == IGNORED
    assert decoder.decode(std(0x7E0, bytes(8))) is None
    assert decoder.decode(reply_frame(0x0D, 10.0)) is not None
    with pytest.raises(ValueError, match="not a single frame"):
        decoder.decode(std(0x7E8, bytes([0x10, 0x14, 0x49, 2])))
    with pytest.raises(ValueError, match="0xA6 answered with 2 data bytes"):
        decoder.decode(std(0x7E9, bytes([4, 0x41, 0xA6, 1, 2])))


def test_obd_over_a_shared_bus_stops_answering_with_the_key_off() -> None:
    spec = shared_bus_spec()
    van = {
        "signals": CanSignals(speed_kmh=33.0, odometer_km=4321.5, charge_pct=64.0, ignition=True)
    }
    with (
        CanSimulator(lambda: van["signals"], bus=spec, profile="obd2") as ecu,
        CanReader(spec, ObdDecoder(), poll_s=0.05) as reader,
    ):
        got = wait_for(
            lambda: (s := reader.signals()).odometer_km and s.charge_pct and s,
            message="answers to the PIDs",
        )
        assert got.speed_kmh == 33.0 and got.odometer_km == pytest.approx(4321.5)
        assert got.charge_pct == pytest.approx(64.0, abs=0.4) and got.ignition is True
        assert got.fuel_pct is None  # an electric van: 0x2F is never answered
        van["signals"] = replace(van["signals"], ignition=False)
        answered = ecu.answered
        wait_for(lambda: reader.stats["requests"] > 20 + answered, message="more requests")
        assert ecu.answered - answered <= len(PIDS)  # at most the round in flight


# -- between processes ---------------------------------------------------------------------------

VAN_PROCESS = textwrap.dedent(
    """
    import sys, time
    from edge.hardware import CanSignals
    from firmware_sim.hardware import CanSimulator
    signals = CanSignals(speed_kmh=61.25, odometer_km=98765.4, fuel_pct=41.2, ignition=True,
                         doors=0b0100, temperature_c=3.5)
    with CanSimulator(lambda: signals, bus=sys.argv[1], period_s=0.05):
        time.sleep(float(sys.argv[2]))
    """
)


def test_fms_frames_from_another_process_decode_through_the_dbc() -> None:
    spec = shared_bus_spec()
    assert spec.startswith("udp_multicast:ff11:")  # interface-local: never leaves the machine
    with CanReader(spec, fms()) as reader:
        van = subprocess.Popen([sys.executable, "-c", VAN_PROCESS, spec, "20"], cwd=REPO_ROOT)
        try:
            got = wait_for(
                lambda: (s := reader.signals()).odometer_km and s.doors and s,
                timeout=20,
                message="frames from the van's process",
            )
        finally:
            van.terminate()
            van.wait(10)
    assert got.speed_kmh == pytest.approx(61.25, abs=1 / 256)
    assert got.odometer_km == pytest.approx(98765.4, abs=0.005)
    assert got.fuel_pct == pytest.approx(41.2, abs=0.4) and got.temperature_c == pytest.approx(3.5)
    assert got.ignition is True and got.doors == 0b0100 and got.coolant_c is None
    assert reader.stats["bad"] == 0 and reader.stats["unknown"] == 0


def test_the_hardware_doc_lists_every_signal_and_pid() -> None:
    doc = (REPO_ROOT / "docs" / "hardware.md").read_text()
    missing = [f.signal for f in FMS_FIELDS if f.signal.rstrip("1234") not in doc]
    missing += [f"0x{pid:02X}" for pid in PIDS if f"`0x{pid:02X}`" not in doc]
    assert not missing, f"docs/hardware.md does not mention {missing}"
