"""Golden wire bytes: one checked-in msgpack file per message kind (and a few variants).

Each fixed envelope below is fully specified (id, ts, seq, lc, every body field that matters),
so encoding it must give exactly the checked-in bytes and decoding those bytes must give the
envelope back. A change to the bytes is a change to the wire: make it on purpose with

    WAYLINE_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_protocol_golden.py

(or ``.venv/bin/python -m tests.test_protocol_golden``), then review the diff of
``tests/golden/`` and describe the wire change in ``docs/protocol.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import protocol
from protocol import (
    Ack,
    BreakRule,
    DeviceState,
    Envelope,
    ExceptionReport,
    Location,
    Parcel,
    ParcelScan,
    PlannedStop,
    ProofOfDelivery,
    ResendRequest,
    RoutePlan,
    RouteSequenceReport,
    SequencedStop,
    StopEvent,
    Telemetry,
    TimeWindow,
    decode,
    encode,
    make_envelope,
)

GOLDEN_DIR = Path(__file__).parent / "golden"
REGEN = os.environ.get("WAYLINE_REGEN_GOLDEN") == "1"

# 2026-09-14 08:00:00 UTC, the morning of a delivery day.
T0_S = 1_789_372_800
T0_MS = T0_S * 1000
VAN = "van-0042"
DEPOT = "depot-ams-1"
CLOUD = "cloud"


def _msg_id(n: int) -> str:
    return f"{n:032x}"


def _loc(lat: float, lon: float, address: str | None = None) -> Location:
    return Location(lat=lat, lon=lon, address=address)


def golden_envelopes() -> dict[str, Envelope]:
    """The fixed envelopes, by golden file stem. Every kind has a stem equal to its name."""
    delivered = StopEvent(
        event_id="ev-0001",
        route_id="r-2026-09-14-0042",
        plan_version=3,
        stop_id="s-017",
        type="delivered",
        at=T0_MS + 5_400_000,
        note="left with the neighbour at no. 14",
        proof=ProofOfDelivery(
            recipient_name="J. de Vries",
            signature_svg='<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0L10 10"/></svg>',
            photo_sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            photo_bytes=184_233,
            barcodes=("JVGL0612345678", "JVGL0612345679"),
        ),
        lat=52.370216,
        lon=4.895168,
    )
    failed = StopEvent(
        event_id="ev-0002",
        route_id="r-2026-09-14-0042",
        plan_version=3,
        stop_id="s-018",
        type="failed",
        at=T0_MS + 5_700_000,
        reason="absent",
        note="nobody home, card left",
        lat=52.371,
        lon=4.8962,
    )
    plan = RoutePlan(
        route_id="r-2026-09-14-0042",
        vehicle_id=VAN,
        version=3,
        day="2026-09-14",
        depot=_loc(52.3105, 4.9392, "Depot Amsterdam-Zuidoost, Hoogoorddreef 60"),
        start_at=T0_S,
        end_at=T0_S + 9 * 3600,
        capacity_kg=1200.0,
        stops=(
            PlannedStop(
                stop_id="s-017",
                order_id="o-88121",
                kind="delivery",
                location=_loc(52.370216, 4.895168, "Damrak 1, 1012 LG Amsterdam"),
                window=TimeWindow(start=T0_S + 3600, end=T0_S + 3 * 3600),
                service_s=180,
                parcels=(
                    Parcel(
                        parcel_id="p-1",
                        barcode="JVGL0612345678",
                        weight_kg=2.5,
                        volume_l=12.0,
                        load_position=1,
                    ),
                    Parcel(
                        parcel_id="p-2",
                        barcode="JVGL0612345679",
                        weight_kg=0.4,
                        volume_l=1.5,
                        load_position=2,
                        cold_chain=True,
                    ),
                ),
                customer="J. de Vries",
                note="ring twice",
            ),
            PlannedStop(
                stop_id="s-018",
                order_id="o-88122",
                kind="pickup",
                location=_loc(52.371, 4.8962),
                service_s=120,
            ),
        ),
        break_rule=BreakRule(earliest=T0_S + 4 * 3600, latest=T0_S + 5 * 3600, duration_s=1800),
    )
    sequence = RouteSequenceReport(
        route_id="r-2026-09-14-0042",
        plan_version=3,
        revision=7,
        reason="failed",
        order=(
            SequencedStop(stop_id="s-019", eta=T0_S + 6300),
            SequencedStop(stop_id="s-020", eta=T0_S + 7200, late_s=240),
        ),
        solver="ortools",
        seconds=0.125,
        note="s-018 failed; re-sequenced the rest",
    )
    return {
        "state": make_envelope(
            src=VAN,
            seq=0,
            lc=0,
            ts=T0_MS,
            msg_id=_msg_id(1),
            body=DeviceState(
                status="offline", role="vehicle", at=T0_MS, reason="last will", agent="edge/0.1.0"
            ),
        ),
        "telemetry": make_envelope(
            src=VAN,
            seq=41,
            lc=120,
            ts=T0_MS + 1000,
            msg_id=_msg_id(2),
            body=Telemetry(
                at=T0_MS + 999,
                lat=52.3676,
                lon=4.9041,
                speed_kmh=32.5,
                heading_deg=271.25,
                odometer_km=48_213.7,
                fuel_pct=None,
                charge_pct=64.5,
                door_open=False,
                ignition=True,
                temperature_c=4.5,
            ),
        ),
        "stop_event": make_envelope(
            src=VAN, seq=42, lc=121, ts=T0_MS + 5_400_050, msg_id=_msg_id(3), body=delivered
        ),
        "stop_event-failed": make_envelope(
            src=VAN, seq=43, lc=122, ts=T0_MS + 5_700_020, msg_id=_msg_id(4), body=failed
        ),
        "route_plan": make_envelope(
            src=CLOUD, seq=5, lc=300, ts=T0_MS - 600_000, msg_id=_msg_id(5), body=plan
        ),
        "route_sequence": make_envelope(
            src=VAN, seq=44, lc=123, ts=T0_MS + 5_700_500, msg_id=_msg_id(6), body=sequence
        ),
        "exception": make_envelope(
            src=DEPOT,
            seq=9,
            lc=77,
            ts=T0_MS - 3_600_000,
            msg_id=_msg_id(7),
            body=ExceptionReport(
                exception_id="x-0007",
                category="damaged_parcel",
                severity="warning",
                at=T0_MS - 3_600_500,
                detail="box crushed on the belt, contents rattle",
                stop_id="s-017",
                parcel_id="p-1",
                vehicle_id=VAN,
                data={"belt": 3, "weight_kg": 2.45, "photo": True, "operator": "op-12", "x": None},
            ),
        ),
        "parcel_scan": make_envelope(
            src=DEPOT,
            seq=10,
            lc=78,
            ts=T0_MS - 3_500_000,
            msg_id=_msg_id(8),
            body=ParcelScan(
                scan_id="sc-000123",
                barcode="JVGL0612345678",
                at=T0_MS - 3_500_010,
                result="loaded",
                parcel_id="p-1",
                depot_id=DEPOT,
                vehicle_id=VAN,
                container="cage-07",
                position=1,
            ),
        ),
        "ack": make_envelope(
            src=CLOUD, seq=0, lc=301, ts=T0_MS + 5_400_200, msg_id=_msg_id(9), body=Ack(upto=42)
        ),
        "resend_request": make_envelope(
            src=CLOUD,
            seq=0,
            lc=302,
            ts=T0_MS + 5_700_300,
            msg_id=_msg_id(10),
            body=ResendRequest(from_seq=43),
        ),
    }


SAMPLES = golden_envelopes()


def _path(stem: str) -> Path:
    return GOLDEN_DIR / f"{stem}.msgpack"


def write_goldens() -> list[Path]:
    """Write every golden file from the fixed envelopes; return the paths written."""
    GOLDEN_DIR.mkdir(exist_ok=True)
    written = []
    for stem, env in SAMPLES.items():
        _path(stem).write_bytes(encode(env))
        written.append(_path(stem))
    return written


if REGEN:
    write_goldens()


def test_every_kind_has_a_golden_file() -> None:
    missing = [k for k in protocol.KINDS if not _path(k).is_file()]
    assert not missing, f"no golden file for {missing}; regenerate with WAYLINE_REGEN_GOLDEN=1"


def test_every_golden_file_has_a_fixed_envelope() -> None:
    stems = {p.stem for p in GOLDEN_DIR.glob("*.msgpack")}
    assert stems == set(SAMPLES)


def test_sample_stems_name_their_kind() -> None:
    for stem, env in SAMPLES.items():
        assert stem.split("-")[0] == env.kind


def test_samples_exercise_optional_fields() -> None:
    delivered, failed = SAMPLES["stop_event"].body, SAMPLES["stop_event-failed"].body
    assert isinstance(delivered, StopEvent) and isinstance(failed, StopEvent)
    assert delivered.proof is not None and failed.reason is not None
    plan = SAMPLES["route_plan"].body
    assert isinstance(plan, RoutePlan)
    assert plan.break_rule is not None
    assert any(s.window is not None and s.parcels for s in plan.stops)


@pytest.mark.parametrize("stem", sorted(SAMPLES))
def test_encoding_gives_the_golden_bytes(stem: str) -> None:
    assert encode(SAMPLES[stem]) == _path(stem).read_bytes()


@pytest.mark.parametrize("stem", sorted(SAMPLES))
def test_decoding_the_golden_bytes_gives_the_envelope(stem: str) -> None:
    decoded = decode(_path(stem).read_bytes())
    assert decoded == SAMPLES[stem]
    assert type(decoded) is type(SAMPLES[stem])


if __name__ == "__main__":
    for path in write_goldens():
        print(path)
