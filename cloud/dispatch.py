"""Planning and rebalancing across fleets, one region (depot and day) at a time.

The morning plan and every rebalance solve a region's snapshot (:mod:`cloud.snapshot`) with
:mod:`cloud.planning`: bounded, seeded, warm-started from the current plan, with a stability
cost per order moved off its current vehicle, so a rebalance changes as little as it needs.
Regions are independent problems (decomposition by depot), so a day scales with its depots
and a rebalance re-solves only the regions its triggers name. Several regions are solved in
parallel child processes (``DispatchSettings.workers``, default 1): every
snapshot is taken first, the solves run side by side, then each result is applied and
recorded in turn. A solve stopped by its iteration limit gives the same plan in a worker
as in this process, so decisions still replay exactly.

The morning plan of a region happens once: at the depot's cut-off by the schedule
(:mod:`cloud.morning`) or on request, whichever comes first; the other finds the region's
``plan`` decision and answers with it instead of solving again. Days are the depot's local days
(:mod:`cloud.local_days`).

Triggers (queued in the store, handled by :meth:`Dispatcher.rebalance_pending`): a carrier
or courier outage, a vehicle breakdown, a van predicted late (its sequence reports'
``late_s``), a mid-day order, a cancellation, a customer reschedule.

A solve's result is written in one transaction with its decision: assignments, order
statuses, and new plan versions for the own vans whose stop set changed (3PL and gig
assignments are stored for their systems to fetch). A solve that finds nothing changes no
assignment: its decision says ``no_solution``, and orders without a vehicle are marked
unplanned with that reason. Orders that became field facts during the solve are left as
the facts say (listed under ``applied.skipped_final``).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cloud.decisions import record
from cloud.errors import ConflictError, InvalidError, NotFoundError
from cloud.geo import TravelModel
from cloud.regions import solve_regions
from cloud.route_plans import build_van_plan, emit_plan, stop_set
from cloud.rules import RULES
from cloud.snapshot import build_snapshot, route_id_for
from cloud.store import DONE
from sync import Tx

if TYPE_CHECKING:
    from cloud.coordinator import Coordinator
    from cloud.planning import PlanResult

__all__ = ["DispatchSettings", "Dispatcher"]

_Job = tuple[str, str, dict[str, Any], list[int]]
"""(depot id, day, trigger, trigger ids) of one region to solve."""


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """How the coordinator plans. ``iterations`` stops PyVRP's search (reproducible);
    ``time_limit_s`` is the safety bound that should never be reached. ``workers`` is how
    many regions are solved at once in child processes (1: one after another, in process).
    A child costs ~2 s of imports: on the shared 2-core machine four 250-order regions
    took 6.8 s one after another and 13.9 s two at a time (``docs/performance.md``), so
    parallel solving is for long solves on free cores, not the default.
    """

    time_limit_s: float = 60.0
    iterations: int = 1000
    seed: int = 7
    solver: str = "auto"
    stability_cost: int = 2_000
    late_threshold_s: int = 900
    workers: int = 1
    travel: TravelModel = field(default_factory=TravelModel)

    def params(self) -> dict[str, Any]:
        return {
            "time_limit_s": self.time_limit_s,
            "seed": self.seed,
            "solver": self.solver,
            "iteration_limit": self.iterations,
        }


class Dispatcher:
    """Plans, rebalances and reassigns; one solve at a time."""

    def __init__(self, coordinator: Coordinator, settings: DispatchSettings) -> None:
        self.c = coordinator
        self.db = coordinator.db
        self.settings = settings
        self._lock = threading.Lock()

    # -- entry points ----------------------------------------------------------------------

    def plan_day(
        self,
        day: str,
        depot_ids: list[str] | None = None,
        approved_by: str = "policy:plan",
        *,
        why: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """The morning plan: every region of ``day`` (or the depots named), one decision each.

        ``day`` is each depot's local day. A region already planned is not solved again: its
        answer is the recorded decision, with ``already_planned`` true. ``why`` (by depot id)
        adds to the trigger each decision records, e.g. the cut-off the schedule ran at.
        """
        regions = list(dict.fromkeys(depot_ids or self.db.regions(day)))
        for d in regions:
            if self.db.depot(d) is None:
                raise InvalidError(f"unknown depot {d!r}")
        extra = why or {}
        jobs: list[_Job] = [
            (d, day, {"kind": "morning_plan", "day": day, **extra.get(d, {})}, []) for d in regions
        ]
        return self._solve(jobs, "plan", approved_by)

    def rebalance_pending(self, approved_by: str = "policy:rebalance") -> list[dict[str, Any]]:
        """Handle every queued trigger: one rebalance per region they name."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for t in self.db.open_triggers():
            groups[(t["depot_id"], t["day"])].append(t)
        jobs: list[_Job] = []
        for (depot, day), ts in sorted(groups.items()):
            trigger = {
                "kind": "events",
                "events": [
                    {"kind": t["kind"], "subject": t["subject"], "detail": t["detail"]} for t in ts
                ],
            }
            jobs.append((depot, day, trigger, [t["trigger_id"] for t in ts]))
        return self._solve(jobs, "rebalance", approved_by) if jobs else []

    def fleet_status(self, fleet_id: str, status: str, day: str) -> None:
        """A carrier or courier fleet goes down (its open orders move) or comes back."""
        f = self.db.fleet(fleet_id)
        if f is None:
            raise NotFoundError(f"no fleet {fleet_id!r}")
        now = self.c.now_ms()
        with self.c.store.transaction() as conn:
            self.db.set_fleet_status(conn, fleet_id, status, now)
            kind = "outage" if status == "down" else "fleet_up"
            self.db.add_trigger(conn, kind, f["depot_id"], day, fleet_id, {"fleet": f["kind"]}, now)

    def vehicle_status(self, vehicle_id: str, status: str, day: str, why: str = "") -> bool:
        """A vehicle breaks down (``broken``) or comes back (``active``). True if known."""
        v = self.db.vehicle(vehicle_id)
        if v is None:
            return False
        with self.c.store.transaction() as conn:
            self.set_vehicle_status(conn, v, status, day, why)
        return True

    def set_vehicle_status(
        self, conn: Any, v: dict[str, Any], status: str, day: str, why: str
    ) -> None:
        now = self.c.now_ms()
        self.db.set_vehicle_status(conn, v["vehicle_id"], status, now)
        kind = "breakdown" if status != "active" else "vehicle_back"
        detail = {"why": why} if why else {}
        self.db.add_trigger(conn, kind, v["depot_id"], day, v["vehicle_id"], detail, now)

    def reassign(
        self, order_ids: list[str], to_vehicle: str, approved_by: str, handover: bool = False
    ) -> dict[str, Any]:
        """An operator moves orders to a vehicle; a loaded order moves only with ``handover``."""
        v = self.db.vehicle(to_vehicle)
        if v is None or v["status"] != "active" or v["fleet_status"] != "up":
            raise InvalidError(f"vehicle {to_vehicle!r} is unknown or not available")
        rows = [self.db.order(o) for o in order_ids]
        for oid, row in zip(order_ids, rows, strict=True):
            if row is None:
                raise NotFoundError(f"no order {oid!r}")
            if row["status"] in DONE:
                raise ConflictError(f"order {oid!r} is already {row['status']}")
        regions = {(r["depot_id"], r["day"]) for r in rows if r}
        if len(regions) != 1:
            raise InvalidError("reassign orders of one depot and day at a time")
        depot_id, day = regions.pop()
        with self._lock:
            snap = self._snapshot(depot_id, day)
            loaded = [o["id"] for o in snap["orders"] if o["id"] in order_ids and o["pinned"]] + [
                oid for oid in order_ids if oid in snap["held"]
            ]
            loaded = [o for o in loaded if snap["previous"].get(o) != to_vehicle]
            if loaded and not handover:
                raise ConflictError(
                    f"order {loaded[0]!r} is loaded on {snap['previous'][loaded[0]]}: "
                    "moving it takes an explicit hand-over (handover=true)"
                )
            inputs = {
                "order_ids": sorted(order_ids),
                "to_vehicle": to_vehicle,
                "from": {o: snap["previous"].get(o) for o in sorted(order_ids)},
                "loaded": sorted(loaded),
            }
            output = RULES["reassign"](inputs)
            now = self.c.now_ms()
            with self.c.node.transaction() as tx:
                did = record(
                    self.db,
                    tx.conn,
                    kind="handover" if loaded else "reassign",
                    rule="reassign",
                    trigger={"kind": "operator", "by": approved_by},
                    inputs=inputs,
                    output=output,
                    applied={},
                    approved_by=approved_by,
                    now_ms=now,
                    region=f"{depot_id}/{day}",
                    decision_id=None,
                )
                touched = {to_vehicle} | {f for f in inputs["from"].values() if f}
                end = len(self.db.assignments(vehicle_id=to_vehicle, conn=tx.conn))
                for k, oid in enumerate(sorted(order_ids)):
                    self.db.set_assignment(
                        tx.conn,
                        oid,
                        to_vehicle,
                        v["kind"],
                        route_id_for(to_vehicle, day) if v["kind"] == "own" else None,
                        None,
                        end + k,
                        None,
                        did,
                        now,
                    )
                    self.db.set_order_status(tx.conn, oid, "assigned", None, now)
                versions = self._refresh_vans(tx, sorted(touched), depot_id, day, did, now)
                self.db.set_applied(tx.conn, did, {"versions": versions})
        return {"decision_id": did, "handover": output["handover"], "versions": versions}

    # -- the solve -------------------------------------------------------------------------

    def _snapshot(self, depot_id: str, day: str) -> dict[str, Any]:
        s = self.settings
        return build_snapshot(
            self.db, depot_id, day, int(self.c.clock()), s.travel, s.stability_cost
        )

    def _solve(self, jobs: list[_Job], kind: str, approved_by: str) -> list[dict[str, Any]]:
        """Snapshot every region, solve them (in parallel), then apply and record each.

        A morning plan (``kind`` ``plan``) of a region that has one already is answered
        with that one, unsolved."""
        with self._lock:
            prior: dict[int, dict[str, Any]] = {}
            if kind == "plan":
                for k, (depot_id, day, _, _) in enumerate(jobs):
                    found = self.db.morning_plan(f"{depot_id}/{day}")
                    if found is not None:
                        prior[k] = _answer_of(found)
            todo = [job for k, job in enumerate(jobs) if k not in prior]
            snaps = [self._snapshot(depot_id, day) for depot_id, day, _, _ in todo]
            params = self.settings.params()
            solved = solve_regions(snaps, params, self.settings.workers) if todo else []
            fresh = iter(
                [
                    self._record(job, snap, params, kind, approved_by, *res)
                    for job, snap, res in zip(todo, snaps, solved, strict=True)
                ]
            )
            return [prior[k] if k in prior else next(fresh) for k in range(len(jobs))]

    def _record(
        self,
        job: _Job,
        snap: dict[str, Any],
        params: dict[str, Any],
        kind: str,
        approved_by: str,
        output: dict[str, Any],
        result: PlanResult,
        seconds: float,
    ) -> dict[str, Any]:
        depot_id, day, trigger, trigger_ids = job
        bound = "time" if result.seconds >= 0.95 * params["time_limit_s"] else "iterations"
        self.c.metrics.plan_solved(kind, result.solver, seconds)
        with self.c.node.transaction() as tx:
            now = self.c.now_ms()  # once the store is ours: after what ingest saved meanwhile
            if kind == "plan":  # planned meanwhile by another coordinator on this store
                found = self.db.morning_plan(f"{depot_id}/{day}", tx.conn)
                if found is not None:
                    return _answer_of(found)
            applied = self._apply(tx, snap, output, now)
            did = record(
                self.db,
                tx.conn,
                kind=kind,
                rule="solve",
                trigger=trigger,
                inputs=snap,
                output=output,
                applied=applied["summary"],
                approved_by=approved_by,
                now_ms=now,
                region=f"{depot_id}/{day}",
                solver=result.solver,
                params={**params, "stopped_by": bound},
                status=output["status"],
                seconds=seconds,
                decision_id=applied["decision_id"],
            )
            self.db.close_triggers(tx.conn, trigger_ids, did)
        return {
            "decision_id": did,
            "region": f"{depot_id}/{day}",
            "kind": kind,
            "status": output["status"],
            "orders": len(snap["orders"]) + len(snap["held"]),
            "unplanned": len(output["unplanned"]),
            "seconds": round(seconds, 3),
            **applied["summary"],
            "already_planned": False,
        }

    def _apply(
        self, tx: Tx, snap: dict[str, Any], output: dict[str, Any], now: int
    ) -> dict[str, Any]:
        from cloud.decisions import new_decision_id

        did = new_decision_id()
        conn, day, depot_id = tx.conn, snap["day"], snap["depot_id"]
        order_ids = [o["id"] for o in snap["orders"]] + list(snap["held"])
        final = {
            oid for oid in order_ids if (r := self.db.order(oid, conn)) and r["status"] in DONE
        }
        summary: dict[str, Any] = {"skipped_final": sorted(final)}
        if output["status"] == "no_solution":
            for oid in order_ids:
                if oid not in final and self.db.assignment(oid, conn) is None:
                    self.db.set_order_status(
                        conn, oid, "unplanned", "no solution found in time", now
                    )
            summary.update(kept_current=True, moved=[], versions={})
            return {"decision_id": did, "summary": summary}
        kinds = {v["id"]: v["type"] for v in snap["vehicles"]}
        d0 = snap["day_start"]  # the depot's local midnight
        moved = []
        for vid, oids in output["routes"].items():
            kind = {"carrier": "3pl"}.get(kinds[vid], kinds[vid])
            rid = route_id_for(vid, day) if kind == "own" else None
            for pos, oid in enumerate(o for o in oids if o not in final):
                if snap["previous"].get(oid) not in (None, vid):
                    moved.append(oid)
                at = output["service_at"].get(oid)
                self.db.set_assignment(
                    conn, oid, vid, kind, rid, None, pos, None if at is None else d0 + at, did, now
                )
                self.db.set_order_status(conn, oid, "assigned", None, now)
        for oid, reason in output["unplanned"].items():
            if oid in final:
                continue
            if oid not in snap["held"]:
                if snap["previous"].get(oid):
                    moved.append(oid)
                self.db.drop_assignment(conn, oid)
            self.db.set_order_status(conn, oid, "unplanned", reason, now)
        vans = {v["id"] for v in snap["vehicles"] if v["type"] == "own"}
        vans |= {
            vid
            for vid in set(snap["previous"].values())
            if (v := self.db.vehicle(vid, conn)) and v["kind"] == "own"
        }
        versions = self._refresh_vans(tx, sorted(vans), depot_id, day, did, now)
        summary.update(moved=sorted(set(moved)), versions=versions)
        return {"decision_id": did, "summary": summary}

    def _refresh_vans(
        self, tx: Tx, vans: list[str], depot_id: str, day: str, did: str, now: int
    ) -> dict[str, int]:
        """Send a new version to each van whose stop set changed; return the versions sent."""
        conn = tx.conn
        depot = self.db.depot(depot_id, conn)
        sent: dict[str, int] = {}
        for vid in vans:
            v = self.db.vehicle(vid, conn)
            if v is None or v["kind"] != "own":
                continue
            rid = route_id_for(vid, day)
            mine = [
                a["order_id"]
                for a in self.db.assignments(vehicle_id=vid, conn=conn)
                if a["route_id"] == rid
                and (r := self.db.order(a["order_id"], conn)) is not None
                and r["status"] not in DONE
            ]
            latest = self.db.latest_plan(rid, conn)
            if latest is None and not mine:
                continue
            version = (latest.version if latest else 0) + 1
            plan = build_van_plan(
                self.db, conn, vehicle=v, depot=depot, day=day, route_id=rid,
                version=version, order_ids=mine,
            )  # fmt: skip
            if latest is not None and stop_set(latest) == stop_set(plan):
                continue
            emit_plan(self.db, tx, plan, now, depot_id)
            self.db.mark_since_version(conn, vid, rid, version)
            sent[vid] = version
        return sent


def _answer_of(decision: dict[str, Any]) -> dict[str, Any]:
    """What a recorded morning plan answers when its region is asked to plan again."""
    inputs, output = decision["inputs"], decision["output"]
    return {
        "decision_id": decision["decision_id"],
        "region": decision["region"],
        "kind": decision["kind"],
        "status": decision["status"],
        "orders": len(inputs["orders"]) + len(inputs["held"]),
        "unplanned": len(output["unplanned"]),
        "seconds": round(decision["seconds"], 3),
        **decision["applied"],
        "already_planned": True,
    }
