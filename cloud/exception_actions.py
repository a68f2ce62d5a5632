"""Carrying out what an exception decision chose: each option is a real action.

A decision that chose an option (the policy's automatic resolution, or a person's approval or
override) gets one action, stored with it and queued on the ops outbox in the decision's own
transaction; :meth:`ActionRunner.run` carries it out afterwards in one transaction of its
own, from the operations worker (or at once after an approval), never inside ingest. An
action runs once: a second run, or a retry after a crash, finds it no longer ``queued``.

What each option does (:data:`cloud.action_kinds.OPTION_KINDS`):

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

import logging
import sqlite3
from typing import TYPE_CHECKING, Any

from cloud.action_kinds import GONE, ActionKinds, kind_of, rebalance_text
from cloud.errors import ConflictError

if TYPE_CHECKING:
    from cloud.coordinator import Coordinator

__all__ = ["ActionRunner"]

log = logging.getLogger(__name__)


class ActionRunner(ActionKinds):
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
            gone = ("failed", "skipped", *GONE) if kind == "notify" else GONE
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
                vid = action["subject"].get("vehicle_id")
                outcome = {**action["outcome"], "rebalance": self._rebalanced(conn, ts, vid)}
                outcome["did"] = rebalance_text(action["outcome"].get("did", ""), outcome)
                now = self.c.now_ms()
                held = sorted(outcome["rebalance"]["held"])
                if held and vid and action["option"] == "reassign_remaining_stops":
                    task = self._handover_task(conn, action, vid, held, now)
                    outcome["did"] += f"; ops task {task} for the hand-over"
                self.db.update_action(
                    conn, action["action_id"], status="done", outcome=outcome, updated_ms=now,
                    done_ms=now,
                )  # fmt: skip
                self._to_record(conn, action, "done", outcome)
        return len(ready)

    def _handover_task(
        self, conn: sqlite3.Connection, action: dict[str, Any], vid: str, held: list[str], now: int
    ) -> str:
        """Loaded parcels move only by an explicit hand-over: an instruction for ops staff."""
        task_id = f"task-{action['action_id'][4:]}-handover"
        shown = ", ".join(held[:10]) + (" ..." if len(held) > 10 else "")
        self.db.add_task(
            conn,
            {
                "task_id": task_id,
                "action_id": action["action_id"],
                "item_id": action["item_id"],
                "option": "handover",
                "text": f"Hand over the {len(held)} loaded order(s) on {vid} to another "
                f"vehicle (POST /v1/assign with handover): {shown}"[:500],
                "vehicle_id": vid,
                "order_id": held[0],
                "status": "open",
                "created_ms": now,
            },
        )
        return task_id

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
