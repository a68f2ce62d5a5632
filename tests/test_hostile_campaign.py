"""The hostile-input campaign at a tiny size: a real Mosquitto, a real ``wayline cloud`` under
the ``registered`` device policy killed once, two honest devices in a child process and an
attacker sending every hostile kind. Every honest fact arrives once and in order, no stream
stalls, and every hostile message that reaches the coordinator is refused with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.hostile import TO_COORDINATOR, campaign, goal_met

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

#: The coordinator's refusal reason for each hostile kind (a replay is a duplicate instead).
REASON = {
    "forged_src": "src_mismatch",
    "unknown_device": "unknown_device",
    "wrong_role": "wrong_role",
    "lc_bound": "lc",
    "seq_bound": "seq",
    "forged_ack": "ack",
    "forged_resend": "resend",
    "oversize": "oversize",
    "garbage": "malformed",
}


@pytest.mark.timeout(240)
def test_a_tiny_campaign_loses_nothing_and_refuses_every_hostile_message(tmp_path: Path) -> None:
    r = campaign(
        tmp_path, seed=7, devices=2, messages=30, kills=1, broker_kills=0,
        seconds=6.0, drain_s=60.0, rate=30.0,
    )  # fmt: skip
    assert r["honest_sent"] == 60
    assert (r["applied"], r["lost"], r["doubled"], r["misordered"], r["stalled"]) == (
        60, 0, 0, 0, 0,
    )  # fmt: skip
    assert r["coordinator_kills"] == 1
    sent, refused = r["hostile_sent"], r["refusals"]
    assert r["hostile_total"] >= 50, sent  # every kind had its chances
    assert set(TO_COORDINATOR) - {"replay"} <= set(sent), sent
    for kind, reason in REASON.items():
        assert refused.get(reason, 0) >= sent[kind], (kind, sent, refused)
    assert set(refused) <= set(REASON.values()), refused  # nothing honest was refused
    assert goal_met(r), r
