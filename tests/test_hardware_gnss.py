"""GNSS: NMEA sentences built by the simulator, parsed by the gateway's receiver (pynmea2)."""

from __future__ import annotations

import datetime as dt
import os
import threading

import pytest

from edge.hardware import GnssReceiver, GnssSourceError, NmeaParser
from firmware_sim.hardware import GnssSimulator, GnssState, nmea_sentences
from tests.helpers import wait_for

UTC = dt.datetime(2026, 11, 23, 10, 15, 30, tzinfo=dt.UTC)


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


def test_receiver_over_a_tcp_feed_with_noise() -> None:
    where = {"lat": 52.51, "lon": 13.39}
    sim = GnssSimulator(
        lambda: GnssState(lat=where["lat"], lon=where["lon"], speed_kmh=20, utc=UTC),
        period_s=0.02,
        garbage_every=3,
    )
    with sim, GnssReceiver(sim.address, reconnect_s=0.05) as rx:
        wait_for(lambda: rx.latest(), message="a first fix")
        where["lat"] = 52.53
        fix = wait_for(lambda: (f := rx.latest()) and f.lat > 52.52 and f, message="the move")
        assert fix.lon == pytest.approx(13.39, abs=1e-5)
        wait_for(lambda: rx.stats["bad_checksum"] > 0 and rx.stats["garbage"] > 0)
    assert rx.ended.is_set()


def test_receiver_reconnects_when_the_feed_comes_back() -> None:
    sim = GnssSimulator(lambda: GnssState(lat=52.5, lon=13.4, utc=UTC), period_s=0.02)
    port = sim.port
    with GnssReceiver(sim.address, reconnect_s=0.05) as rx:
        with sim:
            wait_for(lambda: rx.latest(), message="a fix")
        wait_for(lambda: rx.stats["reconnects"] >= 1, message="the receiver noticing the drop")
        again = GnssSimulator(
            lambda: GnssState(lat=48.1, lon=11.6, utc=UTC), period_s=0.02, port=port
        )
        with again:
            wait_for(lambda: (f := rx.latest()) and f.lat < 50, timeout=10, message="new fixes")


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


def test_bad_sources_are_refused_clearly() -> None:
    with pytest.raises(GnssSourceError, match="no NMEA device"):
        GnssReceiver("/dev/ttyNOPE0")
    with pytest.raises(GnssSourceError, match="tcp://host:port"):
        GnssReceiver("not a source")
