"""Round trips and garbage-in for the Wayline wire codec, plus topics.

Any envelope survives ``decode(encode(env)) == env``; any bytes either decode to a valid
envelope or raise ``protocol.ProtocolError`` and nothing else; every refusal the design names
(malformed, wrong type, unknown kind, other major, oversize, seq rules, body rules) has an
explicit test with the reason it gives.
"""

from __future__ import annotations

import typing
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protocol
from protocol import (
    Ack,
    BreakRule,
    DeviceState,
    ExceptionReport,
    Location,
    MalformedError,
    OversizeError,
    Parcel,
    ParcelScan,
    PlannedStop,
    ProofOfDelivery,
    ProtocolError,
    ResendRequest,
    RoutePlan,
    RouteSequenceReport,
    SchemaError,
    SequencedStop,
    StopEvent,
    Telemetry,
    TimeWindow,
    TopicError,
    UnknownKindError,
    VersionError,
    decode,
    encode,
    make_envelope,
)

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- strategies

INT64 = 2**63 - 1
device_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
message_ids = st.from_regex(r"\A[0-9A-Za-z_-]{8,64}\Z")
ids = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, codec="utf-8"),
    min_size=1,
    max_size=24,
)
short_text = st.text(max_size=60)
opt = st.none
epoch_ms = st.integers(0, 2**53 - 1)
epoch_s = st.integers(0, 2**40 - 1)
wire_uint = st.integers(0, INT64)
counters = st.integers(0, protocol.COUNTER_LIMIT - 1)  # seq, lc, ack: below 2^53 on the wire


def floats(lo: float, hi: float, *, exclude_max: bool = False) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, exclude_max=exclude_max)


lats = floats(-90.0, 90.0)
lons = floats(-180.0, 180.0)
kgs = floats(0.0, 10_000.0)
barcodes = st.text(min_size=1, max_size=64)


def ordered(lo: int, hi: int) -> st.SearchStrategy[tuple[int, int]]:
    return st.tuples(st.integers(lo, hi), st.integers(lo, hi)).map(lambda t: (min(t), max(t)))


locations = st.builds(Location, lat=lats, lon=lons, address=opt() | short_text)
windows = ordered(0, 2**40 - 1).map(lambda t: TimeWindow(start=t[0], end=t[1]))
break_rules = st.builds(
    lambda t, d: BreakRule(earliest=t[0], latest=t[1], duration_s=d),
    ordered(0, 2**40 - 1),
    st.integers(0, 14_400),
)
parcels = st.builds(
    Parcel,
    parcel_id=ids,
    barcode=barcodes,
    weight_kg=kgs,
    volume_l=kgs,
    load_position=opt() | st.integers(1, INT64),
    cold_chain=st.booleans(),
)
planned_stops = st.builds(
    PlannedStop,
    stop_id=ids,
    order_id=ids,
    kind=st.sampled_from(["delivery", "pickup"]),
    location=locations,
    window=opt() | windows,
    service_s=st.integers(0, 86_400),
    parcels=st.lists(parcels, max_size=3).map(tuple),
    customer=opt() | short_text,
    note=opt() | short_text,
)
route_plans = st.builds(
    RoutePlan,
    route_id=ids,
    vehicle_id=device_ids,
    version=st.integers(1, INT64),
    day=st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}"),
    depot=locations,
    start_at=epoch_s,
    end_at=opt() | epoch_s,
    capacity_kg=opt() | kgs,
    stops=st.lists(planned_stops, max_size=4, unique_by=lambda s: s.stop_id).map(tuple),
    break_rule=opt() | break_rules,
)
sequence_reports = st.builds(
    RouteSequenceReport,
    route_id=ids,
    plan_version=st.integers(1, INT64),
    revision=wire_uint,
    reason=st.sampled_from(
        [
            "plan",
            "delivered",
            "failed",
            "skipped",
            "picked_up",
            "stop_added",
            "stop_removed",
            "window_changed",
            "delay",
            "manual",
            "break",
        ]
    ),
    order=st.lists(
        st.builds(SequencedStop, stop_id=ids, eta=epoch_s, late_s=wire_uint), max_size=5
    ).map(tuple),
    solver=st.text(max_size=32),
    seconds=floats(0.0, 1e6),
    note=opt() | short_text,
)
proofs = st.builds(
    ProofOfDelivery,
    recipient_name=opt() | st.text(max_size=120),
    signature_svg=opt() | st.text(max_size=200),
    photo_sha256=opt() | st.from_regex(r"\A[0-9a-f]{64}\Z"),
    photo_bytes=opt() | wire_uint,
    barcodes=st.lists(barcodes, max_size=4).map(tuple),
)
fail_reasons: st.SearchStrategy[protocol.FailReason] = st.sampled_from(
    typing.get_args(protocol.FailReason)
)


@st.composite
def stop_events(draw: st.DrawFn) -> StopEvent:
    kind: protocol.StopEventType = draw(st.sampled_from(typing.get_args(protocol.StopEventType)))
    reason = (
        draw(fail_reasons)
        if kind == "failed"
        else draw(opt() | fail_reasons)
        if kind == "skipped"
        else None
    )
    proof = draw(opt() | proofs) if kind in ("delivered", "picked_up") else None
    return StopEvent(
        event_id=draw(ids),
        route_id=draw(ids),
        plan_version=draw(st.integers(1, INT64)),
        stop_id=draw(ids),
        type=kind,
        at=draw(epoch_ms),
        reason=reason,
        note=draw(opt() | short_text),
        proof=proof,
        lat=draw(opt() | lats),
        lon=draw(opt() | lons),
    )


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | short_text
)
exception_reports = st.builds(
    ExceptionReport,
    exception_id=ids,
    category=st.from_regex(r"\A[a-z][a-z0-9_]{0,63}\Z"),
    severity=st.sampled_from(["info", "warning", "critical"]),
    at=epoch_ms,
    detail=short_text,
    stop_id=opt() | ids,
    parcel_id=opt() | ids,
    vehicle_id=opt() | device_ids,
    data=st.dictionaries(st.text(max_size=64), scalars, max_size=6),
)
parcel_scans = st.builds(
    ParcelScan,
    scan_id=ids,
    barcode=barcodes,
    at=epoch_ms,
    result=st.sampled_from(
        ["ok", "wrong_container", "unknown", "cancelled", "duplicate", "other_depot", "loaded"]
    ),
    parcel_id=opt() | ids,
    depot_id=opt() | device_ids,
    vehicle_id=opt() | device_ids,
    container=opt() | st.text(max_size=64),
    position=opt() | st.integers(1, INT64),
)
telemetries = st.builds(
    Telemetry,
    at=epoch_ms,
    lat=lats,
    lon=lons,
    speed_kmh=floats(0.0, 400.0),
    heading_deg=floats(0.0, 360.0, exclude_max=True),
    odometer_km=floats(0.0, 1e7),
    fuel_pct=opt() | floats(0.0, 100.0),
    charge_pct=opt() | floats(0.0, 100.0),
    door_open=st.booleans(),
    ignition=st.booleans(),
    temperature_c=opt() | floats(-60.0, 90.0),
)
device_states = st.builds(
    DeviceState,
    status=st.sampled_from(["online", "offline"]),
    role=st.sampled_from(["vehicle", "depot", "cloud"]),
    at=epoch_ms,
    reason=opt() | short_text,
    agent=opt() | st.text(max_size=64),
)
acks = st.builds(Ack, upto=counters)
resend_requests = st.builds(ResendRequest, from_seq=st.integers(1, protocol.COUNTER_LIMIT - 1))

BODIES: dict[str, st.SearchStrategy[Any]] = {
    "state": device_states,
    "telemetry": telemetries,
    "stop_event": stop_events(),
    "route_plan": route_plans,
    "route_sequence": sequence_reports,
    "exception": exception_reports,
    "parcel_scan": parcel_scans,
    "ack": acks,
    "resend_request": resend_requests,
}


@st.composite
def envelopes(draw: st.DrawFn, kind: str | None = None) -> protocol.Envelope:
    kind = kind or draw(st.sampled_from(protocol.KINDS))
    seq = 0 if kind in protocol.CONTROL_KINDS else draw(st.integers(1, protocol.COUNTER_LIMIT - 1))
    return make_envelope(
        src=draw(device_ids),
        seq=seq,
        lc=draw(counters),
        ts=draw(epoch_ms),
        msg_id=draw(message_ids),
        body=draw(BODIES[kind]),
    )


def test_every_kind_has_a_strategy() -> None:
    assert set(BODIES) == set(protocol.KINDS)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("kind", protocol.KINDS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip_per_kind(kind: str, data: st.DataObject) -> None:
    env = data.draw(envelopes(kind))
    decoded = decode(encode(env), max_bytes=1 << 24)
    assert decoded == env
    assert type(decoded) is type(env)
    assert encode(decoded) == encode(env)


# --------------------------------------------------------------------------- garbage in


def _decode_or_protocol_error(data: bytes) -> None:
    try:
        env = decode(data)
    except ProtocolError as exc:
        assert exc.reason != "protocol"  # always a specific subclass
        assert str(exc)
    else:
        assert env.kind in protocol.KINDS
        assert decode(encode(env)) == env


@SETTINGS
@given(st.binary(max_size=512))
def test_arbitrary_bytes(data: bytes) -> None:
    _decode_or_protocol_error(data)


msgpackable = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=10) | st.binary(max_size=4), children, max_size=5)
    ),
    max_leaves=30,
)


@SETTINGS
@given(msgpackable)
def test_arbitrary_msgpack_structures(value: Any) -> None:
    _decode_or_protocol_error(msgpack.packb(value, use_bin_type=True))


@st.composite
def envelope_like_maps(draw: st.DrawFn) -> dict[str, Any]:
    """Maps with the envelope's keys and plausible-or-not values, to get past the first checks."""
    return {
        "v": draw(st.sampled_from(["1.0", "1.7", "2.0", "0.9", "1", ""]) | msgpackable),
        "id": draw(message_ids | msgpackable),
        "src": draw(device_ids | msgpackable),
        "seq": draw(st.integers(-2, 5) | msgpackable),
        "lc": draw(st.integers(-2, 5) | msgpackable),
        "ts": draw(epoch_ms | msgpackable),
        "kind": draw(st.sampled_from([*protocol.KINDS, "nope"]) | msgpackable),
        "body": draw(msgpackable),
    }


@SETTINGS
@given(envelope_like_maps())
def test_envelope_shaped_garbage(value: dict[str, Any]) -> None:
    _decode_or_protocol_error(msgpack.packb(value, use_bin_type=True))


def _mutate(raw: Any, path: list[Any], op: str, replacement: Any) -> Any:
    """Apply ``op`` at ``path`` inside a plain msgpack structure (dicts and lists)."""
    if not path:
        return replacement
    head, rest = path[0], path[1:]
    if isinstance(raw, dict):
        out = dict(raw)
        if not rest and op == "drop":
            out.pop(head, None)
        elif not rest and op == "add":
            out[f"{head}_extra"] = replacement
        else:
            out[head] = _mutate(raw[head], rest, op, replacement)
        return out
    out_list = list(raw)
    if not rest and op == "drop":
        del out_list[head]
    else:
        out_list[head] = _mutate(raw[head], rest, op, replacement)
    return out_list


def _paths(raw: Any, prefix: list[Any]) -> list[list[Any]]:
    found = [prefix] if prefix else []
    if isinstance(raw, dict):
        for k, v in raw.items():
            found.extend(_paths(v, [*prefix, k]))
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            found.extend(_paths(v, [*prefix, i]))
    return found


@SETTINGS
@given(st.data())
def test_mutated_valid_envelopes(data: st.DataObject) -> None:
    raw = msgpack.unpackb(encode(data.draw(envelopes())), raw=False)
    path = data.draw(st.sampled_from(_paths(raw, [])))
    op = data.draw(st.sampled_from(["drop", "replace", "add"]))
    replacement = data.draw(msgpackable)
    mutated = _mutate(raw, path, op, replacement)
    _decode_or_protocol_error(msgpack.packb(mutated, use_bin_type=True))


@SETTINGS
@given(st.data())
def test_byte_flips_and_truncations(data: st.DataObject) -> None:
    blob = bytearray(encode(data.draw(envelopes())))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(0, len(blob)))
    _decode_or_protocol_error(bytes(blob[:cut]))
    _decode_or_protocol_error(bytes(blob))


# --------------------------------------------------------------------------- explicit refusals

ACK = make_envelope(
    src="cloud", seq=0, lc=1, ts=1_789_372_800_000, msg_id="a" * 32, body=Ack(upto=3)
)


def _raw(env: Any) -> dict[str, Any]:
    out: dict[str, Any] = msgpack.unpackb(encode(env), raw=False)
    return out


def _pack(value: Any) -> bytes:
    out: bytes = msgpack.packb(value, use_bin_type=True)
    return out


def _stop_event_raw(**body: Any) -> dict[str, Any]:
    base = {
        "event_id": "ev-1",
        "route_id": "r-1",
        "plan_version": 1,
        "stop_id": "s-1",
        "type": "delivered",
        "at": 1_789_372_800_000,
    }
    return {
        "v": "1.0",
        "id": "b" * 32,
        "src": "van-1",
        "seq": 1,
        "lc": 1,
        "ts": 1_789_372_800_000,
        "kind": "stop_event",
        "body": {**base, **body},
    }


def _plan_raw(**changes: Any) -> dict[str, Any]:
    stop = {"stop_id": "s-1", "order_id": "o-1", "location": {"lat": 52.0, "lon": 4.0}}
    body = {
        "route_id": "r-1",
        "vehicle_id": "van-1",
        "version": 1,
        "day": "2026-09-14",
        "depot": {"lat": 52.0, "lon": 4.0},
        "start_at": 1_789_372_800,
        "stops": [stop],
        **changes,
    }
    return {
        "v": "1.0",
        "id": "c" * 32,
        "src": "cloud",
        "seq": 1,
        "lc": 1,
        "ts": 1_789_372_800_000,
        "kind": "route_plan",
        "body": body,
    }


def test_hand_built_raw_maps_are_valid() -> None:
    assert decode(_pack(_stop_event_raw())).kind == "stop_event"
    assert decode(_pack(_plan_raw())).kind == "route_plan"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never used in msgpack
        b"\x92\x01",  # array of two with one element
        _pack({"v": "1.0"}) + b"\x00",  # trailing bytes
        b"\xde\x00\x01\x01\x02",  # map with an int key
    ],
)
def test_malformed_msgpack(data: bytes) -> None:
    with pytest.raises(MalformedError):
        decode(data)


@pytest.mark.parametrize("value", [[1, 2, 3], "envelope", 7, None, b"\x00"])
def test_an_envelope_must_be_a_map(value: Any) -> None:
    with pytest.raises(MalformedError, match="must be a map"):
        decode(_pack(value))


def test_payload_must_be_bytes() -> None:
    with pytest.raises(MalformedError):
        decode("not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("seq", "1"),
        ("seq", 1.0),
        ("seq", True),
        ("lc", -1),
        ("ts", 2**53),
        ("id", 12345678),
        ("id", "short"),
        ("src", "van/1"),
        ("src", b"van-1"),
        ("body", [1]),
        ("body", None),
    ],
)
def test_wrong_types_and_values_in_the_envelope(key: str, value: Any) -> None:
    raw = _stop_event_raw()
    raw[key] = value
    with pytest.raises(SchemaError, match="stop_event"):
        decode(_pack(raw))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("plan_version", "1"),
        ("plan_version", 0),
        ("at", 1.5),
        ("type", "teleported"),
        ("lat", 91.0),
        ("lat", float("nan")),
        ("stop_id", ""),
        ("proof", {"photo_sha256": "XYZ"}),
    ],
)
def test_wrong_types_and_values_in_a_body(field: str, value: Any) -> None:
    with pytest.raises(SchemaError) as info:
        decode(_pack(_stop_event_raw(**{field: value})))
    assert field in str(info.value)


def test_strict_floats_accept_integers() -> None:
    env = decode(_pack(_stop_event_raw(lat=52, lon=4)))
    assert isinstance(env.body, StopEvent) and env.body.lat == 52.0


@pytest.mark.parametrize("kind", ["teleport", "", "STATE", 1, None])
def test_unknown_kind(kind: Any) -> None:
    raw = _raw(ACK)
    raw["kind"] = kind
    with pytest.raises(UnknownKindError, match="unknown message kind"):
        decode(_pack(raw))


def test_missing_kind() -> None:
    raw = _raw(ACK)
    del raw["kind"]
    with pytest.raises(UnknownKindError):
        decode(_pack(raw))


@pytest.mark.parametrize("v", ["2.0", "0.9", "17.3"])
def test_another_major_is_refused_naming_both_versions(v: str) -> None:
    raw = _raw(ACK)
    raw["v"] = v
    with pytest.raises(VersionError) as info:
        decode(_pack(raw))
    assert v in str(info.value)
    assert protocol.SCHEMA_VERSION in str(info.value)


@pytest.mark.parametrize("v", [None, 1, 1.0, "1", "1.0.0", "v1.0", "1.0\n", "\u0661.\u0660", ""])
def test_badly_written_versions_are_refused(v: Any) -> None:
    raw = _raw(ACK)
    raw["v"] = v
    with pytest.raises(VersionError, match="schema version"):
        decode(_pack(raw))


def test_a_missing_version_is_refused() -> None:
    raw = _raw(ACK)
    del raw["v"]
    with pytest.raises(VersionError):
        decode(_pack(raw))


def test_newer_minor_extra_fields_are_pruned_everywhere() -> None:
    raw = _plan_raw(
        break_rule={"earliest": 1, "latest": 2, "duration_s": 60, "paid": True},
        priority="high",
    )
    raw["v"] = f"{protocol.MAJOR}.{protocol.MINOR + 3}"
    raw["trace"] = "abc"  # envelope level
    raw["body"]["depot"]["floor"] = 2  # nested model
    raw["body"]["stops"][0]["gate_code"] = "1234"  # model inside a tuple
    raw["body"]["stops"][0]["location"]["what3words"] = "a.b.c"  # two levels down
    raw["body"]["stops"][0]["parcels"] = [{"parcel_id": "p-1", "barcode": "B1", "fragile": True}]
    raw["body"]["stops"][0]["window"] = {"start": 1, "end": 2, "tz": "Europe/Amsterdam"}
    env = decode(_pack(raw))
    assert isinstance(env.body, RoutePlan)
    assert env.v == raw["v"]
    assert env.body.break_rule == BreakRule(earliest=1, latest=2, duration_s=60)
    assert env.body.depot == Location(lat=52.0, lon=4.0)
    stop = env.body.stops[0]
    assert stop.location == Location(lat=52.0, lon=4.0)
    assert stop.parcels == (Parcel(parcel_id="p-1", barcode="B1"),)
    assert stop.window == TimeWindow(start=1, end=2)
    for dropped in (b"trace", b"priority", b"floor", b"gate_code", b"what3words", b"fragile"):
        assert dropped not in encode(env)


def test_newer_minor_still_validates_what_it_keeps() -> None:
    raw = _plan_raw(version=0, shiny=True)
    raw["v"] = "1.9"
    with pytest.raises(SchemaError, match="version"):
        decode(_pack(raw))


@pytest.mark.parametrize("where", ["envelope", "body", "nested", "in_tuple"])
def test_unknown_field_in_the_current_minor_is_refused(where: str) -> None:
    raw = _plan_raw()
    target = {
        "envelope": raw,
        "body": raw["body"],
        "nested": raw["body"]["depot"],
        "in_tuple": raw["body"]["stops"][0],
    }[where]
    target["surprise"] = 1
    with pytest.raises(SchemaError, match=r"surprise|Extra inputs"):
        decode(_pack(raw))


def test_default_size_limit_is_64_kib() -> None:
    assert protocol.DEFAULT_MAX_BYTES == 64 * 1024
    big = make_envelope(
        src="depot-1",
        seq=1,
        lc=1,
        ts=1,
        msg_id="d" * 32,
        body=ExceptionReport(
            exception_id="x",
            category="big",
            severity="info",
            at=1,
            detail="x" * 2000,
            data={f"k{i}": "y" * 2000 for i in range(32)},
        ),
    )
    data = encode(big)
    assert len(data) > 64 * 1024
    with pytest.raises(OversizeError) as info:
        decode(data)
    assert str(64 * 1024) in str(info.value) and str(len(data)) in str(info.value)
    assert decode(data, max_bytes=len(data)) == big


def test_configured_size_limit() -> None:
    data = encode(ACK)
    assert decode(data, max_bytes=len(data)) == ACK
    with pytest.raises(OversizeError, match=f"over the {len(data) - 1}-byte limit"):
        decode(data, max_bytes=len(data) - 1)


def test_oversize_is_checked_before_parsing() -> None:
    with pytest.raises(OversizeError):
        decode(b"\xc1" * 100, max_bytes=10)


MINIMAL_BODIES: dict[str, dict[str, Any]] = {
    "state": {"status": "online", "role": "vehicle", "at": 1},
    "telemetry": {
        "at": 1,
        "lat": 0.0,
        "lon": 0.0,
        "speed_kmh": 0.0,
        "heading_deg": 0.0,
        "odometer_km": 0.0,
        "door_open": False,
        "ignition": False,
    },
    "stop_event": _stop_event_raw()["body"],
    "route_plan": _plan_raw()["body"],
    "route_sequence": {
        "route_id": "r-1",
        "plan_version": 1,
        "revision": 0,
        "reason": "plan",
        "order": [],
        "solver": "greedy",
        "seconds": 0.0,
    },
    "exception": {
        "exception_id": "x-1",
        "category": "breakdown",
        "severity": "critical",
        "at": 1,
        "detail": "flat tyre",
    },
    "parcel_scan": {"scan_id": "sc-1", "barcode": "B1", "at": 1, "result": "ok"},
    "ack": {"upto": 3},
    "resend_request": {"from_seq": 3},
}


def _minimal_raw(kind: str, seq: int) -> dict[str, Any]:
    return {
        "v": "1.0",
        "id": "h" * 32,
        "src": "van-1",
        "seq": seq,
        "lc": 0,
        "ts": 0,
        "kind": kind,
        "body": MINIMAL_BODIES[kind],
    }


def test_every_kind_has_a_minimal_body() -> None:
    assert set(MINIMAL_BODIES) == set(protocol.KINDS)


@pytest.mark.parametrize("kind", sorted(set(protocol.KINDS) - protocol.CONTROL_KINDS))
def test_seq_zero_on_a_sequenced_kind_is_refused(kind: str) -> None:
    assert decode(_pack(_minimal_raw(kind, 1))).seq == 1
    with pytest.raises(SchemaError, match="needs a sequence number from 1"):
        decode(_pack(_minimal_raw(kind, 0)))


@pytest.mark.parametrize("kind", sorted(protocol.CONTROL_KINDS))
def test_non_zero_seq_on_a_control_kind_is_refused(kind: str) -> None:
    assert decode(_pack(_minimal_raw(kind, 0))).kind == kind
    with pytest.raises(SchemaError, match="seq must be 0"):
        decode(_pack(_minimal_raw(kind, 1)))


def test_a_failed_stop_event_needs_a_reason() -> None:
    with pytest.raises(SchemaError, match="failed stop needs a reason"):
        decode(_pack(_stop_event_raw(type="failed")))
    assert decode(_pack(_stop_event_raw(type="failed", reason="refused"))).kind == "stop_event"


def test_a_delivered_stop_event_takes_no_reason_and_an_arrival_no_proof() -> None:
    with pytest.raises(SchemaError, match="takes no failure reason"):
        decode(_pack(_stop_event_raw(reason="absent")))
    with pytest.raises(SchemaError, match="proof of delivery"):
        decode(_pack(_stop_event_raw(type="arrived", proof={})))


def test_a_time_window_ending_before_it_starts_is_refused() -> None:
    raw = _plan_raw()
    raw["body"]["stops"][0]["window"] = {"start": 1_789_380_000, "end": 1_789_379_999}
    with pytest.raises(SchemaError, match="ends before it starts"):
        decode(_pack(raw))
    raw["body"]["stops"][0]["window"] = {"start": 1_789_380_000, "end": 1_789_380_000}
    assert decode(_pack(raw)).kind == "route_plan"


def test_a_break_with_latest_before_earliest_is_refused() -> None:
    raw = _plan_raw(break_rule={"earliest": 10, "latest": 9, "duration_s": 60})
    with pytest.raises(SchemaError, match="break"):
        decode(_pack(raw))


def test_duplicate_stop_ids_in_a_plan_are_refused() -> None:
    raw = _plan_raw()
    raw["body"]["stops"] = [raw["body"]["stops"][0], {**raw["body"]["stops"][0], "order_id": "o-2"}]
    with pytest.raises(SchemaError, match="stop id appears twice"):
        decode(_pack(raw))


def test_exception_data_floats_are_finite() -> None:
    raw = _raw(
        make_envelope(
            src="depot-1",
            seq=1,
            lc=1,
            ts=1,
            msg_id="f" * 32,
            body=ExceptionReport(exception_id="x", category="c", severity="info", at=1, detail=""),
        )
    )
    raw["body"]["data"] = {"temp": float("nan")}
    with pytest.raises(SchemaError):
        decode(_pack(raw))


@pytest.mark.parametrize(
    "body",
    [
        Ack.model_construct(upto=2**64),  # past the model's bound: what encode meets
        ExceptionReport(
            exception_id="x", category="c", severity="info", at=1, detail="", data={"n": -(2**64)}
        ),
    ],
)
def test_encoding_a_value_msgpack_cannot_carry_is_a_protocol_error(body: Any) -> None:
    seq = 0 if isinstance(body, Ack) else 1
    env = make_envelope(src="cloud", seq=seq, lc=1, ts=1, msg_id="g" * 32, body=body)
    with pytest.raises(SchemaError, match="cannot encode"):
        encode(env)


def test_every_error_is_a_protocol_error_with_a_reason() -> None:
    for cls in (
        MalformedError,
        OversizeError,
        VersionError,
        UnknownKindError,
        SchemaError,
        TopicError,
    ):
        assert issubclass(cls, ProtocolError)
        assert cls.reason != ProtocolError.reason
        assert cls.__doc__


# --------------------------------------------------------------------------- topics


def test_topic_builders() -> None:
    assert protocol.up_topic("van-0042") == "wayline/v1/van-0042/up"
    assert protocol.down_topic("van-0042") == "wayline/v1/van-0042/down"
    assert protocol.state_topic("depot.ams_1") == "wayline/v1/depot.ams_1/state"


def test_subscriptions() -> None:
    assert protocol.subscription("up") == "wayline/v1/+/up"
    assert protocol.subscription("state") == "wayline/v1/+/state"
    assert protocol.subscription("down", "van-1") == "wayline/v1/van-1/down"
    with pytest.raises(TopicError):
        protocol.subscription("sideways")  # type: ignore[arg-type]
    with pytest.raises(TopicError):
        protocol.subscription("up", "#")


def test_parse_topic() -> None:
    assert protocol.parse_topic("wayline/v1/van-1/up") == protocol.Topic("van-1", "up")
    topic = protocol.parse_topic("wayline/v1/depot-1/state")
    assert (topic.device, topic.direction) == ("depot-1", "state")


BAD_DEVICES = [
    "",
    "a/b",
    "+",
    "#",
    "van+1",
    "van#",
    "v" * 65,
    "-van",
    ".van",
    "van\n",
    "van 1",
    "vän",
    "van\x00",
]


@pytest.mark.parametrize("device", BAD_DEVICES)
@pytest.mark.parametrize("build", [protocol.up_topic, protocol.down_topic, protocol.state_topic])
def test_bad_device_ids_are_refused_by_builders(device: str, build: Any) -> None:
    with pytest.raises(TopicError, match="device id"):
        build(device)


@pytest.mark.parametrize("device", BAD_DEVICES)
def test_bad_device_ids_are_refused_by_the_parser(device: str) -> None:
    with pytest.raises(TopicError):
        protocol.parse_topic(f"wayline/v1/{device}/up")


def test_a_64_character_device_id_is_fine() -> None:
    device = "v" * 64
    assert protocol.parse_topic(protocol.up_topic(device)).device == device


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "wayline/v1/van-1",
        "wayline/v1/van-1/up/extra",
        "wayline/v2/van-1/up",
        "other/v1/van-1/up",
        "wayline/v1/van-1/sideways",
        "/wayline/v1/van-1/up",
        "wayline/v1/+/up",
        "wayline/v1/#",
    ],
)
def test_not_a_wayline_topic(topic: str) -> None:
    with pytest.raises(TopicError):
        protocol.parse_topic(topic)


@SETTINGS
@given(device_ids, st.sampled_from(["up", "down", "state"]))
def test_topic_round_trip(device: str, direction: str) -> None:
    build = {"up": protocol.up_topic, "down": protocol.down_topic, "state": protocol.state_topic}
    assert protocol.parse_topic(build[direction](device)) == protocol.Topic(device, direction)  # type: ignore[arg-type]


@SETTINGS
@given(st.text(max_size=80))
def test_topic_parser_garbage(topic: str) -> None:
    try:
        parsed = protocol.parse_topic(topic)
    except TopicError:
        return
    assert protocol.subscription(parsed.direction, parsed.device) == topic


@SETTINGS
@given(st.text(max_size=80))
def test_topic_device_ids_agree_with_envelope_src(device: str) -> None:
    """A device id valid in a topic is valid as an envelope's src, and the other way round."""
    try:
        protocol.up_topic(device)
        topic_ok = True
    except TopicError:
        topic_ok = False
    raw = _raw(ACK)
    raw["src"] = device
    try:
        decode(_pack(raw))
        src_ok = True
    except SchemaError:
        src_ok = False
    assert topic_ok == src_ok
