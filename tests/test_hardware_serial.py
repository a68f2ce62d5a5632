"""GNSS on a serial line: a pseudo-terminal behind a device path, read with pyserial."""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import pytest

from edge.hardware import GnssReceiver
from firmware_sim.hardware import GnssSimulator, GnssState, PtySerialPort
from tests.helpers import wait_for

UTC = dt.datetime(2026, 11, 23, 10, 15, 30, tzinfo=dt.UTC)


def records(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and text in r.getMessage()]


def test_nmea_over_a_pseudo_terminal_with_noise(tmp_path: Path) -> None:
    where = {"lat": 52.40}
    sim = GnssSimulator(
        lambda: GnssState(lat=where["lat"], lon=13.05, speed_kmh=12.0, utc=UTC),
        period_s=0.02,
        serial_link=tmp_path / "ttyGNSS",
        garbage_every=2,
    )
    with sim, GnssReceiver(sim.serial_address, reconnect_min_s=0.05) as rx:
        assert sim.serial_address == f"serial://{tmp_path / 'ttyGNSS'}?baud=9600"
        assert os.readlink(tmp_path / "ttyGNSS").startswith("/dev/pts/")
        wait_for(lambda: rx.latest(), message="a fix over the pty")
        where["lat"] = 52.41
        wait_for(lambda: (f := rx.latest()) and f.lat > 52.405, message="the next fix")
        wait_for(lambda: rx.stats["bad_checksum"] > 0 and rx.stats["garbage"] > 0)
        assert rx.stats["state"] == "up" and rx.stats["failures"] == 0


def test_a_device_missing_at_start_is_retried_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge.hardware")
    link = tmp_path / "ttyACM0"
    spec = f"serial://{link}?baud=9600"
    with GnssReceiver(spec, reconnect_min_s=0.02, reconnect_max_s=0.05) as rx:
        wait_for(lambda: rx.stats["failures"] >= 5, message="attempts on the missing device")
        assert rx.latest() is None and rx.stats["state"] == "down"
        missing = records(caplog, logging.WARNING, spec)
        assert missing == [
            f"GNSS {spec}: no device at {link} (No such file or directory); "
            "retrying every 0.02-0.05 s until it answers"
        ]
        sim = GnssSimulator(
            lambda: GnssState(lat=50.0, lon=8.0, utc=UTC), period_s=0.02, serial_link=link
        )
        with sim:  # the receiver is plugged in
            wait_for(lambda: rx.latest(), timeout=10, message="a fix once the device is there")
            assert len(records(caplog, logging.INFO, f"GNSS {spec}: reading NMEA again")) == 1


def test_a_device_that_goes_away_mid_shift_and_comes_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge.hardware")
    where = {"lat": 51.0}
    sim = GnssSimulator(
        lambda: GnssState(lat=where["lat"], lon=7.0, utc=UTC),
        period_s=0.02,
        serial_link=tmp_path / "ttyUSB0",
    )
    port = sim.serial
    assert isinstance(port, PtySerialPort)
    with sim, GnssReceiver(sim.serial_address, reconnect_min_s=0.02, reconnect_max_s=0.05) as rx:
        wait_for(lambda: rx.latest(), message="a first fix")
        first_device = port.device
        port.unplug()  # the USB cable comes out
        wait_for(lambda: rx.stats["state"] == "down", message="the receiver noticing")
        wait_for(lambda: rx.stats["failures"] >= 5, message="attempts while unplugged")
        assert rx.latest(max_age_s=0.5) is None or rx.latest(max_age_s=0.5).lat == 51.0
        gone = records(caplog, logging.WARNING, sim.serial_address)
        assert len(gone) == 1 and "went away" in gone[0], gone
        where["lat"] = 51.5
        port.plug()  # ... and goes back in: a new pty behind the same path
        assert port.device != first_device or port.plugs == 2
        wait_for(lambda: (f := rx.latest()) and f.lat > 51.2, timeout=10, message="fixes again")
        assert rx.stats["reconnects"] == 1
        assert len(records(caplog, logging.WARNING, sim.serial_address)) == 1
        assert len(records(caplog, logging.INFO, "reading NMEA again")) == 1
