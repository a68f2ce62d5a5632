"""A delivery that failed today and is re-attempted tomorrow: the van's next route lists the
same stop again, and the driver can deliver it; yesterday's failure stays on record."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from protocol import decode
from tests.helpers import wait_for
from tests.support import feed_plan, make_plan, running_agent


def stop_events_sent(agent) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    rows = agent.store.read("SELECT payload FROM sync_outbox WHERE kind = 'stop_event'")
    out = []
    for (payload,) in rows:
        body = decode(payload).body
        out.append((body.route_id, body.stop_id, body.type))
    return out


def test_a_stop_failed_yesterday_is_open_again_on_the_next_days_route(tmp_path: Path) -> None:
    with running_agent("van-7", tmp_path / "van.db", broker=None) as agent:
        today = make_plan("van-7", 3)
        feed_plan(agent, today, seq=1)
        wait_for(lambda: agent.book.route() is not None)
        agent.fail("s01", "absent")
        agent.deliver("s00", recipient="R. Doe")
        assert agent.book.stop("s01").status == "failed"

        # Tomorrow's route: a new route id, the failed stop again, and a new one.
        tomorrow = make_plan("van-7", 3, now=int(time.time()) + 86_400).model_copy(
            update={"route_id": "route-van-7-2026-11-24", "day": "2026-11-24"}
        )
        tomorrow = tomorrow.model_copy(update={"stops": tomorrow.stops[1:]})
        feed_plan(agent, tomorrow, seq=2)
        wait_for(lambda: agent.book.route()["route_id"] == "route-van-7-2026-11-24")

        s01 = agent.book.stop("s01")
        assert s01.status == "pending" and not s01.final
        assert {s.stop_id for s in agent.book.remaining()} == {"s01", "s02"}
        # Nothing was taken as a conflict: the plan is a new day, not a late plan.
        assert agent.store.read("SELECT count(*) FROM conflicts")[0][0] == 0

        agent.deliver("s01", recipient="A. Smith")
        assert agent.book.stop("s01").status == "delivered"
        # Both days' facts stand: yesterday's failure and today's delivery, each once.
        facts = agent.store.read(
            "SELECT type FROM stop_events WHERE stop_id = 's01' ORDER BY at_ms"
        )
        assert [f[0] for f in facts] == ["failed", "delivered"]
        sent = stop_events_sent(agent)
        assert ("route-van-7", "s01", "failed") in sent
        assert ("route-van-7-2026-11-24", "s01", "delivered") in sent


def test_a_late_plan_of_the_same_day_still_keeps_the_failure(tmp_path: Path) -> None:
    """Only a new route starts a stop afresh: a newer version of today's plan that still
    lists a failed stop is a conflict, and the failure stands (field facts win)."""
    with running_agent("van-8", tmp_path / "van.db", broker=None) as agent:
        feed_plan(agent, make_plan("van-8", 2), seq=1)
        wait_for(lambda: agent.book.route() is not None)
        agent.fail("s01", "refused")
        feed_plan(agent, make_plan("van-8", 2, version=2), seq=2)
        wait_for(lambda: agent.book.route()["version"] == 2)
        assert agent.book.stop("s01").status == "failed"
        assert agent.store.read("SELECT count(*) FROM conflicts")[0][0] == 1
        with pytest.raises(Exception, match="s01"):
            agent.deliver("s01")
