"""Exception policy: the shipped table, classification, policy file errors with their line,
grouping of repeats, and a day's stream where only the genuine exceptions reach a person."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cloud.ops import (
    Action,
    Context,
    ExceptionClass,
    Incident,
    Option,
    PolicyError,
    Triage,
    classify,
    default_policy,
    load_policy,
    parse_policy,
)
from protocol import ExceptionReport, StopEvent

T0 = 1_780_000_000_000  # a morning, epoch ms
MIN = 60_000

# --- the shipped table ----------------------------------------------------------------------


def test_default_policy_names_every_class() -> None:
    policy = default_policy()
    assert set(policy.classes) == set(ExceptionClass)


def incident(cls: ExceptionClass | str, n: int = 0, **fields) -> Incident:
    return Incident.forecast(f"i{n}", cls, fields.pop("at_ms", T0 + n * MIN), **fields)


@pytest.mark.parametrize(
    ("cls", "fields", "context", "action"),
    [
        ("failed_delivery", {"reason": "absent"}, {}, Action.AUTO),
        ("failed_delivery", {"reason": "damaged"}, {}, Action.ESCALATE),
        ("failed_delivery", {"reason": "address_problem"}, {}, Action.AUTO_WITH_APPROVAL),
        (
            "failed_delivery",
            {"reason": "absent"},
            {"cost_impact": 151.0},
            Action.AUTO_WITH_APPROVAL,
        ),
        (
            "failed_delivery",
            {"reason": "absent"},
            {"customer_tier": "premium"},
            Action.AUTO_WITH_APPROVAL,
        ),
        # late: the customer is told and the route re-planned; a person approves only when
        # the van's overtime costs more than the approval threshold
        ("predicted_lateness", {"measures": {"minutes_late": 200}}, {}, Action.AUTO),
        ("predicted_lateness", {}, {"cost_impact": 40.0}, Action.AUTO),
        ("predicted_lateness", {}, {"cost_impact": 180.0}, Action.AUTO_WITH_APPROVAL),
        # silent in a dead zone (or with nothing on board) works offline; silent and loaded not
        ("vehicle_offline", {"measures": {"minutes_loaded": 60}}, {}, Action.AUTO),
        ("vehicle_offline", {"measures": {"minutes_loaded": 0}}, {}, Action.AUTO),
        ("vehicle_offline", {"measures": {"minutes_loaded": 100}}, {}, Action.AUTO_WITH_APPROVAL),
        ("vehicle_offline", {"measures": {"minutes_loaded": 180}}, {}, Action.ESCALATE),
        ("temperature_excursion", {"measures": {"degrees_over": 2.0}}, {}, Action.ESCALATE),
        # dispatch re-plans a broken van's stops and an absent carrier's orders by itself
        ("vehicle_breakdown", {}, {}, Action.AUTO),
        ("carrier_outage", {}, {}, Action.AUTO),
        ("vehicle_breakdown", {}, {"cost_impact": 400.0}, Action.AUTO_WITH_APPROVAL),
        ("ready_to_depart", {}, {}, Action.AUTO),
    ],
)
def test_classify(cls, fields, context, action) -> None:
    decision = classify(default_policy(), incident(cls, **fields), Context(**context))
    assert decision.action is action, decision.reason
    assert decision.needs_person is (action is not Action.AUTO)
    assert decision.options and decision.recommended in decision.options


def test_decision_carries_context_options_and_recommendation() -> None:
    options = (
        Option("reassign_remaining_stops", "Move the 14 stops to van-03 and van-09", 42.0),
        Option("send_replacement", "Send van-20 from the depot", 95.0),
    )
    context = Context(
        order_value=80.0,
        cost_impact=42.0,
        options=options,
        history=("09:12 van-12 engine warning",),
        order={"order_id": "o-7"},
        vehicle={"vehicle_id": "van-12", "stops_left": 14},
    )
    decision = classify(
        default_policy(), incident("vehicle_breakdown", vehicle_id="van-12"), context
    )
    record = decision.as_dict()
    assert record["action"] == "auto"
    assert record["recommended"]["key"] == "reassign_remaining_stops"
    assert [o["cost"] for o in record["options"]] == [42.0, 95.0]
    assert record["context"]["history"] == ["09:12 van-12 engine warning"]
    assert record["context"]["vehicle"]["stops_left"] == 14


def test_device_reports_map_to_classes() -> None:
    def report(category: str) -> ExceptionReport:
        return ExceptionReport(
            exception_id=f"x-{category}",
            category=category,
            severity="warning",
            at=T0,
            detail="d",
            vehicle_id="van-1",
            data={"depot_id": "depot-n", "parcels": 3},
        )

    assert Incident.from_report(report("plan_conflict")).cls is ExceptionClass.PLAN_CONFLICT
    assert Incident.from_report(report("mis_sorted_parcel")).cls is ExceptionClass.MISROUTED_PARCEL
    odd = Incident.from_report(report("drone_collision"))
    assert odd.cls is ExceptionClass.UNCLASSIFIED
    assert classify(default_policy(), odd).action is Action.ESCALATE
    assert classify(default_policy(), report("entry_lost")).action is Action.ESCALATE
    assert Triage(default_policy()).ingest(report("ready_to_depart")).decision.action is Action.AUTO
    overflow = Incident.from_report(report("container_overflow"))
    assert overflow.measures == {"parcels": 3.0} and overflow.depot_id == "depot-n"
    assert classify(default_policy(), overflow).action is Action.AUTO


# --- policy file errors, with the line at fault -----------------------------------------------

GOOD = """\
[defaults]
approval_cost_above = 100

[classes.predicted_lateness]
measure = "minutes_late"
auto_below = 20
escalate_at = 90

[classes.failed_delivery]
action = "escalate"
[classes.failed_delivery.reasons]
absent = "auto"
"""


def line_with(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_good_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(GOOD)
    policy = load_policy(path)
    assert policy.defaults.approval_cost_above == 100
    assert policy.classes[ExceptionClass.PREDICTED_LATENESS].escalate_at == 90


@pytest.mark.parametrize(
    ("change", "needle", "message"),
    [
        (
            (
                "[classes.failed_delivery]\n",
                '[classes.drone_strike]\naction = "auto"\n[classes.failed_delivery]\n',
            ),
            "[classes.drone_strike]",
            "unknown exception class",
        ),
        (("auto_below = 20", 'auto_below = "20"'), "auto_below", "valid number"),
        (("escalate_at = 90", "escalate_at = true"), "escalate_at", "valid number"),
        (
            ("approval_cost_above = 100", "approval_cost_above = [100]"),
            "approval_cost_above",
            "valid number",
        ),
        (('absent = "auto"', 'absent = "maybe"'), 'absent = "maybe"', "auto"),
        (('absent = "auto"', 'absent = "auto"\nstolen = "auto"'), "stolen", "unknown failure"),
        (("measure = ", "mesure = "), "mesure", "unknown setting"),
        (("escalate_at = 90", "escalate_at = 90 90"), "escalate_at = 90 90", "not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_with_its_line(tmp_path, change, needle, message) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    error = caught.value
    assert error.line == line_with(text, needle), str(error)
    assert message in str(error)
    assert str(error).startswith(f"{path}:{error.line}: ")


def test_thresholds_out_of_order_point_at_the_class() -> None:
    text = GOOD.replace("auto_below = 20", "auto_below = 200")
    with pytest.raises(PolicyError, match="auto_below must not be above") as caught:
        parse_policy(text)
    assert caught.value.line == line_with(text, "[classes.predicted_lateness]")


def test_a_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "nope.toml")


# --- grouping and the day's stream --------------------------------------------------------


def test_repeats_of_one_cause_are_one_item_with_a_count() -> None:
    triage = Triage(default_policy())
    silent = {"minutes_loaded": 200.0}
    for n in range(5):
        triage.ingest(
            incident("vehicle_offline", n, vehicle_id="van-1", measures=silent,
                     at_ms=T0 + n * 20 * MIN)
        )  # fmt: skip
    triage.ingest(incident("vehicle_offline", 9, vehicle_id="van-2", measures=silent))
    # far later: a new silence, a new item
    triage.ingest(
        incident("vehicle_offline", 10, vehicle_id="van-1", measures=silent,
                 at_ms=T0 + 20 * 60 * MIN)
    )  # fmt: skip
    queue = triage.queue()
    assert sorted((g.key[-1], g.count) for g in queue) == [
        ("van-1", 1),
        ("van-1", 5),
        ("van-2", 1),
    ]
    first = next(g for g in queue if g.count == 5)
    triage.close(first.group_id)
    assert len(triage.queue()) == 2


def day_stream(seed: int = 7) -> list[tuple[Incident, Context, str | None]]:
    """~500 exceptions of a day; the third item names the genuine ones (None: routine)."""
    rng = random.Random(seed)
    items: list[tuple[Incident, Context, str | None]] = []

    def at() -> int:
        return T0 + rng.randrange(12 * 60) * MIN

    def add(cls, genuine=None, context=None, **fields):
        fields.setdefault("at_ms", at())
        items.append((incident(cls, len(items), **fields), context or Context(), genuine))

    def device(category, genuine=None, **data):
        report = ExceptionReport(
            exception_id=f"dev-{len(items)}",
            category=category,
            severity="warning",
            at=at(),
            detail=category,
            vehicle_id=f"van-{rng.randrange(20):02d}",
            data=data,
        )
        items.append((Incident.from_report(report), Context(), genuine))

    vans = [f"van-{i:02d}" for i in range(20)]
    for _ in range(290):
        add(
            "failed_delivery",
            reason=rng.choice(["absent", "no_access", "refused"]),
            vehicle_id=rng.choice(vans),
            context=Context(order_value=30, cost_impact=4),
        )
    for _ in range(80):
        add(
            "predicted_lateness",
            vehicle_id=rng.choice(vans),
            measures={"minutes_late": rng.uniform(1, 200), "minutes_past_shift": 0.0},
        )
    for _ in range(40):
        add("long_dwell", vehicle_id=rng.choice(vans), measures={"minutes": rng.uniform(2, 19)})
    for _ in range(10):
        add(
            "vehicle_offline",
            vehicle_id=rng.choice(vans),
            measures={"minutes": rng.uniform(30, 75), "minutes_loaded": rng.uniform(0, 75)},
        )
    for _ in range(3):
        add("temperature_excursion", vehicle_id="van-05", measures={"degrees_over": 0.2})
    for _ in range(35):
        device("ready_to_depart", depot_id="depot-n")
    for _ in range(15):
        device("plan_conflict", plan_version=3)
    for _ in range(8):
        device("misrouted_parcel", depot_id="depot-n")
    for _ in range(4):
        device("duplicate_parcel")
    # the genuine ones
    for n in range(8):  # one loaded van silent for hours, reported every 15 minutes
        add(
            "vehicle_offline",
            "van-90 offline",
            vehicle_id="van-90",
            measures={"minutes": 185 + 15 * n, "minutes_loaded": 185 + 15 * n},
            at_ms=T0 + 3 * 60 * MIN + 15 * MIN * n,
        )
    for n in range(6):  # a carrier outage, reported by six of its couriers: dispatch re-plans
        add(
            "carrier_outage",
            carrier_id="swiftgo",
            vehicle_id=f"gig-{n}",
            at_ms=T0 + 5 * 60 * MIN + 7 * MIN * n,
        )
    add("vehicle_breakdown", vehicle_id="van-91")  # dispatch re-plans its stops
    add(
        "temperature_excursion",
        "van-92 cold chain",
        vehicle_id="van-92",
        measures={"degrees_over": 3.1},
    )
    add("failed_delivery", "van-93 damaged", reason="damaged", vehicle_id="van-93")
    add(
        "predicted_lateness",
        "van-94 very late",
        vehicle_id="van-94",
        measures={"minutes_late": 400, "minutes_past_shift": 360},
        context=Context(cost_impact=192.0),
    )
    add(
        "predicted_lateness",
        "van-95 premium",
        vehicle_id="van-95",
        measures={"minutes_late": 10, "minutes_past_shift": 0},
        context=Context(customer_tier="premium"),
    )
    add(
        "failed_delivery",
        "van-96 costly",
        reason="absent",
        vehicle_id="van-96",
        context=Context(order_value=2400, cost_impact=380),
    )
    device("entry_lost", "entry lost", seq=41)
    device("drone_collision", "unknown category")
    return items


def test_a_days_stream_reaches_people_only_for_the_genuine_ones() -> None:
    stream = day_stream()
    assert 480 <= len(stream) <= 520
    triage = Triage(default_policy())
    genuine_ids: dict[str, str] = {}
    for inc, context, genuine in sorted(stream, key=lambda item: item[0].at_ms):
        result = triage.ingest(inc, context)
        if genuine:
            genuine_ids[inc.incident_id] = genuine
        assert result.decision.needs_person is bool(genuine), (genuine, result.decision.reason)

    queue = triage.queue()
    seen = sorted({genuine_ids[i] for g in queue for i in g.incident_ids})
    assert seen == sorted(set(genuine_ids.values()))
    assert all(i in genuine_ids for g in queue for i in g.incident_ids)
    by_cause = {genuine_ids[g.incident_ids[0]]: g for g in queue}
    assert len(queue) == len(by_cause) == 8  # one item per cause
    assert by_cause["van-90 offline"].count == 8
    # escalations first, then those resolved pending approval
    assert [g.action for g in queue[:5]] == [Action.ESCALATE] * 5
    assert {genuine_ids[g.incident_ids[0]] for g in queue[5:]} == {
        "van-94 very late",
        "van-95 premium",
        "van-96 costly",
    }

    stats = triage.stats
    assert stats.total == len(stream)
    assert stats.escalate == 8 + 4 and stats.auto_with_approval == 3
    assert stats.share_without_person == pytest.approx((len(stream) - 15) / len(stream))
    assert stats.share_without_person > 0.95
    assert stats.as_dict()["share_without_person"] == round(stats.share_without_person, 4)


def test_a_failed_stop_is_a_failed_delivery_by_its_reason() -> None:
    def failed(reason: str) -> Incident:
        event = StopEvent(
            event_id=f"e-{reason}",
            route_id="r-1",
            plan_version=2,
            stop_id="s-4",
            type="failed",
            at=T0,
            reason=reason,
        )
        return Incident.from_failed_stop(event, vehicle_id="van-1", order_id="o-4")

    absent = failed("absent")
    assert absent.cls is ExceptionClass.FAILED_DELIVERY and absent.order_id == "o-4"
    assert classify(default_policy(), absent).action is Action.AUTO
    assert classify(default_policy(), failed("damaged")).action is Action.ESCALATE
    delivered = StopEvent(
        event_id="e-ok", route_id="r-1", plan_version=2, stop_id="s-5", type="delivered", at=T0
    )
    with pytest.raises(ValueError, match="not a failure"):
        Incident.from_failed_stop(delivered)
