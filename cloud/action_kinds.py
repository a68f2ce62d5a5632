"""What each exception option does, carried out through the coordinator.

:data:`OPTION_KINDS` maps an option to its kind; :class:`ActionKinds` holds one handler per
kind (``_do_reschedule``, ``_do_rebalance``, ``_do_notify``, ``_do_task``, ``_do_record``),
each working inside the action's transaction and returning its status, its outcome and the
rebalance triggers it waits on. :class:`cloud.exception_actions.ActionRunner` queues, checks,
runs and follows the actions up; ``docs/operations.md`` lists what each option does.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import TYPE_CHECKING, Any

from cloud.geo import day_of

if TYPE_CHECKING:
    from cloud.coordinator import Coordinator
    from cloud.store import CloudStore

__all__ = ["GONE", "OPTION_KINDS", "ActionKinds", "kind_of", "next_day", "rebalance_text"]

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
_RECORDED_FOR: set[tuple[str, str]] = {("cancelled_parcel", "return_to_sender")}

GONE = ("delivered", "picked_up", "cancelled")


def kind_of(cls: str, option: str) -> str:
    """How ``option`` is carried out for an exception of class ``cls``."""
    if (cls, option) in _RECORDED_FOR:
        return "record"
    return OPTION_KINDS.get(option, "task")


def next_day(day: str) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()


class ActionKinds:
    """The handlers of each kind of option and what they share (mixed into the runner)."""

    c: Coordinator
    db: CloudStore

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
            if order is None or order["status"] in ("failed", "skipped", *GONE):
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
            if order is None or order["status"] in GONE:
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

    def _day_of_vehicle(self, conn: sqlite3.Connection, vid: str, depot_id: str) -> str:
        plan = self.db.latest_plan_of(vid, conn)
        return plan.day if plan else day_of(self.c.clock(), self.db.depot_zone(depot_id, conn))

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
                depot = str(v["depot_id"])
                return depot, self._day_of_vehicle(conn, s["vehicle_id"], depot)
        if s["carrier_id"]:
            f = self.db.fleet(s["carrier_id"], conn)
            if f is not None:
                depot = str(f["depot_id"])
                return depot, day_of(self.c.clock(), self.db.depot_zone(depot, conn))
        if s["depot_id"] and self.db.depot(s["depot_id"], conn) is not None:
            depot = str(s["depot_id"])
            return depot, day_of(self.c.clock(), self.db.depot_zone(depot, conn))
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
        self, conn: sqlite3.Connection, triggers: list[dict[str, Any]], vid: str | None = None
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
                if "hand-over" in str(why) and (vid is None or f"loaded on {vid}," in str(why)):
                    out["held"][oid] = why
        return out


def rebalance_text(did: str, outcome: dict[str, Any]) -> str:
    r = outcome["rebalance"]
    versions = ", ".join(f"{v} v{n}" for v, n in sorted(r["versions"].items())) or "none"
    text = f"{did}: {len(r['moved'])} order(s) moved, new plan versions: {versions}"
    if r["held"]:
        text += f"; {len(r['held'])} loaded order(s) held for a hand-over"
    return text
