"""GNSS: NMEA sentences and gpsd reports from the simulators, read by the gateway's receiver."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
from pathlib import Path

import pytest

from edge.errors import SettingsError
from edge.hardware import (
    DeviceSource,
    GnssReceiver,
    GnssSourceError,
    GpsdParser,
    GpsdSource,
    HardwareSettings,
    NmeaParser,
    TcpNmeaSource,
    parse_gnss_spec,
)
from firmware_sim.hardware import (
    GnssSimulator,
    GnssState,
    GpsdSimulator,
    nmea_sentences,
    tpv_report,
)
from tests.helpers import free_port, wait_for

UTC = dt.datetime(2026, 11, 23, 10, 15, 30, tzinfo=dt.UTC)


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and text in r.getMessage()
    ]


@pytest.mark.parametrize(
    "lat,lon", [(52.5200, 13.4050), (-33.8688, 151.2093), (40.7128, -74.0060), (0.0001, -0.0001)]
)
def test_nmea_round_trip(lat: float, lon: float) -> None:
    state = GnssState(lat=lat, lon=lon, speed_kmh=42.5, heading_deg=271.3, utc=UTC, satellites=11)
    parser = NmeaParser()
    fixes = [parser.feed(line) for line in nmea_sentences(state)]
    fix = parser.fix
    assert fix is not None and fixes[0] is not None
    assert fix.lat == pytest.approx(lat, abs=2e-6)
    assert fix.lon == pytest.approx(lon, abs=2e-6)
    assert fix.speed_kmh == pytest.approx(42.5, abs=0.05)
    assert fix.heading_deg == pytest.approx(271.3, abs=0.05)
    assert fix.quality == 1 and fix.satellites == 11
    assert fix.utc == UTC
    assert parser.stats["bad_checksum"] == parser.stats["garbage"] == 0
    assert parser.stats["sentences"] == 3


def test_garbage_and_bad_checksums_are_counted_and_skipped() -> None:
    good = nmea_sentences(GnssState(lat=52.5, lon=13.4, utc=UTC))
    flipped = good[0].replace("5230", "5231")  # same checksum, other content
    lines = [
        b"\x00\xff\xfe garbage",
        "$GPGGA,123519,4807.038,N*00",
        flipped,
        "$GPRMC,,,",  # no checksum at all
        "",
        "$GPGSV,1,1,00*79",  # a sentence we do not use
        "A" * 2000,
        *good,
    ]
    parser = NmeaParser()
    for line in lines:
        parser.feed(line)  # never raises
    assert parser.stats["bad_checksum"] == 3
    assert parser.stats["garbage"] == 2
    assert parser.stats["ignored"] == 1
    assert parser.fix is not None and parser.fix.lat == pytest.approx(52.5)


def test_no_fix_sentences_give_no_position() -> None:
    parser = NmeaParser()
    for line in nmea_sentences(GnssState(lat=None, lon=None, utc=UTC)):
        assert parser.feed(line) is None
    assert parser.fix is None and parser.stats["no_fix"] == 2


def test_receiver_over_a_tcp_feed_with_noise(caplog: pytest.LogCaptureFixture) -> None:
    where = {"lat": 52.51, "lon": 13.39}
    sim = GnssSimulator(
        lambda: GnssState(lat=where["lat"], lon=where["lon"], speed_kmh=20, utc=UTC),
        period_s=0.02,
        garbage_every=3,
    )
    with sim, GnssReceiver(sim.address, reconnect_min_s=0.05) as rx:
        wait_for(lambda: rx.latest(), message="a first fix")
        where["lat"] = 52.53
        fix = wait_for(lambda: (f := rx.latest()) and f.lat > 52.52 and f, message="the move")
        assert fix.lon == pytest.approx(13.39, abs=1e-5)
        wait_for(lambda: rx.stats["bad_checksum"] >= 3 and rx.stats["garbage"] >= 3)
    assert rx.ended.is_set()
    # counted every time, logged once, naming the source
    checksum_lines = warnings_about(caplog, "bad checksum")
    assert len(checksum_lines) == 1 and sim.address in checksum_lines[0]
    assert len(warnings_about(caplog, "not a sentence")) == 1


def test_receiver_reconnects_when_the_feed_comes_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge.hardware")
    sim = GnssSimulator(lambda: GnssState(lat=52.5, lon=13.4, utc=UTC), period_s=0.02)
    port = sim.port
    with GnssReceiver(sim.address, reconnect_min_s=0.05, reconnect_max_s=0.2) as rx:
        with sim:
            wait_for(lambda: rx.latest(), message="a fix")
        wait_for(lambda: rx.stats["failures"] >= 4, message="several attempts while it is away")
        assert rx.stats["state"] == "down"
        again = GnssSimulator(
            lambda: GnssState(lat=48.1, lon=11.6, utc=UTC), period_s=0.02, port=port
        )
        with again:
            wait_for(lambda: (f := rx.latest()) and f.lat < 50, timeout=10, message="new fixes")
            assert rx.stats["reconnects"] == 1
            # the drop is one line, not one per attempt; the return is one line at INFO
            assert warnings_about(caplog, sim.address) == [
                f"GNSS {sim.address}: the peer closed the connection; "
                "retrying every 0.05-0.2 s until it answers"
            ]
            assert any("reading NMEA again" in r.getMessage() for r in caplog.records)


def test_receiver_reads_a_pipe_and_a_list() -> None:
    read_fd, write_fd = os.pipe()
    path = f"/proc/self/fd/{read_fd}"
    state = GnssState(lat=51.0, lon=7.0, utc=UTC)
    with os.fdopen(write_fd, "wb") as w, GnssReceiver(path) as rx:
        sim = GnssSimulator(lambda: state, period_s=0.02, pipe=w)
        with sim:
            wait_for(lambda: rx.latest(), message="a fix through the pipe")
    os.close(read_fd)
    done = threading.Event()
    with GnssReceiver(
        nmea_sentences(GnssState(lat=1.5, lon=2.5, utc=UTC)), on_fix=lambda f: done.set()
    ) as rx:
        assert rx.ended.wait(5) and done.is_set()
        assert rx.latest() is not None and rx.latest().lat == pytest.approx(1.5)


# -- specs -----------------------------------------------------------------------------------


def test_specs_parse_into_sources() -> None:
    assert parse_gnss_spec("serial:///dev/ttyACM0?baud=38400") == DeviceSource(
        Path("/dev/ttyACM0"), 38400, label="serial:///dev/ttyACM0?baud=38400"
    )
    assert parse_gnss_spec("/dev/ttyUSB1") == DeviceSource(
        Path("/dev/ttyUSB1"), 9600, label="/dev/ttyUSB1"
    )
    assert parse_gnss_spec("tcp://10.0.0.5:10110") == TcpNmeaSource(
        "10.0.0.5", 10110, label="tcp://10.0.0.5:10110"
    )
    assert parse_gnss_spec("gpsd://localhost") == GpsdSource(
        "localhost", 2947, label="gpsd://localhost"
    )
    assert parse_gnss_spec("gpsd://[::1]:2948").host == "::1"


@pytest.mark.parametrize(
    "spec,message",
    [
        ("not a source", "none of"),
        ("tcp://host", "needs a port"),
        ("tcp://host:99999", "does not parse"),
        ("tcp://host:10/x", "nothing after"),
        ("serial://dev/ttyACM0", "absolute device path"),
        ("serial:///dev/ttyACM0?baud=fast", "baud must be"),
        ("serial:///dev/ttyACM0?parity=E", "unknown option"),
        ("ftp://host:21", "none of"),
    ],
)
def test_bad_specs_are_one_clear_line(spec: str, message: str) -> None:
    with pytest.raises(GnssSourceError, match=message):
        parse_gnss_spec(spec)
    with pytest.raises(SettingsError, match=f"^hardware.gnss: .*{message}"):
        HardwareSettings(gnss=spec)


def test_a_missing_device_is_not_an_error_until_it_is_read() -> None:
    source = parse_gnss_spec("serial:///dev/ttyNOPE0")
    with pytest.raises(GnssSourceError, match="no device at /dev/ttyNOPE0"):
        source.open()


# -- gpsd --------------------------------------------------------------------------------------


def test_gpsd_tpv_reports_become_fixes() -> None:
    parser = GpsdParser()
    state = GnssState(lat=52.52, lon=13.405, speed_kmh=36.0, heading_deg=90.0, utc=UTC)
    for report in (
        {"class": "VERSION", "release": "3.25"},
        {"class": "SKY", "uSat": 9},
        tpv_report(state),
    ):
        parser.feed(json.dumps(report))
    fix = parser.fix
    assert fix is not None
    assert (fix.lat, fix.lon, fix.quality, fix.satellites) == (52.52, 13.405, 1, 9)
    assert fix.speed_kmh == pytest.approx(36.0, abs=0.01)
    assert fix.heading_deg == pytest.approx(90.0) and fix.utc == UTC
    assert parser.feed(json.dumps(tpv_report(GnssState(lat=None, lon=None, utc=UTC)))) is None
    assert parser.stats["no_fix"] == 1 and parser.stats["ignored"] == 1


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        "[1, 2]",
        '{"no": "class"}',
        '{"class": "TPV", "mode": 3, "lat": "52.5", "lon": 13.4}',
        '{"class": "TPV", "mode": 3, "lat": 95.0, "lon": 13.4}',
        '{"class": "TPV", "mode": 3, "lat": 52.5, "lon": 13.4, "speed": -1}',
        '{"class": "TPV", "mode": 3, "lat": 52.5, "lon": 13.4, "time": "yesterday"}',
        '{"class": "TPV", "mode": "3", "lat": 52.5, "lon": 13.4}',
        '{"class": "TPV", "mode": 3, "lat": NaN, "lon": 13.4}',
    ],
)
def test_gpsd_garbage_is_counted_and_skipped(line: str) -> None:
    parser = GpsdParser()
    assert parser.feed(line) is None
    assert parser.fix is None and parser.stats["garbage"] == 1


def test_receiver_watches_gpsd() -> None:
    where = {"lat": 48.1}
    sim = GpsdSimulator(
        lambda: GnssState(lat=where["lat"], lon=11.6, speed_kmh=18.0, utc=UTC), period_s=0.02
    )
    with sim, GnssReceiver(sim.address, reconnect_min_s=0.05) as rx:
        fix = wait_for(lambda: rx.latest(), message="a fix from gpsd")
        assert fix.speed_kmh == pytest.approx(18.0, abs=0.01)
        where["lat"] = 48.2
        wait_for(lambda: (f := rx.latest()) and f.lat > 48.15, message="the next fix")
        assert rx.stats["garbage"] == 0 and rx.stats["ignored"] >= 3  # VERSION, DEVICES, WATCH


def test_an_unreachable_gpsd_is_retried_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nobody listens there
    spec = f"gpsd://127.0.0.1:{port}"
    with GnssReceiver(spec, reconnect_min_s=0.02, reconnect_max_s=0.05) as rx:
        wait_for(lambda: rx.stats["failures"] >= 5, message="several refused attempts")
        assert rx.latest() is None and rx.stats["state"] == "down"
        # gpsd starts: the receiver finds it without anyone's help
        sim = GpsdSimulator(lambda: GnssState(lat=1.0, lon=2.0, utc=UTC), period_s=0.02, port=port)
        with sim:
            wait_for(lambda: rx.latest(), timeout=10, message="a fix once gpsd is up")
            refused = warnings_about(caplog, spec)
            assert len(refused) == 1 and "cannot connect" in refused[0], refused


def test_a_gpsd_that_floods_one_line_is_cut_off() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def flood() -> None:
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"{" + b"x" * 20_000 + b"\n")
                conn.sendall((json.dumps(tpv_report(GnssState(3.0, 4.0, utc=UTC))) + "\n").encode())
                conn.recv(100)

        feeder = threading.Thread(target=flood)
        feeder.start()
        with GnssReceiver(f"gpsd://127.0.0.1:{port}", reconnect_min_s=0.05) as rx:
            wait_for(lambda: rx.latest(), message="the fix after the flood")
            assert rx.stats["garbage"] >= 1
        feeder.join(5)
