"""What the stores say at the end of the day: events sent and applied, exceptions, notices.

Read-only SQLite reads of every device's store and the cloud's (the demo never imports the
cloud: it reads the files it left, as an auditor would).

* **events**: each device's outbox counter (``sync_out.next_seq - 1`` towards the cloud) is
  what it sent; the cloud's ``events`` log (one row per ``(src, seq)``) what it applied.
  Lost = sent - applied per device; duplicated = rows sharing a message id.
* **exceptions** (the rule, as the coordinator records them): every exception a device
  reported (``exceptions`` table) and every disruption trigger the cloud queued (carrier
  outage, breakdown, van predicted late). One is *resolved without a person* when a
  decision taken by policy (``approved_by`` ``policy:*``) closed it with a solution, or —
  for a device's breakdown report — when that report turned into such a trigger; it is
  *escalated* when its decision is an escalation, found no solution, or nothing closed it.
* **notifications**: the customer messages the cloud sent, read from its own
  ``notifications`` table (status ``sent``), not replayed here.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["events_ledger", "exceptions_ledger", "notifications"]

DISRUPTION_TRIGGERS = ("outage", "breakdown", "late")


def _ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def events_ledger(work: Path, devices: list[str], cloud_db: Path) -> dict[str, Any]:
    sent: dict[str, int] = {}
    for dev in devices:
        with _ro(work / f"{dev}.db") as c:
            row = c.execute("SELECT next_seq - 1 FROM sync_out WHERE peer = 'cloud'").fetchone()
        sent[dev] = int(row[0]) if row else 0
    with _ro(cloud_db) as c:
        applied = dict(c.execute("SELECT src, count(*) FROM events GROUP BY src").fetchall())
        dup = c.execute("SELECT count(*) - count(DISTINCT id) FROM events").fetchone()[0]
        kinds = dict(c.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
    lost = sum(max(0, n - applied.get(dev, 0)) for dev, n in sent.items())
    return {
        "events_sent": sum(sent.values()),
        "events_applied": sum(applied.get(dev, 0) for dev in devices),
        "events_lost": lost,
        "events_duplicated": int(dup),
        "events_by_kind": kinds,
        "events_by_device": {d: {"sent": sent[d], "applied": applied.get(d, 0)} for d in devices},
    }


NEEDS_PERSON = ("open", "awaiting_approval", "escalated", "approved", "rejected", "overridden")


def exceptions_ledger(cloud_db: Path, day_start_ms: int) -> dict[str, Any]:
    """The coordinator's own triage when it ran (every incident it classified, resolved by
    policy or not by the status of the item it was grouped into); else the rule above."""
    with _ro(cloud_db) as c:
        c.row_factory = sqlite3.Row
        try:
            triaged = [dict(r) for r in c.execute(
                "SELECT i.cls, i.at_ms, i.source, i.action, t.status FROM exception_incidents i "
                "JOIN exception_items t USING (item_id) ORDER BY i.at_ms"
            )]  # fmt: skip
        except sqlite3.OperationalError:
            triaged = []
        try:
            acts = c.execute(
                "SELECT option, status, count(*) FROM exception_actions GROUP BY 1, 2 ORDER BY 1, 2"
            ).fetchall()
        except sqlite3.OperationalError:
            acts = []
    if triaged:
        items = [
            {"category": r["cls"], "at_s": (r["at_ms"] - day_start_ms) / 1000,
             "auto": r["status"] not in NEEDS_PERSON, "subject": r["source"],
             "policy": r["action"]}
            for r in triaged
        ]  # fmt: skip
        out = _tally(items, "coordinator triage (exception_incidents)")
        by_action: dict[str, dict[str, int]] = {}
        for i in items:
            row = by_action.setdefault(i["category"], {})
            row[i["policy"]] = row.get(i["policy"], 0) + 1
        out["exceptions_by_policy_action"] = by_action
        actions: dict[str, dict[str, int]] = {}
        for option, status, n in acts:
            actions.setdefault(option, {})[status] = int(n)
        out["exception_actions"] = actions
        return out
    return _replayed(cloud_db, day_start_ms)


def _tally(items: list[dict[str, Any]], source: str) -> dict[str, Any]:
    auto = sum(1 for i in items if i["auto"])
    cats: dict[str, dict[str, int]] = {}
    for i in items:
        c2 = cats.setdefault(i["category"], {"total": 0, "auto": 0})
        c2["total"] += 1
        c2["auto"] += int(i["auto"])
    return {
        "exceptions_total": len(items),
        "exceptions_auto_resolved": auto,
        "exceptions_escalated": len(items) - auto,
        "exceptions_by_category": cats,
        "exceptions_source": source,
        "timeline": sorted(items, key=lambda i: i["at_s"]),
    }


def _replayed(cloud_db: Path, day_start_ms: int) -> dict[str, Any]:
    with _ro(cloud_db) as c:
        c.row_factory = sqlite3.Row
        decisions = {r["decision_id"]: dict(r) for r in c.execute(
            "SELECT decision_id, kind, approved_by, status, trigger, at_ms FROM decisions"
        )}  # fmt: skip
        triggers = [dict(r) for r in c.execute("SELECT * FROM triggers ORDER BY at_ms")]
        reported = [dict(r) for r in c.execute("SELECT * FROM exceptions ORDER BY at_ms")]
    items: list[dict[str, Any]] = []

    def by_policy(d: dict[str, Any] | None) -> bool:
        return (
            d is not None
            and str(d["approved_by"]).startswith("policy:")
            and d["kind"] != "escalation"
            and d["status"] != "no_solution"
        )

    for t in triggers:
        if t["kind"] not in DISRUPTION_TRIGGERS:
            continue
        d = decisions.get(t["decision_id"]) if t["decision_id"] else None
        items.append({"category": t["kind"], "at_s": (t["at_ms"] - day_start_ms) / 1000,
                      "auto": by_policy(d), "subject": t["subject"]})  # fmt: skip
    by_exception = {}
    for d in decisions.values():
        trig = json.loads(d["trigger"] or "{}")
        if trig.get("exception_id"):
            by_exception[trig["exception_id"]] = d
    broken_triggers = {t["subject"] for t in triggers if t["kind"] == "breakdown"}
    for x in reported:
        d = by_exception.get(x["exception_id"])
        auto = by_policy(d) or (
            x["category"] == "breakdown" and (x["vehicle_id"] or x["src"]) in broken_triggers
        )
        items.append({"category": x["category"], "at_s": (x["at_ms"] - day_start_ms) / 1000,
                      "auto": auto, "subject": x["src"]})  # fmt: skip
    for d in decisions.values():
        if d["kind"] == "escalation" and not json.loads(d["trigger"] or "{}").get("exception_id"):
            items.append({"category": "escalation", "at_s": (d["at_ms"] - day_start_ms) / 1000,
                          "auto": False, "subject": d["decision_id"]})  # fmt: skip
    return _tally(items, "decisions and triggers (the rule above)")


def notifications(cloud_db: Path, day_start_ms: int) -> dict[str, Any]:
    """The customer messages the cloud actually sent (its ``notifications`` table): by
    status, by kind (an ETA window given or moved, a delivery moved to another day) and by
    the rule's reason; the times they left."""
    with _ro(cloud_db) as c:
        try:
            rows = c.execute(
                "SELECT kind, reason, status, created_ms, sent_ms FROM notifications "
                "ORDER BY created_ms"
            ).fetchall()
        except sqlite3.OperationalError:  # a store without operations
            rows = []
    sent = [r for r in rows if r[2] == "sent"]
    by_reason: dict[str, int] = {}
    for _kind, reason, *_ in sent:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    return {
        "notifications_sent": len(sent),
        "notifications_not_sent": sum(1 for r in rows if r[2] != "sent"),
        "notifications_first": by_reason.get("first_window", 0),
        "notifications_moved": sum(by_reason.get(k, 0) for k in ("shift", "narrowed", "delay")),
        "notifications_new_day": sum(1 for r in sent if r[0] == "new_day"),
        "notifications_by_reason": by_reason,
        "notifications_source": "cloud notifications table (status sent)",
        "notice_times_ms": [r[4] or r[3] for r in sent if r[0] != "new_day"],
        "failed_times_s": [
            ((r[4] or r[3]) - day_start_ms) / 1000 for r in sent if r[0] == "new_day"
        ],
    }
