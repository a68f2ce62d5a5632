"""Carrying out what an exception decision chose: each option is a real action.

A decision that chose an option (the policy's automatic resolution, or a person's approval or
override) gets one action, stored with it and queued on the ops outbox in the decision's own
transaction; :meth:`ActionRunner.run` carries it out afterwards in one transaction of its
own, from the operations worker (or at once after an approval), never inside ingest. An
action runs once: a second run, or a retry after a crash, finds it no longer ``queued``.

What each option does (:data:`OPTION_KINDS`):

- **reschedule** (``reattempt_next_day``, ``postpone``, ``postpone_stops``): the order opens
  again on the next day (its date, window and status change in the store, it leaves its
  vehicle) and is planned again: by a ``reschedule`` trigger when that day is planned
  already, else by that day's morning plan. A failed stop's fact is set aside (kept in
  ``stop_fact_history``) so the next attempt's fact is the stop's own. A parcel on a van
  is not postponed (it is listed as needing a hand-over). Today's plans lose the stops through
  a ``reschedule`` trigger on today's region.
- **rebalance** (``reassign_remaining_stops``, ``move_orders_to_own_fleet``,
  ``move_orders_to_other_carrier``, ``move_to_carrier``, ``resequence``, ``move_stop``): a
  trigger on the dispatcher's queue (the one that caused the exception when there is one) —
  the rebalance re-plans the region and the vans whose stops changed get new plan versions;
  loaded parcels stay on their van unless handed over explicitly. The action waits until the
  trigger's decision closes it (:meth:`ActionRunner.follow_up`) and records what moved.
- **notify** (``notify_customer``): a customer message through the ETA machinery
  (:class:`cloud.customer_etas.CustomerEtas`) unless the customer's window already holds the
  new ETA; for a predicted lateness the van's ``late`` trigger re-sequences the route too.
- **task** (``call_driver``, ``return_to_depot``, ``send_replacement`` and any option the
  coordinator cannot carry out itself): an instruction in the ops task list, which a person
  marks done.
- **record** (``acknowledge``, ``await_reconnect``, ``wait``, ``deliver_and_flag`` and what the
  devices handle themselves): nothing to do beyond the decision record, which says so.

:meth:`ActionRunner.check` refuses an option that cannot be carried out any more (an order
already delivered, a vehicle the coordinator does not know) before a person's decision is
stored, so a refused approval changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from typing import TYPE_CHECKING, Any

from cloud.errors import ConflictError
from cloud.geo import day_of

if TYPE_CHECKING:
    from cloud.coordinator import Coordinator

__all__ = ["OPTION_KINDS", "ActionRunner", "kind_of"]

log = logging.getLogger(__name__)

OPTION_KINDS: dict[str, str] = {
    "reattempt_next_day": "reschedule",
    "postpone": "reschedule",
    "postpone_stops": "reschedule",
    "reassign_remaining_stops": "rebalance",
    "move_orders_to_own_fleet": "rebalance",
    "move_orders_to_other_carrier": "rebalance",
    "move_to_carrier": "rebalance",
    "resequence": "rebalance",
    "move_stop": "rebalance",
    "notify_customer": "notify",
    "acknowledge": "record",
    "await_reconnect": "record",
    "wait": "record",
    "deliver_and_flag": "record",
    "hold_duplicate": "record",
    "transfer_parcel": "record",
    "problem_shelf": "record",
    "repair_plan": "record",
    "replan_stop": "record",
    "move_stops": "record",
}
"""Option key → how it is carried out; any other key is a task for ops staff."""

_RECORDED = {
    "acknowledge": "acknowledged; nothing to carry out",
    "await_reconnect": "the gateway works offline; its outbox syncs when it is back",
    "wait": "waiting for the carrier to recover; its orders stay where they are",
    "deliver_and_flag": "delivered as planned and flagged for the shipper in this record",
    "hold_duplicate": "the duplicate is held at the sorter (its rule); the first scan stands",
    "transfer_parcel": "the sorter moves the parcel to its right place (its rule)",
    "problem_shelf": "the sorter puts the parcel on the problem shelf (its rule)",
    "repair_plan": "field facts win: ingest repaired the plan (the repair decision)",
    "replan_stop": "the van's own re-sequencer dropped the stop; the next plan places it",
    "move_stops": "the sorter places the overflow in its fallback container",
    "return_to_sender": "the sorter routes the cancelled parcel to returns",
}
#: Options that are device-handled for one class even though a person choosing them elsewhere
#: means a task (a cancelled parcel goes to returns at the sorter by itself).
_RECORDED_FOR = {("cancelled_parcel", "return_to_sender")}

_TRIGGER_OF_CLASS = {
    "vehicle_breakdown": "breakdown",
    "carrier_outage": "outage",
    "predicted_lateness": "late",
}
_GONE = ("delivered", "picked_up", "cancelled")


def kind_of(cls: str, option: str) -> str:
    """How ``option`` is carried out for an exception of class ``cls``."""
    if (cls, option) in _RECORDED_FOR:
        return "record"
    return OPTION_KINDS.get(option, "task")


def next_day(day: str) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()


class ActionRunner:
    """Queues, checks, carries out and follows up exception actions (module docstring)."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.c = coordinator
        self.db = coordinator.db

    # -- queue -----------------------------------------------------------------------------

    def queue(
        self,
        conn: sqlite3.Connection,
        item: dict[str, Any],
        option: dict[str, Any],
        by: str,
        decision_id: str,
        incident: dict[str, Any] | None = None,
    ) -> str:
        """Store an action and queue it on the ops outbox (in the caller's transaction).

        ``incident`` (plain data): the one incident an automatic resolution is for; without
        it, a person's decision on the whole item (every order its incidents name)."""
        now = self.c.now_ms()
        action_id = f"act-{incident['incident_id'] if incident else decision_id}"
        added = self.db.add_action(
            conn,
            {
                "action_id": action_id,
                "item_id": item["item_id"],
                "incident_id": incident["incident_id"] if incident else None,
                "decision_id": decision_id,
                "option": option["key"],
                "label": option.get("label") or option["key"],
                "by": by,
                "subject": self.subject(conn, item, incident),
                "status": "queued",
                "created_ms": now,
                "updated_ms": now,
            },
        )
        if added:
            self.db.add_outbox(conn, "action", action_id, {"action_id": action_id}, now)
        return action_id

    def subject(
        self, conn: sqlite3.Connection, item: dict[str, Any], incident: dict[str, Any] | None
    ) -> dict[str, Any]:
        """What an action is about: class, orders, vehicle, carrier, depot, incident data."""
        if incident is not None:
            incidents = [incident]
        else:
            incidents = self.db.incident_subjects(conn, item["item_id"])
            incidents = incidents or [item["context"]["incident"]]
        first = incidents[0]
        orders = list(dict.fromkeys(i["order_id"] for i in incidents if i.get("order_id")))
        return {
            "item_id": item["item_id"],
            "cls": item["cls"],
            "orders": orders,
            "vehicle_id": first.get("vehicle_id") or item.get("vehicle_id"),
            "carrier_id": first.get("carrier_id") or item.get("carrier_id"),
            "depot_id": first.get("depot_id"),
            "data": dict(incidents[-1].get("data") or {}),
        }

    # -- feasibility -----------------------------------------------------------------------

    def check(self, conn: sqlite3.Connection, item: dict[str, Any], option: str) -> dict[str, Any]:
        """Refuse (:class:`ConflictError`) an option that cannot be carried out any more;
        returns the subject the action will have."""
        subject = self.subject(conn, item, None)
        problem = self._problem(conn, subject, option)
        if problem:
            raise ConflictError(
                f"{option} cannot be carried out for exception {item['item_id']}: {problem}; "
                "reject it or override with another option"
            )
        return subject

    def _problem(self, conn: sqlite3.Connection, s: dict[str, Any], option: str) -> str | None:
        kind = kind_of(s["cls"], option)
        if kind in ("reschedule", "notify") and option != "postpone_stops":
            if option == "postpone" and not s["orders"]:
                return None  # the region's unplanned orders
            if not s["orders"]:
                return "it names no order"
            rows = [self.db.order(o, conn) for o in s["orders"]]
            if any(r is None for r in rows):
                return f"order {s['orders'][0]} is not known"
            gone = ("failed", "skipped", *_GONE) if kind == "notify" else _GONE
            left = [r for r in rows if r is not None and r["status"] not in gone]
            if not left:
                r = rows[0]
                assert r is not None
                return f"order {r['order_id']} is already {r['status']}"
        if option in ("reassign_remaining_stops", "postpone_stops"):
            vid = s["vehicle_id"]
            if not vid or self.db.vehicle(vid, conn) is None:
                return f"vehicle {vid!r} is not known"
        if option in ("move_orders_to_own_fleet", "move_orders_to_other_carrier"):
            cid = s["carrier_id"]
            if not cid or self.db.fleet(cid, conn) is None:
                return f"carrier {cid!r} is not known"
        if option in ("resequence", "move_stop") and not self._late_vehicle(conn, s):
            return "it names no van to re-plan"
        return None

    # -- run -------------------------------------------------------------------------------

    def run(self, action_id: str) -> dict[str, Any] | None:
        """Carry out a queued action once; returns the action as stored afterwards.

        A fault while carrying it out marks it ``failed`` with the error (and logs it),
        nothing half done: the action's writes are one transaction."""
        try:
            status = self._run(action_id)
        except Exception as exc:
            log.exception("exception action %s failed", action_id)
            with self.c.store.transaction() as conn:
                action = self.db.action(action_id, conn)
                if action is not None and action["status"] == "queued":
                    now = self.c.now_ms()
                    outcome = {"did": f"failed: {exc}"[:500]}
                    self.db.update_action(
                        conn, action_id, status="failed", outcome=outcome, updated_ms=now,
                        done_ms=now,
                    )  # fmt: skip
                    self._to_record(conn, action, "failed", outcome)
            return self.db.action(action_id)
        if status == "waiting":
            self.follow_up(action_id)
        return self.db.action(action_id)

    def _run(self, action_id: str) -> str | None:
        with self.c.store.transaction() as conn:
            action = self.db.action(action_id, conn)
            if action is None or action["status"] != "queued":
                return None
            subject = action["subject"]
            now = self.c.now_ms()
            kind = kind_of(subject["cls"], action["option"])
            problem = self._problem(conn, subject, action["option"])
            if problem:
                status, outcome, triggers = "skipped", {"did": f"not carried out: {problem}"}, []
            else:
                handler = getattr(self, f"_do_{kind}")
                status, outcome, triggers = handler(conn, subject, action, now)
            outcome = {**outcome, "kind": kind}
            self.db.update_action(
                conn,
                action_id,
                status=status,
                outcome=outcome,
                triggers=triggers,
                updated_ms=now,
                done_ms=now if status != "waiting" else None,
            )
            self._to_record(conn, action, status, outcome)
        log.info("exception action %s (%s): %s", action_id, action["option"], status)
        return status

    def follow_up(self, only: str | None = None) -> int:
        """Close the actions whose rebalance triggers were handled; returns how many."""
        waiting = [a for a in self.db.actions("waiting", 1000) if only in (None, a["action_id"])]
        ready = [a for a in waiting if all(self._closed(t) for t in a["triggers"])]
        for a in ready:
            with self.c.store.transaction() as conn:
                action = self.db.action(a["action_id"], conn)
                if action is None or action["status"] != "waiting":
                    continue
                ts = [t for t in (self.db.trigger(conn, t) for t in action["triggers"]) if t]
                outcome = {**action["outcome"], "rebalance": self._rebalanced(conn, ts)}
                outcome["did"] = _rebalance_text(action["outcome"].get("did", ""), outcome)
                now = self.c.now_ms()
                self.db.update_action(
                    conn, action["action_id"], status="done", outcome=outcome, updated_ms=now,
                    done_ms=now,
                )  # fmt: skip
                self._to_record(conn, action, "done", outcome)
        return len(ready)

    def _closed(self, trigger_id: int) -> bool:
        t = self.db.trigger(None, trigger_id)
        return t is None or t["decision_id"] is not None

    def _to_record(
        self, conn: sqlite3.Connection, action: dict[str, Any], status: str, outcome: dict[str, Any]
    ) -> None:
        """The decision record says what was carried out (each action of the decision)."""
        d = self.db.decision(action["decision_id"], conn)
        if d is None:
            return
        actions = dict(d["applied"].get("actions") or {})
        actions[action["action_id"]] = {
            "option": action["option"],
            "status": status,
            "did": outcome.get("did"),
            "by": action["by"],
        }
        self.db.set_applied(conn, action["decision_id"], {**d["applied"], "actions": actions})

    # -- the kinds -------------------------------------------------------------------------

    def _do_record(
        self, conn: sqlite3.Connection, s: dict[str, Any], action: dict[str, Any], now: int
    ) -> tuple[str, dict[str, Any], list[int]]:
        out: dict[str, Any] = {"did": _RECORDED.get(action["option"], "recorded")}
        if action["option"] == "repair_plan" and action["incident_id"]:
            repair = self._repair_of(conn, action["incident_id"])
            if repair:
                out["repair_decision"] = repair
        return "done", out, []

    def _do_task(
        self, conn: sqlite3.Connection, s: dict[str, Any], action: dict[str, Any], now: int
    ) -> tuple[str, dict[str, Any], list[int]]:
        about = [f"vehicle {s['vehicle_id']}"] if s["vehicle_id"] else []
        about += [f"order {o}" for o in s["orders"][:5]]
        if s["carrier_id"]:
            about.append(f"carrier {s['carrier_id']}")
        text = action["label"] + (f": {', '.join(about)}" if about else "")
        task_id = f"task-{action['action_id'][4:]}"
        self.db.add_task(
            conn,
            {
                "task_id": task_id,
                "action_id": action["action_id"],
                "item_id": s["item_id"],
                "option": action["option"],
                "text": text[:500],
                "vehicle_id": s["vehicle_id"],
                "order_id": s["orders"][0] if s["orders"] else None,
                "status": "open",
                "created_ms": now,
            },
        )
        return "done", {"did": f"ops task {task_id}: {text}", "task_id": task_id}, []

    def _do_notify(
        self, conn: sqlite3.Connection, s: dict[str, Any], action: dict[str, Any], now: int
    ) -> tuple[str, dict[str, Any], list[int]]:
        eta_s = s["data"].get("eta_s")
        did, sent = [], []
        for oid in s["orders"]:
            order = self.db.order(oid, conn)
            if order is None or order["status"] in ("failed", "skipped", *_GONE):
                continue
            eta = int(eta_s) * 1000 if eta_s and oid == s["data"].get("stop_id", oid) else None
            r = self.c.operations.etas.notify_delay(conn, order, eta, s["vehicle_id"], now)
            did.append(f"{oid}: {r['did']}")
            if r.get("notification_id"):
                sent.append(r["notification_id"])
        out: dict[str, Any] = {"did": "; ".join(did), "notifications": sent}
        triggers: list[int] = []
        vid = self._late_vehicle(conn, s)
        if s["cls"] == "predicted_lateness" and vid:
            t = self._trigger(conn, s, "late", vid)
            if t is not None:
                triggers.append(t)
                out["did"] += f"; the route is re-planned by trigger {t}"
        return ("waiting" if triggers else "done"), out, triggers

    def _do_rebalance(
        self, conn: sqlite3.Connection, s: dict[str, Any], action: dict[str, Any], now: int
    ) -> tuple[str, dict[str, Any], list[int]]:
        option = action["option"]
        out: dict[str, Any] = {}
        if option == "reassign_remaining_stops":
            vid = s["vehicle_id"]
            v = self.db.vehicle(vid, conn)
            if v is not None and v["status"] == "active":
                self.db.set_vehicle_status(conn, vid, "broken", now)
                out["vehicle_status"] = "broken"
            t = self._trigger(conn, s, "breakdown", vid)
            out["did"] = f"{vid}'s remaining stops re-planned onto other vehicles"
        elif option in ("move_orders_to_own_fleet", "move_orders_to_other_carrier"):
            cid = s["carrier_id"]
            f = self.db.fleet(cid, conn)
            if f is not None and f["status"] == "up":
                self.db.set_fleet_status(conn, cid, "down", now)
                out["fleet_status"] = "down"
            t = self._trigger(conn, s, "outage", cid)
            out["did"] = f"{cid}'s open orders re-planned onto the fleets still up"
        elif option in ("resequence", "move_stop"):
            vid = self._late_vehicle(conn, s)
            assert vid is not None  # checked
            t = self._trigger(conn, s, "late", vid)
            out["did"] = f"{vid}'s region re-planned (its late stops may move)"
        else:  # move_to_carrier and any other option that re-plans a region
            t = self._trigger(conn, s, "exception", s["item_id"])
            out["did"] = "the region re-planned; the overflow goes where it costs least"
        if t is None:
            return "skipped", {"did": "no region to re-plan was found"}, []
        out["did"] += f" (trigger {t})"
        return "waiting", out, [t]

    def _do_reschedule(
        self, conn: sqlite3.Connection, s: dict[str, Any], action: dict[str, Any], now: int
    ) -> tuple[str, dict[str, Any], list[int]]:
        option = action["option"]
        loaded: list[str] = []
        if option == "postpone_stops":
            ids, loaded = self._vehicle_open_orders(conn, s["vehicle_id"])
        elif option == "postpone" and not s["orders"]:
            ids = self._unplanned(conn, s)
        else:
            ids = list(s["orders"])
        why = f"{action['label']} ({s['cls']} {s['item_id']}, by {action['by']})"
        moved: dict[str, str] = {}
        today: set[tuple[str, str]] = set()
        triggers: list[int] = []
        for oid in ids:
            order = self.db.order(oid, conn)
            if order is None or order["status"] in _GONE:
                continue
            day = next_day(order["day"])
            if order["status"] in ("failed", "skipped"):
                self.db.set_aside_stop_fact(conn, oid, action["action_id"], now)
            elif self.db.assignment(oid, conn) is not None:
                today.add((order["depot_id"], order["day"]))
            self.db.move_order_to_day(conn, oid, day, 86_400, why[:300], now)
            moved[oid] = day
            if self.db.day_planned(conn, order["depot_id"], day):
                self.db.add_trigger(conn, "reschedule", order["depot_id"], day, oid, {}, now)
                t = self.db.open_trigger_id(conn, "reschedule", oid)
                if t is not None:
                    triggers.append(t)
        for depot, day in sorted(today):  # today's vans lose the stops in new versions
            subject = s["vehicle_id"] or s["item_id"]
            detail = {"exception": s["item_id"], "postponed": sorted(moved)}
            self.db.add_trigger(conn, "reschedule", depot, day, subject, detail, now)
            t = self.db.open_trigger_id(conn, "reschedule", subject)
            if t is not None:
                triggers.append(t)
        days = sorted(set(moved.values()))
        did = f"{len(moved)} order(s) moved to {', '.join(days) or 'no other day'}"
        if moved and not triggers:
            did += "; that day's morning plan places them"
        for oid in moved:
            self.c.operations.etas.notify_new_day(conn, oid, now)
        if moved:
            did += "; the customer told of the new day"
        out: dict[str, Any] = {"did": did, "orders": moved}
        if loaded:
            out["loaded"] = loaded
            out["did"] += f"; {len(loaded)} loaded on {s['vehicle_id']} need a hand-over"
        return ("waiting" if triggers else "done"), out, sorted(set(triggers))

    # -- helpers ---------------------------------------------------------------------------

    def _late_vehicle(self, conn: sqlite3.Connection, s: dict[str, Any]) -> str | None:
        if s["vehicle_id"]:
            return str(s["vehicle_id"])
        for oid in s["orders"]:
            a = self.db.assignment(oid, conn)
            if a and a["kind"] == "own":
                return str(a["vehicle_id"])
        return None

    def _day_of_vehicle(self, conn: sqlite3.Connection, vid: str) -> str:
        plan = self.db.latest_plan_of(vid, conn)
        return plan.day if plan else day_of(self.c.clock())

    def _trigger(
        self, conn: sqlite3.Connection, s: dict[str, Any], kind: str, subject: str
    ) -> int | None:
        """The trigger that re-plans for this exception: the one that caused it, an open one
        of the same kind and subject, or a new one on the subject's region."""
        known = s["data"].get("trigger_id")
        if isinstance(known, int) and self.db.trigger(conn, known) is not None:
            return known
        t = self.db.open_trigger_id(conn, kind, subject)
        if t is not None:
            return t
        region = self._region(conn, s)
        if region is None:
            return None
        detail = {"exception": s["item_id"], "class": s["cls"]}
        self.db.add_trigger(conn, kind, region[0], region[1], subject, detail, self.c.now_ms())
        return self.db.open_trigger_id(conn, kind, subject)

    def _region(self, conn: sqlite3.Connection, s: dict[str, Any]) -> tuple[str, str] | None:
        for oid in s["orders"]:
            order = self.db.order(oid, conn)
            if order is not None:
                return str(order["depot_id"]), str(order["day"])
        if s["vehicle_id"]:
            v = self.db.vehicle(s["vehicle_id"], conn)
            if v is not None:
                return str(v["depot_id"]), self._day_of_vehicle(conn, s["vehicle_id"])
        if s["carrier_id"]:
            f = self.db.fleet(s["carrier_id"], conn)
            if f is not None:
                return str(f["depot_id"]), day_of(self.c.clock())
        if s["depot_id"] and self.db.depot(s["depot_id"], conn) is not None:
            return str(s["depot_id"]), day_of(self.c.clock())
        return None

    def _vehicle_open_orders(
        self, conn: sqlite3.Connection, vid: str
    ) -> tuple[list[str], list[str]]:
        """A vehicle's open orders: those still at the depot, and those loaded on it."""
        rows = self.db.vehicle_orders(conn, vid)
        on_van = self.db.loaded_parcels(vid, conn)
        stops = self.db.stops_of([r["order_id"] for r in rows], conn)
        plan = self.db.latest_plan_of(vid, conn)
        departed = plan is not None and self.db.facts_on_route(vid, plan.route_id, conn) > 0
        free: list[str] = []
        loaded: list[str] = []
        for r in rows:
            mine = {p["parcel_id"] for p in stops.get(r["order_id"], {}).get("parcels", [])}
            (loaded if (mine & on_van) or departed else free).append(r["order_id"])
        return free, loaded

    def loaded_count(self, conn: sqlite3.Connection, vid: str) -> int:
        """How many open orders are loaded on a vehicle."""
        return len(self._vehicle_open_orders(conn, vid)[1])

    def _unplanned(self, conn: sqlite3.Connection, s: dict[str, Any]) -> list[str]:
        region = self._region(conn, s)
        if region is None:
            return []
        rows = self.db.rows(
            conn,
            "SELECT order_id FROM orders WHERE depot_id = ? AND day = ? AND status = 'unplanned' "
            "ORDER BY order_id",
            region,
        )
        return [r["order_id"] for r in rows]

    def _repair_of(self, conn: sqlite3.Connection, incident_id: str) -> str | None:
        row = self.db.one(
            conn,
            "SELECT decision_id FROM decisions WHERE kind = 'repair' "
            "AND json_extract(trigger, '$.exception_id') = ? LIMIT 1",
            (incident_id,),
        )
        return row["decision_id"] if row else None

    def _rebalanced(
        self, conn: sqlite3.Connection, triggers: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """What the decisions that handled the triggers moved and sent."""
        out: dict[str, Any] = {"decisions": [], "moved": [], "versions": {}, "held": {}}
        for t in triggers:
            d = self.db.decision(t["decision_id"], conn) if t["decision_id"] else None
            if d is None:
                continue
            out["decisions"].append(d["decision_id"])
            applied = d["applied"] or {}
            out["moved"] = sorted(set(out["moved"]) | set(applied.get("moved") or []))
            out["versions"].update(applied.get("versions") or {})
            for oid, why in (d["output"].get("unplanned") or {}).items():
                if "hand-over" in str(why):
                    out["held"][oid] = why
        return out


def _rebalance_text(did: str, outcome: dict[str, Any]) -> str:
    r = outcome["rebalance"]
    versions = ", ".join(f"{v} v{n}" for v, n in sorted(r["versions"].items())) or "none"
    text = f"{did}: {len(r['moved'])} order(s) moved, new plan versions: {versions}"
    if r["held"]:
        text += f"; {len(r['held'])} loaded order(s) held for a hand-over"
    return text
