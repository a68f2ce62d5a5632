"""The 3PL's vans and the gig couriers in Wayline's day: outside systems, simulated here.

They run no Wayline gateway: the cloud hands them work (its assignments) and they report
what happened at each door through ``POST /v1/orders/{id}/outcome``, as a carrier's system
would. A courier works its own assignments, the carrier's vans share the carrier's list;
each takes next the order it can start serving soonest (the planner's travel estimate and
the window), nearest first on a tie. Legs and doorsteps are the
world's truth (:class:`TravelModel`, :meth:`World.attempt`). A vehicle whose carrier is
down finishes the stop in hand and takes nothing more.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from firmware_sim.day.outcomes import VehicleDay, Visit, return_leg, window_of
from firmware_sim.day.processes import CloudApi, HttpError
from firmware_sim.world import Order, TravelModel, Vehicle, World

__all__ = ["Partners"]

log = logging.getLogger(__name__)
NO_ANSWER_SERVICE_S = 90


@dataclass
class _Job:
    order: Order
    start: float
    done: float
    ok: bool
    reason: str | None


class Partners:
    """Every non-own vehicle of the world; :meth:`tick` advances them to a time of day."""

    def __init__(self, world: World, api: CloudApi) -> None:
        self.world, self.api = world, api
        self.travel = TravelModel(world)
        self.orders = {o.order_id: o for o in world.orders}
        self.vehicles = [v for v in world.vehicles if v.kind != "own"]
        self.days = {v.vehicle_id: VehicleDay(v) for v in self.vehicles}
        self.here = {v.vehicle_id: v.depot for v in self.vehicles}
        self.free_at = {v.vehicle_id: float(world.scenario.start) for v in self.vehicles}
        self.jobs: dict[str, _Job] = {}
        self.taken: set[str] = set()
        self.conflicts = 0

    def tick(self, t: float, final: set[str]) -> None:
        """Advance to ``t`` (s of day); ``final``: orders already done by anyone."""
        for v in self.vehicles:
            self._finish(v, t)
        lists: dict[str, list[str]] = {}
        for v in self.vehicles:
            vid = v.vehicle_id
            if vid in self.jobs or self.free_at[vid] > t or self.world.vehicle_down(v, t):
                continue
            key = v.fleet_id if v.kind == "3pl" else vid
            if key not in lists:
                rows = self.api.get(f"/v1/assignments?vehicle_id={key}")
                lists[key] = [r["order_id"] for r in rows]
            todo = [
                self.orders[o]
                for o in lists[key]
                if o in self.orders and o not in self.taken and o not in final
            ]
            if not todo:
                continue
            here, now = self.here[vid], max(t, self.free_at[vid])
            nxt = min(todo, key=lambda o: self._earliest(v, here, now, o))
            self._start(v, nxt, max(t, self.free_at[vid]))

    def _earliest(
        self, v: Vehicle, here: tuple[float, float], t: float, o: Order
    ) -> tuple[float, float]:
        """When service at ``o`` could start from ``here`` (planner's estimate); distance."""
        arrive = t + self.travel.estimate_s(here, (o.lat, o.lon), v.cruise_kmh)
        return (max(arrive, float(window_of(o)[0])), self.travel.road_km(here, (o.lat, o.lon)))

    def finish_day(self, t: float) -> None:
        for v in self.vehicles:
            self._finish(v, float("inf"))
            d = self.days[v.vehicle_id]
            if d.visits and d.back_at is None:
                return_leg(self.travel, d, self.here[v.vehicle_id], self.free_at[v.vehicle_id])

    def _start(self, v: Vehicle, o: Order, t: float) -> None:
        vid, here = v.vehicle_id, self.here[v.vehicle_id]
        secs, _ = self.travel.actual_s(here, (o.lat, o.lon), t, cruise_kmh=v.cruise_kmh)
        self.days[vid].km += self.travel.road_km(here, (o.lat, o.lon))
        start = max(t + secs, float(window_of(o)[0]))
        ok, reason = self.world.attempt(o)
        done = start + (o.service_s if ok else min(o.service_s, NO_ANSWER_SERVICE_S))
        self.jobs[vid] = _Job(o, start, done, ok, reason)
        self.taken.add(o.order_id)
        self.here[vid] = (o.lat, o.lon)
        self.free_at[vid] = done

    def _finish(self, v: Vehicle, t: float) -> None:
        job = self.jobs.get(v.vehicle_id)
        if job is None or job.done > t:
            return
        del self.jobs[v.vehicle_id]
        status = (
            ("picked_up" if job.order.kind == "pickup" else "delivered") if job.ok else "failed"
        )
        body = {"status": status, "by": v.vehicle_id, "reason": job.reason}
        try:
            self.api.post(f"/v1/orders/{job.order.order_id}/outcome", body)
        except HttpError as exc:
            if exc.status != 409:
                raise
            self.conflicts += 1  # someone else got there first: ours does not count
            return
        self.days[v.vehicle_id].visits.append(
            Visit(job.order.order_id, v.vehicle_id, job.start, job.done, job.ok, job.reason)
        )
