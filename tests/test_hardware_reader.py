"""The hardware reader: GNSS fixes and CAN signals joined into Telemetry for the agent."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Literal

import pytest

from edge.errors import SettingsError
from edge.hardware import CanSignals, Fix, HardwareReader, HardwareSettings, build_sample
from edge.vehicle import VehicleAgent, VehicleSettings
from firmware_sim.hardware import DriftingClock, GnssVia, HardwareRig, VanModel
from firmware_sim.world import SimClock
from protocol import Telemetry
from tests.helpers import unique_id, wait_for


class _Fixes:
    def __init__(self, fix: Fix | None) -> None:
        self.fix = fix

    def latest(self, max_age_s: float | None = None) -> Fix | None:
        return self.fix


class _Signals:
    def __init__(self, signals: CanSignals) -> None:
        self.value = signals

    def signals(self) -> CanSignals:
        return self.value


FULL = CanSignals(
    speed_kmh=22.0,
    odometer_km=500.0,
    fuel_pct=40.0,
    ignition=True,
    doors=1,
    temperature_c=3.0,
    seen=frozenset({"ignition", "odometer_km", "speed_kmh", "doors"}),
)


def test_sample_takes_position_from_gnss_and_signals_from_can() -> None:
    fix = Fix(lat=52.5, lon=13.4, quality=1, speed_kmh=20.0, heading_deg=90.0)
    sample = build_sample(1_800_000_000_000, fix, FULL)
    assert sample == Telemetry(
        at=1_800_000_000_000,
        lat=52.5,
        lon=13.4,
        speed_kmh=22.0,
        heading_deg=90.0,
        odometer_km=500.0,
        fuel_pct=40.0,
        charge_pct=None,
        door_open=True,
        ignition=True,
        temperature_c=3.0,
    )


def test_no_sample_is_invented() -> None:
    got: list[Telemetry] = []
    fixes, signals = _Fixes(None), _Signals(CanSignals())
    reader = HardwareReader(fixes, signals, got.append, period_s=1)
    assert reader.sample() is None and reader.stats["no_fix"] == 1
    fixes.fix = Fix(lat=52.5, lon=13.4, quality=1)
    assert reader.sample() is None and reader.stats["no_signals"] == 1
    signals.value = _fresh(FULL)
    assert reader.sample() is not None and got and reader.stats["samples"] == 1


def _fresh(s: CanSignals) -> CanSignals:
    return replace(s, updated_at=time.monotonic())


@pytest.mark.allow_errors("the telemetry callback failed")
def test_a_failing_callback_is_counted_and_the_loop_goes_on() -> None:
    calls: list[int] = []

    def boom(sample: Telemetry) -> None:
        calls.append(1)
        raise RuntimeError("store full")

    fix = Fix(lat=52.5, lon=13.4, quality=1, received_at=time.monotonic())
    with HardwareReader(_Fixes(fix), _Signals(_fresh(FULL)), boom, period_s=0.01) as reader:
        wait_for(lambda: len(calls) >= 3)
    assert reader.stats["failed"] >= 3


def test_optional_signals_the_wire_refuses_are_sent_as_unknown() -> None:
    fix = Fix(lat=52.5, lon=13.4, quality=1)
    odd = replace(FULL, temperature_c=120.0, fuel_pct=100.4, charge_pct=-1.0)
    sample = build_sample(1_800_000_000_000, fix, odd)
    assert sample.temperature_c is None and sample.fuel_pct is None and sample.charge_pct is None
    assert sample.speed_kmh == 22.0 and sample.odometer_km == 500.0


def test_no_sample_without_the_odometer_or_the_ignition() -> None:
    got: list[Telemetry] = []
    fix = Fix(lat=52.5, lon=13.4, quality=1, received_at=time.monotonic())
    for seen in ({"speed_kmh", "ignition"}, {"odometer_km", "doors"}):
        partial = replace(FULL, seen=frozenset(seen), updated_at=time.monotonic())
        reader = HardwareReader(_Fixes(fix), _Signals(partial), got.append, period_s=1)
        assert reader.sample() is None and reader.stats["no_signals"] == 1
    stale = replace(FULL, updated_at=time.monotonic() - 60)
    reader = HardwareReader(_Fixes(fix), _Signals(stale), got.append, period_s=1)
    assert reader.sample() is None and reader.stats["no_signals"] == 1
    assert got == []


@pytest.mark.parametrize("via,profile", [("tcp", "obd2"), ("gpsd", "fms")])
def test_the_rig_hands_the_agent_settings_and_nothing_else(
    tmp_path: Path, via: GnssVia, profile: Literal["fms", "obd2"]
) -> None:
    clock = SimClock(1_800_000_000.0, speed=60)
    van = VanModel(52.52, 13.405, clock=clock, charge_pct=77.0, fuel_pct=None)
    rig = HardwareRig(
        van,
        broker=None,
        clock=clock,
        period_s=0.05,
        gnss_via=via,
        can_profile=profile,
        clock_offset_s=-90,
        clock_skew_ppm=200,
    )
    rig.start()
    hardware = rig.hardware_settings()
    assert hardware.gnss is not None and hardware.gnss.startswith(f"{via}://127.0.0.1:")
    assert hardware.can is not None and hardware.can.startswith("udp_multicast:ff11:")
    agent = VehicleAgent(
        VehicleSettings(
            vehicle_id=unique_id("van"), db_path=tmp_path / "van.db", broker=None, hardware=hardware
        ),
        clock=rig.agent_clock,
    )
    agent.start()
    rig.observe(agent.hardware)
    try:
        reader = agent.hardware.reader
        assert reader is not None
        wait_for(lambda: reader.stats["samples"] >= 3, message="samples into the agent")
        sample = reader.last
        assert sample is not None and sample.lat == pytest.approx(52.52, abs=1e-5)
        if profile == "obd2":  # the EV's battery answers PID 0x5B
            assert sample.charge_pct == pytest.approx(77.0, abs=0.4) and sample.fuel_pct is None
        else:  # FMS has no state of charge; a truck's doors are on the bus
            assert sample.charge_pct is None and sample.fuel_pct is None
            van.update(doors=8, ignition=False)
            off = wait_for(lambda: (s := reader.last) and not s.ignition and s, message="key off")
            assert off.door_open
        position = agent.book.position()
        assert position is not None and position["lat"] == pytest.approx(52.52, abs=1e-5)
        assert isinstance(rig.agent_clock, DriftingClock)
        stats = rig.stats()
        assert stats["clock_error_s"] == pytest.approx(-90, abs=1)
        assert stats["reader"]["samples"] >= 3 and stats["gnss"]["state"] == "up"
        assert abs(sample.at / 1000 - (clock() - 90)) < 30  # the agent's drifted time
    finally:
        agent.stop()
        rig.stop()


def test_van_drives_toward_a_target_in_simulated_time() -> None:
    van = VanModel(52.50, 13.40, cruise_kmh=36.0)
    target = (52.51, 13.40)  # 1.11 km north
    arrived = van.step(60, target)  # 0.6 km in a minute
    assert not arrived and van.speed_kmh > 0 and van.heading_deg == pytest.approx(0, abs=0.5)
    assert van.odometer_km == pytest.approx(12_000.6, abs=0.01)
    van.update(traffic_factor=2.0)
    van.step(60, target)  # half speed in the jam: 0.3 km
    assert van.odometer_km == pytest.approx(12_000.9, abs=0.01)
    van.update(broken=True)
    assert van.step(600, target) is False and van.speed_kmh == 0
    van.update(broken=False)
    assert van.step(600, target) is True
    with pytest.raises(ValueError, match="unknown van field"):
        van.update(warp_drive=True)


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"can_profile": "j1708"}, "can_profile"),
        ({"telemetry_interval_s": 0.0}, "telemetry_interval_s"),
        ({"reconnect_min_s": 0.0}, "reconnect_min_s"),
        ({"reconnect_min_s": 5.0, "reconnect_max_s": 1.0}, "reconnect_max_s"),
    ],
)
def test_hardware_settings_name_the_field_they_refuse(fields: dict, field: str) -> None:
    with pytest.raises(SettingsError, match=f"^hardware.{field}: "):
        HardwareSettings(**fields)
