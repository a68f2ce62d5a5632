"""The decision record: every plan, rebalance, repair, hand-over and escalation, and replay.

A decision is stored with its trigger, a snapshot of its inputs, its solver, parameters and
seed, its output and the output's SHA-256, what was applied, and who or what approved it
(``policy:...`` for automatic ones, ``ops:NAME`` or an API caller for people).

**Replay** re-runs a decision from the record alone and compares outputs:

* solver decisions (``plan``, ``rebalance``) rebuild the planning problem from the snapshot
  (:func:`cloud.snapshot.problem_from_snapshot`; the travel matrices' SHA-256 is checked
  too) and solve it with the recorded parameters. They are reproducible because the
  coordinator plans with PyVRP, a fixed seed and an **iteration limit** well inside a
  generous time limit: the search stops after the same iterations every time, never on the
  clock. A decision whose solve hit the time limit is marked ``stopped_by: time`` and its
  replay may legitimately differ (the report says so).
* rule decisions (repairs, hand-overs, escalations) re-run their rule
  (:data:`cloud.rules.RULES`) on the recorded inputs.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from typing import Any

from cloud.errors import NotFoundError
from cloud.planning import PlanResult, plan
from cloud.rules import RULES
from cloud.snapshot import params_from_dict, problem_from_snapshot
from cloud.store import CloudStore

__all__ = ["new_decision_id", "output_sha", "record", "replay", "solve_snapshot"]

SOLVER_KINDS = ("plan", "rebalance")


def new_decision_id() -> str:
    return f"dec-{uuid.uuid4().hex[:16]}"


def output_sha(output: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(output, sort_keys=True).encode()).hexdigest()


def solve_snapshot(
    snap: dict[str, Any], params: dict[str, Any]
) -> tuple[dict[str, Any], PlanResult]:
    """Solve a region's snapshot; the output is plain JSON, ordered, with no timings."""
    problem, msha = problem_from_snapshot(snap)
    p = params_from_dict(params)
    result = plan(problem, p)
    unplanned = {u.order_id: u.reason.value for u in result.unplanned}
    unplanned.update(snap["held"])
    output = {
        "status": result.status.value,
        "routes": {r.vehicle_id: list(r.order_ids) for r in sorted(result.routes, key=_vid)},
        "service_at": {
            s.order_id: s.service_start
            for r in result.routes
            for s in r.stops
            if s.service_start is not None
        },
        "unplanned": dict(sorted(unplanned.items())),
        "objective": result.objective,
        "matrices_sha": msha,
    }
    return output, result


def _vid(r: Any) -> str:
    return str(r.vehicle_id)


def record(
    db: CloudStore,
    conn: sqlite3.Connection,
    *,
    kind: str,
    rule: str,
    trigger: dict[str, Any],
    inputs: dict[str, Any],
    output: dict[str, Any],
    applied: dict[str, Any],
    approved_by: str,
    now_ms: int,
    region: str | None = None,
    solver: str | None = None,
    params: dict[str, Any] | None = None,
    status: str = "applied",
    seconds: float = 0.0,
    decision_id: str | None = None,
) -> str:
    """Store one decision in the caller's transaction; return its id."""
    did = decision_id or new_decision_id()
    db.add_decision(
        conn,
        {
            "decision_id": did,
            "kind": kind,
            "rule": rule,
            "region": region,
            "trigger": trigger,
            "inputs": inputs,
            "solver": solver,
            "params": params or {},
            "seed": (params or {}).get("seed"),
            "output": output,
            "output_sha": output_sha(output),
            "applied": applied,
            "approved_by": approved_by,
            "status": status,
            "seconds": round(seconds, 4),
            "at_ms": now_ms,
        },
    )
    return did


def replay(db: CloudStore, decision_id: str) -> dict[str, Any]:
    """Re-run a recorded decision; ``reproduced`` is True when the output is the same."""
    d = db.decision(decision_id)
    if d is None:
        raise NotFoundError(f"no decision {decision_id!r}")
    t0 = time.perf_counter()
    if d["kind"] in SOLVER_KINDS:
        output, _ = solve_snapshot(d["inputs"], d["params"])
    else:
        output = RULES[d["rule"]](d["inputs"])
    sha = output_sha(output)
    diffs = [
        f"{k}: recorded {_short(d['output'].get(k))}, replayed {_short(output.get(k))}"
        for k in sorted(set(d["output"]) | set(output))
        if d["output"].get(k) != output.get(k)
    ]
    return {
        "decision_id": decision_id,
        "kind": d["kind"],
        "rule": d["rule"],
        "solver": d["solver"],
        "seed": d["seed"],
        "params": d["params"],
        "stopped_by": d["params"].get("stopped_by"),
        "recorded_sha": d["output_sha"],
        "replayed_sha": sha,
        "reproduced": sha == d["output_sha"],
        "differences": diffs[:10],
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."
