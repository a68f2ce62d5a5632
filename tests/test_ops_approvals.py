"""Human-in-the-loop: approve, reject or override once, with who and why, for the record."""

from __future__ import annotations

import threading

import pytest

from cloud.ops import (
    AlreadyDecidedError,
    Approval,
    ApprovalError,
    ApprovalState,
    Context,
    Incident,
    Option,
    UnknownOptionError,
    classify,
    default_policy,
)

T0 = 1_780_000_000_000
OPTIONS = (
    Option("reassign_remaining_stops", "Move the stops to van-03", 42.0),
    Option("send_replacement", "Send van-20", 95.0),
)


def escalation(n: int = 1) -> Approval:
    # a breakdown re-planned by itself unless, as here, its cost impact needs an approval
    incident = Incident.forecast(f"brk-{n}", "vehicle_breakdown", T0, vehicle_id="van-12")
    decision = classify(default_policy(), incident, Context(options=OPTIONS, cost_impact=420.0))
    return Approval(f"ap-{n}", decision, created_ms=T0)


def test_approve_carries_out_the_recommendation_and_records_who_and_why() -> None:
    approval = escalation()
    assert approval.state is ApprovalState.PENDING and approval.chosen is None
    record = approval.approve("dispatcher anna", "van-03 has room", at_ms=T0 + 5000)
    assert approval.state is ApprovalState.APPROVED
    assert approval.chosen == OPTIONS[0]
    assert record["state"] == "approved"
    assert record["decided_by"] == "dispatcher anna" and record["why"] == "van-03 has room"
    assert record["decided_ms"] == T0 + 5000 and record["created_ms"] == T0
    assert record["chosen"]["key"] == "reassign_remaining_stops"
    assert record["followed_recommendation"] is True
    assert record["inputs"]["incident_id"] == "brk-1"
    assert record["inputs"]["options"][1]["cost"] == 95.0


def test_override_with_another_offered_option() -> None:
    approval = escalation()
    record = approval.override("ops lead", "send_replacement", "van-03 driver is on a break")
    assert approval.state is ApprovalState.OVERRIDDEN
    assert record["chosen"]["key"] == "send_replacement"
    assert record["followed_recommendation"] is False


def test_reject_carries_out_nothing_and_needs_a_reason() -> None:
    approval = escalation()
    with pytest.raises(ApprovalError, match="needs a reason"):
        approval.reject("ops", "  ")
    assert approval.state is ApprovalState.PENDING
    record = approval.reject("ops", "the van was fixed on site")
    assert record["state"] == "rejected" and record["chosen"] is None


def test_bad_requests_leave_it_pending() -> None:
    approval = escalation()
    with pytest.raises(UnknownOptionError, match="offered: reassign_remaining_stops"):
        approval.override("ops", "teleport", "why not")
    with pytest.raises(ApprovalError, match="override needs a reason"):
        approval.override("ops", "send_replacement", "")
    with pytest.raises(ApprovalError, match="who"):
        approval.approve("")
    assert approval.state is ApprovalState.PENDING


@pytest.mark.parametrize("second", ["approve", "reject", "override"])
def test_a_decision_already_taken_is_a_clear_error(second: str) -> None:
    approval = escalation()
    approval.approve("anna", "ok")
    calls = {
        "approve": lambda: approval.approve("ben", "me too"),
        "reject": lambda: approval.reject("ben", "no"),
        "override": lambda: approval.override("ben", "send_replacement", "other"),
    }
    with pytest.raises(AlreadyDecidedError, match=r"ap-1 was already approved by anna"):
        calls[second]()
    assert approval.record()["decided_by"] == "anna"


def test_two_people_at_once_one_wins() -> None:
    approval = escalation()
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def decide(n: int) -> None:
        barrier.wait()
        try:
            approval.approve(f"person-{n}", "go")
            outcomes.append("won")
        except AlreadyDecidedError:
            outcomes.append("already")

    threads = [threading.Thread(target=decide, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert sorted(outcomes) == ["already"] * 7 + ["won"]


def test_nothing_to_approve_for_an_automatic_resolution() -> None:
    incident = Incident.forecast("fd-1", "failed_delivery", T0, reason="absent")
    with pytest.raises(ApprovalError, match="resolved by policy"):
        Approval("ap-x", classify(default_policy(), incident))
