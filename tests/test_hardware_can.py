"""CAN: vehicle signals as frames on a python-can virtual bus, decoded by the gateway."""

from __future__ import annotations

import can
import pytest

from edge.hardware import (
    BODY_ID,
    ODOMETER_ID,
    SPEED_ID,
    CanBusError,
    CanReader,
    CanSignals,
    decode_frame,
    encode_frames,
    open_bus,
)
from firmware_sim.hardware import CanSimulator
from tests.helpers import unique_id, wait_for


def decode_all(frames: list[can.Message]) -> CanSignals:
    signals = CanSignals()
    for frame in frames:
        updated = decode_frame(frame, signals)
        assert updated is not None
        signals = updated
    return signals


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
        CanSignals(
            speed_kmh=0.0,
            odometer_km=0.0,
            charge_pct=12.0,
            ignition=False,
            doors=0,
            temperature_c=-18.5,
        ),
        CanSignals(speed_kmh=130.0, odometer_km=5.0, ignition=True, doors=0b0011),
    ],
)
def test_frames_round_trip(signals: CanSignals) -> None:
    got = decode_all(encode_frames(signals))
    for name in (
        "speed_kmh",
        "odometer_km",
        "fuel_pct",
        "charge_pct",
        "ignition",
        "doors",
        "temperature_c",
    ):
        assert getattr(got, name) == pytest.approx(getattr(signals, name)), name
    assert got.door_open == signals.door_open
    assert got.seen == {"body", "speed", "odometer", "energy", "cargo_temp"}


def test_bad_and_unknown_frames() -> None:
    reader_bus = unique_id("can")
    with CanReader("virtual", reader_bus) as reader:
        reader.feed(can.Message(arbitration_id=SPEED_ID, data=b"\x01", is_extended_id=False))
        reader.feed(can.Message(arbitration_id=BODY_ID, data=b"\x07\xff", is_extended_id=False))
        reader.feed(can.Message(arbitration_id=0x7DF, data=b"\x02\x01\x0d", is_extended_id=False))
        reader.feed(
            can.Message(arbitration_id=ODOMETER_ID, data=b"\0\0\0\x64", is_extended_id=True)
        )
        assert reader.stats == {"frames": 4, "decoded": 0, "unknown": 2, "bad": 2}
        assert reader.signals() == CanSignals()


def test_frames_over_a_virtual_bus() -> None:
    channel = unique_id("can")
    state = {
        "signals": CanSignals(
            speed_kmh=31.5, odometer_km=1000.0, fuel_pct=50.0, ignition=True, temperature_c=5.0
        )
    }
    with (
        CanReader("virtual", channel) as reader,
        CanSimulator(lambda: state["signals"], channel=channel, period_s=0.01) as sim,
    ):
        wait_for(lambda: reader.signals().odometer_km == 1000.0, message="the first frames")
        state["signals"] = CanSignals(
            speed_kmh=0.0,
            odometer_km=1000.4,
            fuel_pct=49.5,
            ignition=False,
            doors=8,
            temperature_c=7.0,
        )
        got = wait_for(lambda: (s := reader.signals()).ignition is False and s, message="key off")
        assert got.door_open and got.speed_kmh == 0.0 and got.fuel_pct == 49.5
        odd = can.Message(arbitration_id=SPEED_ID, data=b"\x01\x02\x03", is_extended_id=False)
        sim.send(odd)
        wait_for(lambda: reader.stats["bad"] >= 1, message="the bad frame counted")
    assert reader.stats["decoded"] > 5


def test_an_unknown_interface_is_a_clear_error() -> None:
    with pytest.raises(CanBusError, match="cannot open CAN bus"):
        open_bus("no-such-interface", "x")
