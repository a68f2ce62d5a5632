"""Travel-time sources: great circle by hour, and an OSRM table served on loopback."""

from __future__ import annotations

import json
import math
import random
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from edge.eta import compute_etas
from edge.sequencer import Break, SequencingProblem, Stop
from edge.traveltime import (
    GreatCircleTravelTimes,
    OsrmTableTravelTimes,
    SpeedProfile,
    TravelTimeError,
    TravelTimes,
    haversine_m,
)

POINTS = [(52.5200, 13.4050), (52.5300, 13.4200), (52.5100, 13.3900)]


def test_haversine_one_degree_of_latitude() -> None:
    assert haversine_m((0.0, 0.0), (1.0, 0.0)) == pytest.approx(111_195, rel=1e-3)


def test_great_circle_uses_circuity_and_hour_of_day() -> None:
    src = GreatCircleTravelTimes()
    assert isinstance(src, TravelTimes)
    night = src.matrix(POINTS, datetime(2024, 5, 6, 3, 0))
    rush = src.matrix(POINTS, datetime(2024, 5, 6, 8, 0))
    d = haversine_m(POINTS[0], POINTS[1])
    assert night.metres[0][1] == round(d * 1.3)
    assert night.metres[0][0] == 0
    assert rush.seconds[0][1] > night.seconds[0][1]
    slow = GreatCircleTravelTimes(profile=SpeedProfile().with_factor(3, 0.5))
    assert slow.matrix(POINTS, datetime(2024, 5, 6, 3, 0)).seconds[0][1] > night.seconds[0][1]


def test_bad_points_and_profiles_are_refused() -> None:
    with pytest.raises(TravelTimeError):
        GreatCircleTravelTimes().matrix([(91.0, 0.0)], datetime(2024, 1, 1))
    with pytest.raises(TravelTimeError):
        SpeedProfile(factors=(1.0,) * 23)


class _Osrm(BaseHTTPRequestHandler):
    reply: object = None
    paths: list[str] = []

    def do_GET(self) -> None:
        _Osrm.paths.append(self.path)
        body = json.dumps(_Osrm.reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def osrm() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Osrm)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_osrm_table_is_read(osrm: str) -> None:
    _Osrm.reply = {
        "code": "Ok",
        "durations": [[0, 60.2, 70], [61, 0, 80], [71, 81, 0]],
        "distances": [[0, 900.5, 1000], [910, 0, 1200], [1010, 1210, 0]],
    }
    m = OsrmTableTravelTimes(osrm).matrix(POINTS, datetime(2024, 5, 6, 9))
    assert m.seconds[0][1] == 61 and m.metres[0][1] == 901
    assert _Osrm.paths[-1].startswith("/table/v1/driving/13.405000,52.520000;")
    assert "annotations=duration,distance" in _Osrm.paths[-1]


@pytest.mark.parametrize(
    "reply",
    [
        {"code": "NoRoute"},
        {
            "code": "Ok",
            "durations": [[0, None, 1], [1, 0, 1], [1, 1, 0]],
            "distances": [[0] * 3] * 3,
        },
        {"code": "Ok", "durations": [[0]]},
        ["not", "an", "object"],
    ],
)
def test_osrm_bad_replies_become_our_error(osrm: str, reply: object) -> None:
    _Osrm.reply = reply
    with pytest.raises(TravelTimeError):
        OsrmTableTravelTimes(osrm).matrix(POINTS, datetime(2024, 5, 6, 9))


def test_osrm_unreachable_becomes_our_error() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Osrm)
    port = server.server_address[1]
    server.server_close()
    with pytest.raises(TravelTimeError):
        OsrmTableTravelTimes(f"http://127.0.0.1:{port}", timeout_s=1).matrix(
            POINTS, datetime(2024, 5, 6, 9)
        )


def test_etas_wait_for_windows_and_take_the_break() -> None:
    m = GreatCircleTravelTimes().matrix(POINTS, datetime(2024, 5, 6, 10))
    start = 10 * 3600
    stops = (
        Stop("a", 1, ready=start + 3600, due=start + 7200, service=300),
        Stop("b", 2, ready=0, due=start + 600, service=120),
    )
    prob = SequencingProblem(
        m.seconds,
        m.metres,
        0,
        start,
        stops,
        0,
        break_=Break(start + 1800, start + 5400, 1800),
        current_order=("a", "b"),
    )
    etas = compute_etas(prob)
    a, b = etas
    assert a.arrival == start + m.seconds[0][1]
    # the wait for a's window holds the break (from its earliest start), then service
    assert a.service_start == start + 3600 and a.lateness == 0
    assert b.arrival == a.departure + m.seconds[1][2]
    assert b.lateness == b.service_start - (start + 600) > 0
    late_first = compute_etas(prob, ["b", "a"])
    assert late_first[0].lateness == 0


def test_the_matrix_matches_pair_by_pair_distances() -> None:
    """The whole matrix (computed at once) gives the integers each pair gives alone."""
    rng = random.Random(3)
    points = [(52.4 + rng.random() * 0.3, 13.2 + rng.random() * 0.4) for _ in range(60)]
    points[4] = points[9]  # two stops at one address
    source = GreatCircleTravelTimes(circuity=1.35)
    departure = datetime(2026, 11, 23, 8, 30)
    speed = source.profile.speed(departure)
    m = source.matrix(points, departure)
    for i, a in enumerate(points):
        for j, b in enumerate(points):
            metres = round(haversine_m(a, b) * 1.35)
            assert m.metres[i][j] == metres
            assert m.seconds[i][j] == math.ceil(metres / speed)
    assert m.metres[4][9] == 0 and m.seconds[9][4] == 0
