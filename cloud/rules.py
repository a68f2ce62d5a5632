"""Repair and operator rules: pure, deterministic functions from recorded inputs to an output.

Field facts win (DESIGN rule 4). Each rule takes the JSON inputs a decision records and
returns the JSON output it records, so replaying a rule decision is calling its rule again.

* ``fact_elsewhere``: a vehicle reports a final fact for a stop the cloud had given to
  another vehicle. The fact stands: the order is done by the vehicle that did it, and the
  other vehicle's route loses the stop in a new plan version.
* ``plan_conflict``: a vehicle says a plan listed a stop it had already finished (the plan
  arrived after it re-sequenced and acted). With the fact known, the stop leaves the
  vehicle's route in a new version; with no fact known, it is escalated.
* ``second_fact``: a second final fact for a stop already final. The first one stays; a
  different outcome (delivered vs failed) is escalated to a person.
* ``duplicate_scan``: the same parcel scanned with the same result at the same place again
  is ignored (the first scan stands); a ``loaded`` scan onto a van other than the one the
  order is assigned to is escalated with the hand-over as the recommended action.
* ``reassign``: an operator moves orders to a vehicle; loaded ones move only as an explicit
  hand-over, which the output lists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cloud.exception_rules import exception_policy

__all__ = ["RULES"]


def fact_elsewhere(i: dict[str, Any]) -> dict[str, Any]:
    stops = i["plan_stops"]
    out: dict[str, Any] = {
        "order_status": i["fact"]["type"],
        "done_by": i["fact"]["vehicle"],
        "remove_from": i["assigned_to"],
        "new_version": None,
        "stops": None,
    }
    if i["stop_id"] in stops:
        out["new_version"] = i["plan_version"] + 1
        out["stops"] = [s for s in stops if s != i["stop_id"]]
    return out


def plan_conflict(i: dict[str, Any]) -> dict[str, Any]:
    fact, stops = i["fact"], i["plan_stops"]
    if fact is None:
        return {
            "action": "escalate",
            "recommend": "the vehicle reports the stop done but the cloud holds no fact: "
            "check the vehicle's outbox and the driver's record",
        }
    if i["stop_id"] not in stops:
        return {"action": "none", "why": "the latest plan no longer lists the stop"}
    return {
        "action": "remove_stop",
        "new_version": i["plan_version"] + 1,
        "stops": [s for s in stops if s != i["stop_id"]],
    }


def second_fact(i: dict[str, Any]) -> dict[str, Any]:
    first, second = i["first"], i["second"]
    differs = first["type"] != second["type"] or first["vehicle"] != second["vehicle"]
    return {
        "action": "keep_first",
        "final": first["type"],
        "escalate": differs,
        "recommend": "confirm with both drivers which outcome happened" if differs else None,
    }


def duplicate_scan(i: dict[str, Any]) -> dict[str, Any]:
    scan = i["scan"]
    for e in i["earlier"]:
        same_place = (e["vehicle_id"], e["depot_id"]) == (scan["vehicle_id"], scan["depot_id"])
        if e["result"] == scan["result"] and same_place:
            return {"action": "ignore", "kept": e["scan_id"]}
    target = i["assigned_to"]
    if scan["result"] == "loaded" and target and scan["vehicle_id"] not in (None, target):
        return {
            "action": "escalate",
            "recommend": f"parcel {scan['parcel_id']} is on {scan['vehicle_id']} but its order "
            f"is planned on {target}: hand the order over to {scan['vehicle_id']} or move "
            "the parcel back",
        }
    return {"action": "none"}


def reassign(i: dict[str, Any]) -> dict[str, Any]:
    return {
        "assign": {oid: i["to_vehicle"] for oid in sorted(i["order_ids"])},
        "handover": sorted(i["loaded"]),
    }


RULES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "fact_elsewhere": fact_elsewhere,
    "plan_conflict": plan_conflict,
    "second_fact": second_fact,
    "duplicate_scan": duplicate_scan,
    "reassign": reassign,
    "exception_policy": exception_policy,
}
