"""Exception decisions carried out through a real coordinator (real SQLite, a real broker and
vehicle agent where a van must get a new plan version): each option does its thing once, the
decision record says what was done, and bad input changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloud import CloudSettings, Coordinator
from cloud.action_kinds import next_day
from cloud.operations import OperationsSettings
from edge.vehicle import VehicleAgent, VehicleSettings
from protocol import DeviceState, ParcelScan, StopEvent
from sync import parse_broker_url
from tests.helpers import MosquittoBroker, unique_id, wait_for
from tests.test_cloud_support import D0, DAY, FAST, QUICK, add_orders, api_client, network
from tests.test_ops_flow import DEV, feed, make, report, sequence

NEXT = next_day(DAY)


def _plan(c: Coordinator) -> dict[str, Any]:
    [morning] = c.dispatch.plan_day(DAY)
    assert morning["status"] == "complete"
    return morning


def _own_order(c: Coordinator, van: str) -> str:
    return next(a["order_id"] for a in c.db.assignments(vehicle_id=van))


def _stop(c: Coordinator, oid: str, kind: str, at_ms: int, reason: str | None = None) -> StopEvent:
    a = c.db.assignment(oid)
    return StopEvent(
        event_id=f"ev-{oid}-{kind}", route_id=a["route_id"],
        plan_version=c.db.latest_version(a["route_id"]), stop_id=oid, type=kind, at=at_ms,
        reason=reason,
    )  # fmt: skip


def _drain(c: Coordinator) -> None:
    for _ in range(3):  # an action queues messages the next pass sends
        c.operations.drain()


def _item(c: Coordinator, cls: str, status: str | None = None) -> dict[str, Any]:
    [item] = [i for i in c.db.exception_items(status, 500) if i["cls"] == cls]
    return item


def test_a_failed_delivery_is_reattempted_the_next_day_once(tmp_path: Path) -> None:
    c = make(tmp_path / "cloud.db")
    try:
        network(c, ["van-a", "van-b"])
        add_orders(c, 8)
        _plan(c)
        oid = _own_order(c, "van-a")
        window = c.db.order(oid)["window_start"]
        feed(c, "van-a", _stop(c, oid, "failed", int((D0 + 10 * 3600) * 1000), "absent"))
        assert c.db.order(oid)["status"] == "failed"
        item = _item(c, "failed_delivery")
        assert item["status"] == "auto_resolved"  # resolved by policy, nobody asked
        [action] = c.db.actions_of(item["item_id"])
        assert action["status"] == "queued"  # carried out after the ingest commit, not in it

        _drain(c)
        [action] = c.db.actions_of(item["item_id"])
        assert action["status"] == "done", action
        order = c.db.order(oid)
        assert (order["day"], order["status"]) == (NEXT, "open")
        assert order["window_start"] == window + 86_400
        assert c.db.assignment(oid) is None and c.db.stop_fact(oid) is None
        [kept] = c.db.query("SELECT * FROM stop_fact_history WHERE stop_id = ?", (oid,))
        assert kept["status"] == "failed" and kept["reason"] == "absent"
        assert action["outcome"]["orders"] == {oid: NEXT}
        d = c.db.decision(action["decision_id"])
        assert d["approved_by"] == "policy:failed_delivery"
        assert d["applied"]["actions"][action["action_id"]]["status"] == "done"
        [note] = [n for n in c.db.notifications(oid) if n["kind"] == "new_day"]
        assert note["status"] == "sent"

        # applied twice, or retried after a crash before the outbox said so: done once
        assert c.operations.exceptions.actions.run(action["action_id"])["status"] == "done"
        with c.store.transaction() as conn:
            conn.execute("UPDATE ops_outbox SET done_ms = NULL WHERE kind = 'action'")
        _drain(c)
        assert c.db.order(oid)["day"] == NEXT
        assert len([n for n in c.db.notifications(oid) if n["kind"] == "new_day"]) == 1

        # planned again: the next day's morning plan places it
        [tomorrow] = c.dispatch.plan_day(NEXT)
        assert tomorrow["status"] == "complete"
        assert c.db.assignment(oid) is not None and c.db.order(oid)["status"] == "assigned"
    finally:
        c.stop()


def test_a_late_stop_tells_its_customer_and_replans_the_route(tmp_path: Path) -> None:
    now = [D0 + 8 * 3600]
    c = make(tmp_path / "cloud.db", now)
    try:
        network(c, ["van-a", "van-b"])
        add_orders(c, 8)
        _plan(c)
        oid = _own_order(c, "van-a")
        route = c.db.assignment(oid)["route_id"]
        eta = int(D0) + 11 * 3600
        feed(c, "van-a", sequence(route, 1, [(oid, eta, 0)]))  # the first window
        now[0] += 10 * 60
        # ten minutes later the van predicts the stop 75 minutes late: the ETA rule waits
        # (rate limit), the exception's action tells the customer all the same
        feed(c, "van-a", sequence(route, 2, [(oid, eta + 75 * 60, 75 * 60)]))
        item = _item(c, "predicted_lateness")
        assert item["status"] == "auto_resolved" and item["chosen"]["key"] == "notify_customer"
        _drain(c)
        [action] = c.db.actions_of(item["item_id"])
        assert action["status"] == "waiting", action  # on the van's late trigger
        reasons = [n["reason"] for n in c.db.notifications(oid)]
        assert sorted(reasons) == ["delay", "first_window"]
        window = c.operations.etas.window_of(oid)["customer_window"]
        assert window["start_ms"] <= (eta + 75 * 60) * 1000 <= window["end_ms"]

        [rebalance] = c.dispatch.rebalance_pending()
        assert c.operations.exceptions.scan() == 0
        [action] = c.db.actions_of(item["item_id"])
        assert action["status"] == "done"
        assert action["outcome"]["rebalance"]["decisions"] == [rebalance["decision_id"]]
        assert "re-planned by trigger" in action["outcome"]["did"]
    finally:
        c.stop()


def test_a_carrier_outage_moves_its_orders_by_policy(tmp_path: Path) -> None:
    c = make(tmp_path / "cloud.db")
    try:
        network(c, ["van-a", "van-b"], carrier_price=20, carrier_stops=6)
        add_orders(c, 16)
        _plan(c)
        carried = [a["order_id"] for a in c.db.assignments(vehicle_id="dep1-3pl")]
        assert carried, "the cheap carrier takes some orders in the morning"
        c.dispatch.fleet_status("dep1-3pl", "down", DAY)
        assert c.operations.exceptions.scan() == 1
        item = _item(c, "carrier_outage")
        assert item["status"] == "auto_resolved"
        _drain(c)
        [action] = c.db.actions_of(item["item_id"])
        assert action["status"] == "waiting" and len(action["triggers"]) == 1
        c.dispatch.rebalance_pending()
        c.operations.exceptions.scan()
        [action] = c.db.actions_of(item["item_id"])
        assert action["status"] == "done"
        moved = action["outcome"]["rebalance"]["moved"]
        assert set(carried) <= set(moved)
        assert action["outcome"]["rebalance"]["versions"], "a van got the carrier's orders"
        assert c.db.assignments(vehicle_id="dep1-3pl") == []
    finally:
        c.stop()


def test_approve_and_override_through_the_api_and_each_bad_input(tmp_path: Path) -> None:
    now = [D0 + 8 * 3600]
    c = make(tmp_path / "cloud.db", now, open_in_development=False)
    try:
        network(c, ["van-a"], carrier_price=10_000)
        add_orders(c, 8)
        _plan(c)
        mine = [a["order_id"] for a in c.db.assignments(vehicle_id="van-a")]
        assert len(mine) >= 3
        t = int(now[0] * 1000)
        feed(c, "van-a", _stop(c, mine[0], "failed", t, "damaged"))  # escalated
        # two hours later, past the group window: a queue item of its own
        feed(c, "van-a", _stop(c, mine[1], "failed", t + 7_200_000, "damaged"))
        late = mine[2]
        route = c.db.assignment(late)["route_id"]
        # predicted six hours past the end of the van's shift (19:00): 180 EUR of overtime
        # at 30 EUR an hour is past the approval threshold (150 EUR): a person approves
        feed(c, "van-a", sequence(route, 1, [(late, int(D0) + 25 * 3600, 360 * 60)]))
        queue = {i["order_id"]: i for i in c.db.exception_items(queue=True)}
        damaged_a, damaged_b, lateness = queue[mine[0]], queue[mine[1]], queue[late]
        a_orders, b_orders = mine[:1], mine[1:2]
        assert lateness["status"] == "awaiting_approval"
        assert lateness["recommended"]["key"] == "notify_customer"
        assert lateness["context"]["context"]["cost_impact"] == 180.0
        ops, _ = c.operations.access.issue("Dispatcher Kim", ["ops"])
        h = {"Authorization": f"Bearer {ops}"}

        def counts() -> tuple[int, int, int]:
            return (
                len(c.db.decisions("exception", 1000)),
                len(c.db.actions(None, 1000)),
                len(c.db.outbox_due(1000)),
            )

        with api_client(c) as api:
            url = "/v1/exceptions/{}/{}"
            # an override naming an option not offered: 422, nothing changed
            before = counts()
            r = api.post(url.format(damaged_a["item_id"], "override"),
                         json={"option": "teleport", "why": "faster"}, headers=h)  # fmt: skip
            assert r.status_code == 422 and "not offered" in r.json()["error"]
            assert counts() == before
            assert c.db.exception_item(damaged_a["item_id"])["status"] == "escalated"

            # an option that cannot be carried out any more: the van delivered the late stop
            feed(c, "van-a", _stop(c, late, "delivered", t + 60_000))
            before = counts()
            r = api.post(url.format(lateness["item_id"], "approve"), json={}, headers=h)
            assert r.status_code == 409, r.text
            assert f"order {late} is already delivered" in r.json()["error"]
            assert counts() == before
            assert c.db.exception_item(lateness["item_id"])["status"] == "awaiting_approval"
            assert c.db.order(late)["status"] == "delivered"

            # approve: the recommended re-attempt happens at once, recorded with who and why
            r = api.post(url.format(damaged_a["item_id"], "approve"),
                         json={"why": "customer asked for a new parcel"}, headers=h)  # fmt: skip
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["action"]["status"] == "done", body["action"]
            assert body["action"]["by"] == "ops:Dispatcher Kim"
            assert c.db.order(a_orders[0])["day"] == NEXT
            d = api.get(f"/v1/decisions/{body['decision_id']}", headers=h).json()
            assert d["approved_by"] == "ops:Dispatcher Kim" and d["rule"] == "exception_policy"
            done = d["applied"]["actions"][body["action"]["action_id"]]
            assert done["status"] == "done" and NEXT in done["did"]
            detail = api.get(f"/v1/exceptions/{damaged_a['item_id']}", headers=h).json()
            assert [a["option"] for a in detail["actions"]] == ["reattempt_next_day"]
            # approving it again: 409, and it is not done twice
            again = api.post(url.format(damaged_a["item_id"], "approve"), json={}, headers=h)
            assert again.status_code == 409 and "already approved" in again.json()["error"]
            assert c.db.order(a_orders[0])["day"] == NEXT

            # override: return to sender is an instruction for ops staff (a task)
            r = api.post(url.format(damaged_b["item_id"], "override"),
                         json={"option": "return_to_sender", "why": "parcel crushed"},
                         headers=h)  # fmt: skip
            assert r.status_code == 200, r.text
            assert r.json()["action"]["status"] == "done"
            [task] = api.get("/v1/tasks", headers=h).json()
            assert task["option"] == "return_to_sender" and b_orders[0] in task["text"]
            assert c.db.order(b_orders[0])["day"] == DAY  # not re-attempted
            r = api.post(f"/v1/tasks/{task['task_id']}/done", json={"note": "sent"}, headers=h)
            assert r.status_code == 200 and r.json()["done_by"] == "ops:Dispatcher Kim"
            r = api.post(f"/v1/tasks/{task['task_id']}/done", json={}, headers=h)
            assert r.status_code == 409 and "already done" in r.json()["error"]
            assert api.post("/v1/tasks/task-nope/done", json={}, headers=h).status_code == 404

            summary = api.get("/v1/dashboard/summary", headers=h).json()
            shown = {a["item_id"]: a for a in summary["actions"]}
            assert shown[damaged_a["item_id"]]["outcome"]["did"].startswith("1 order(s) moved")
    finally:
        c.stop()


@pytest.mark.broker
def test_a_silent_loaded_van_is_escalated_and_its_stops_move_when_ops_say_so(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    now = [D0 + 8 * 3600]
    vans = [unique_id("van"), unique_id("van")]
    settings = CloudSettings(
        db_path=tmp_path / "cloud.db", broker=parse_broker_url(mosquitto.url), sync=FAST,
        dispatch=QUICK, rebalance_interval_s=0.2,
        operations=OperationsSettings(ops=DEV, tick_s=0.1),
    )  # fmt: skip
    c = Coordinator(settings, clock=lambda: now[0])
    agent: VehicleAgent | None = None
    try:
        network(c, vans, carrier_price=10_000)
        add_orders(c, 8)
        morning = _plan(c)
        silent, other = sorted(vans, key=lambda v: -len(c.db.assignments(vehicle_id=v)))
        c.start()
        agent = VehicleAgent(
            VehicleSettings(
                vehicle_id=other,
                db_path=tmp_path / "other.db",
                broker=parse_broker_url(mosquitto.url),
                sync=FAST,
            )
        )
        agent.start()
        first = morning["versions"].get(other, 0)
        if first:
            wait_for(lambda: _version(agent) == first, timeout=20)
        mine = [a["order_id"] for a in c.db.assignments(vehicle_id=silent)]
        assert len(mine) >= 2
        loaded = mine[0]
        parcel = c.db.stops_of([loaded])[loaded]["parcels"][0]
        t = int(now[0] * 1000)
        feed(c, "dep1", ParcelScan(scan_id="s-1", barcode=parcel["barcode"], at=t,
                                   result="loaded", parcel_id=parcel["parcel_id"],
                                   vehicle_id=silent))  # fmt: skip
        with c.store.transaction() as conn:
            c.db.set_state(conn, silent, DeviceState(status="offline", role="vehicle", at=t))
        now[0] += 200 * 60  # silent for over three hours with a parcel on board
        wait_for(lambda: c.db.exception_items(queue=True), timeout=10)
        [item] = c.db.exception_items(queue=True)
        assert item["cls"] == "vehicle_offline" and item["status"] == "escalated"
        assert item["recommended"]["key"] == "call_driver"

        with api_client(c) as api:
            r = api.post(
                f"/v1/exceptions/{item['item_id']}/override",
                json={"option": "reassign_remaining_stops", "why": "no answer for 3 hours"},
            )
            assert r.status_code == 200, r.text
            action_id = r.json()["action"]["action_id"]
            assert r.json()["action"]["status"] in ("waiting", "done")

            def carried_out() -> dict[str, Any] | None:
                a = c.db.action(action_id)
                return a if a and a["status"] == "done" else None

            wait_for(carried_out, timeout=60)
            action = carried_out()
            assert action is not None
            r = action["outcome"]["rebalance"]
            assert r["versions"].get(other, 0) > first, action["outcome"]
            assert loaded in r["held"]  # the parcel on the silent van waits for a hand-over
            [task] = c.db.tasks("open")
            assert task["option"] == "handover" and loaded in task["text"]
            moved = [o for o in mine if o != loaded]
            assert set(moved) <= set(r["moved"])
            wait_for(lambda: _version(agent) == r["versions"][other], timeout=20)
            got = {s.order_id for s in agent.book.remaining()}
            assert set(moved) <= got and loaded not in got
            assert c.db.vehicle(silent)["status"] == "broken"
            decision = api.get(f"/v1/decisions/{action['decision_id']}").json()
            assert decision["applied"]["actions"][action_id]["status"] == "done"
            assert "moved" in decision["applied"]["actions"][action_id]["did"]
    finally:
        if agent is not None:
            agent.stop()
        c.stop()


def _version(agent: VehicleAgent) -> int:
    route = agent.book.route()
    return int(route["version"]) if route else 0


def test_the_dashboard_summary_and_stats_count_actions(tmp_path: Path) -> None:
    c = make(tmp_path / "cloud.db")
    try:
        network(c, ["van-a"])
        t = int((D0 + 8 * 3600) * 1000)
        for k in range(3):
            feed(c, "dep1", report(f"dup-{k}", "duplicate", t + k, parcel_id=f"p{k}"))
        _drain(c)
        stats = c.operations.exceptions.stats()
        assert stats["actions"] == {"done": 3}  # one per incident, each recorded
        outcomes = {a["outcome"]["did"] for a in c.db.actions("done")}
        assert outcomes == {"the duplicate is held at the sorter (its rule); the first scan stands"}
    finally:
        c.stop()


def test_postpone_and_a_capacity_shortfall_through_overrides(tmp_path: Path) -> None:
    now = [D0 + 8 * 3600]
    c = make(tmp_path / "cloud.db", now)
    try:
        network(c, ["van-a"], carrier_price=10_000)
        add_orders(c, 6)
        _plan(c)
        mine = [a["order_id"] for a in c.db.assignments(vehicle_id="van-a")]
        late = mine[0]
        route = c.db.assignment(late)["route_id"]
        first = c.db.latest_version(route)
        # six hours past the van's shift: approval; the person postpones the stop instead
        feed(c, "van-a", sequence(route, 1, [(late, int(D0) + 25 * 3600, 360 * 60)]))
        item = _item(c, "predicted_lateness")
        out = c.operations.exceptions.decide(
            item["item_id"], "override", "Dispatcher Kim", "the customer is away tomorrow",
            "postpone",
        )  # fmt: skip
        assert out["action"]["status"] == "waiting"  # on the rebalance of today's region
        assert c.db.order(late)["day"] == NEXT and c.db.assignment(late) is None
        c.dispatch.rebalance_pending()
        c.operations.exceptions.scan()
        action = c.db.action(out["action"]["action_id"])
        assert action["status"] == "done", action
        plan = c.db.latest_plan(route)
        assert plan.version > first and late not in {s.stop_id for s in plan.stops}

        # the sorter reports 60 parcels that fit no van: escalated; handed to the region's
        # re-plan (move_to_carrier), which the dispatcher's trigger queue carries out
        feed(c, "dep1", report("cap-1", "capacity_shortfall", int(now[0] * 1000),
                               data={"parcels": 60, "depot_id": "dep1"}))  # fmt: skip
        cap = _item(c, "capacity_shortfall")
        assert cap["status"] == "escalated" and cap["recommended"]["key"] == "move_to_carrier"
        out = c.operations.exceptions.decide(cap["item_id"], "approve", "Dispatcher Kim")
        [trigger] = out["action"]["triggers"]
        assert c.db.trigger(None, trigger)["kind"] == "exception"
        [rebalance] = c.dispatch.rebalance_pending()
        assert rebalance["region"] == f"dep1/{DAY}"
        c.operations.exceptions.scan()
        action = c.db.action(out["action"]["action_id"])
        assert action["status"] == "done"
        assert action["outcome"]["rebalance"]["decisions"] == [rebalance["decision_id"]]
        assert c.operations.exceptions.scan() == 0  # its own trigger is not a new exception
    finally:
        c.stop()


def test_postpone_stops_of_a_broken_van_keeps_loaded_parcels_on_it(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        "[classes.vehicle_breakdown]\n"
        'action = "escalate"\n'
        'recommended = "reassign_remaining_stops"\n'
    )
    c = make(tmp_path / "cloud.db", policy_path=policy)
    try:
        network(c, ["van-a"], carrier_price=10_000)
        add_orders(c, 6)
        _plan(c)
        mine = [a["order_id"] for a in c.db.assignments(vehicle_id="van-a")]
        loaded = mine[0]
        parcel = c.db.stops_of([loaded])[loaded]["parcels"][0]
        t = int((D0 + 8 * 3600) * 1000)
        feed(c, "dep1", ParcelScan(scan_id="s-1", barcode=parcel["barcode"], at=t,
                                   result="loaded", parcel_id=parcel["parcel_id"],
                                   vehicle_id="van-a"))  # fmt: skip
        feed(c, "van-a", report("brk-1", "breakdown", t, "critical", detail="gearbox"))
        [item] = c.db.exception_items(queue=True)
        assert item["cls"] == "vehicle_breakdown"
        out = c.operations.exceptions.decide(
            item["item_id"], "override", "Dispatcher Kim", "no van free today", "postpone_stops"
        )
        outcome = out["action"]["outcome"]
        assert outcome["loaded"] == [loaded]  # stays on the van: a hand-over, not a postponement
        assert set(outcome["orders"]) == set(mine) - {loaded}
        for oid in outcome["orders"]:
            assert c.db.order(oid)["day"] == NEXT
        assert c.db.order(loaded)["day"] == DAY
    finally:
        c.stop()
