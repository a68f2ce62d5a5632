"""The solver-neutral model: screened orders, compiled vehicles and the cost of a leg.

Both solvers build from this, and :mod:`cloud.planning.evaluate` prices and checks their
answers with the same leg costs, so the two engines are compared on one objective.

Leg cost for vehicle ``v`` from location ``a`` (service ``s`` there) to ``b``:
``round(dist*cost_per_km/1000) + round((s + dur)*cost_per_hour/3600)`` plus the carrier's or
courier's price when ``b`` is an order, plus the stability cost when that order is on
another vehicle in the current plan. A carrier has no distance or time cost; a gig courier's
end is "anywhere" (a virtual location at zero distance).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cloud.planning.params import PlanningParams
from cloud.planning.problem import (
    Carrier,
    FleetKind,
    GigCourier,
    Order,
    OrderKind,
    OwnVan,
    PlanningProblem,
    Vehicle,
)
from cloud.planning.result import UnplannedOrder, UnplannedReason

__all__ = ["ANYWHERE", "CompiledVehicle", "Model", "build_model"]

logger = logging.getLogger(__name__)

ANYWHERE = -1
"""Location index of the virtual end of a gig courier's route."""

IntArray = npt.NDArray[np.int64]

_STAGE_SKILLS, _STAGE_CAPACITY, _STAGE_TIME, _STAGE_OK = 1, 2, 3, 4
_STAGE_REASON = {
    0: UnplannedReason.NO_SKILLED_VEHICLE,
    _STAGE_SKILLS: UnplannedReason.NO_SKILLED_VEHICLE,
    _STAGE_CAPACITY: UnplannedReason.NO_CAPACITY,
    _STAGE_TIME: UnplannedReason.IMPOSSIBLE_WINDOW,
}


@dataclass(frozen=True, slots=True)
class CompiledVehicle:
    """A vehicle reduced to what the solvers need. ``capacity``/``max_stops`` None: unlimited."""

    vehicle: Vehicle
    start: int
    end: int  # ANYWHERE for gig couriers
    earliest: int
    latest: int
    capacity: int | None
    max_stops: int | None
    fixed_cost: int
    cost_per_km: int
    cost_per_hour: int
    price_per_stop: int
    timed: bool  # False for a carrier: it sequences its own route

    @property
    def kind(self) -> FleetKind:
        return self.vehicle.kind


@dataclass(frozen=True, slots=True)
class Model:
    problem: PlanningProblem
    params: PlanningParams
    orders: tuple[Order, ...]  # the plannable ones
    allowed: tuple[frozenset[int], ...]  # vehicle indices per plannable order
    current: tuple[int, ...]  # current vehicle index per plannable order, -1 if none
    screened: tuple[UnplannedOrder, ...]
    vehicles: tuple[CompiledVehicle, ...]
    dur: IntArray
    dist: IntArray
    horizon: int
    required_penalty: int
    warm_routes: dict[int, list[int]]

    @property
    def has_pickups(self) -> bool:
        return any(o.kind is OrderKind.PICKUP for o in self.orders)

    @property
    def has_stop_limits(self) -> bool:
        return any(v.max_stops is not None for v in self.vehicles)

    def due(self, o: Order) -> int:
        return self.horizon if o.due is None else o.due

    def leg(self, v: int, a: int, service: int, b: int, order: int | None) -> tuple[int, ...]:
        """(distance units, distance cost, time cost, stop price, stability) of one leg."""
        cv = self.vehicles[v]
        d = t = 0
        if cv.timed and b != ANYWHERE and a != ANYWHERE:
            d, t = int(self.dist[a, b]), int(self.dur[a, b])
        dcost = (d * cv.cost_per_km + 500) // 1000 if cv.timed else 0
        tcost = ((service + t) * cv.cost_per_hour + 1800) // 3600 if cv.timed else 0
        price = stab = 0
        if order is not None:
            price = cv.price_per_stop
            cur = self.current[order]
            if cur >= 0 and cur != v:
                stab = self.problem.stability_cost
        return d, dcost, tcost, price, stab

    def cost_matrix(self, v: int, locs: IntArray, service: IntArray, order: IntArray) -> IntArray:
        """Leg costs between solver nodes (``locs`` may hold ANYWHERE; ``order`` -1 if none)."""
        cv = self.vehicles[v]
        n = len(locs)
        cost = np.zeros((n, n), dtype=np.int64)
        if cv.timed:
            d, t = self._sub(locs)
            cost += (d * cv.cost_per_km + 500) // 1000
            cost += ((service[:, None] + t) * cv.cost_per_hour + 1800) // 3600
        is_order = order >= 0
        cost[:, is_order] += cv.price_per_stop
        if self.problem.stability_cost:
            cur = np.where(is_order, np.asarray(self.current, dtype=np.int64)[order], -1)
            moved = (cur >= 0) & (cur != v)
            cost[:, moved] += self.problem.stability_cost
        return cost

    def time_matrix(self, v: int, locs: IntArray, service: IntArray) -> IntArray:
        """Service at the origin plus travel time, between solver nodes (0 for a carrier)."""
        n = len(locs)
        if not self.vehicles[v].timed:
            return np.zeros((n, n), dtype=np.int64)
        _, t = self._sub(locs)
        return service[:, None] + t

    def distance_matrix(self, v: int, locs: IntArray) -> IntArray:
        if not self.vehicles[v].timed:
            return np.zeros((len(locs), len(locs)), dtype=np.int64)
        return self._sub(locs)[0]

    def _sub(self, locs: IntArray) -> tuple[IntArray, IntArray]:
        safe = np.where(locs == ANYWHERE, 0, locs)
        d = self.dist[np.ix_(safe, safe)].copy()
        t = self.dur[np.ix_(safe, safe)].copy()
        virtual = locs == ANYWHERE
        for m in (d, t):
            m[virtual, :] = 0
            m[:, virtual] = 0
        return d, t

    def cost_class(self, v: int) -> tuple[object, ...]:
        """Vehicles with equal keys have equal cost and time matrices."""
        cv = self.vehicles[v]
        owns_current = self.problem.stability_cost > 0 and v in self.current
        return (
            cv.timed,
            cv.end == ANYWHERE,
            cv.cost_per_km,
            cv.cost_per_hour,
            cv.price_per_stop,
            v if owns_current else None,
        )


def build_model(problem: PlanningProblem, params: PlanningParams) -> Model:
    dur = np.asarray(problem.durations, dtype=np.int64)
    dist = np.asarray(problem.distances, dtype=np.int64)
    horizon = (
        max(
            [problem.now + 1]
            + [o.due for o in problem.orders if o.due is not None]
            + [o.ready + o.service for o in problem.orders]
            + [_latest(v) for v in problem.vehicles if not isinstance(v, Carrier)]
        )
        + int(dur.max())
        + 1
    )
    vehicles = tuple(_compile(v, problem.now, horizon) for v in problem.vehicles)
    vindex = {cv.vehicle.id: i for i, cv in enumerate(vehicles)}
    current_of = problem.current_vehicle_of()

    plannable: list[Order] = []
    allowed: list[frozenset[int]] = []
    current: list[int] = []
    screened: list[UnplannedOrder] = []
    for o in problem.orders:
        due = horizon if o.due is None else o.due
        cur = vindex.get(current_of.get(o.id, ""), -1)
        if o.ready > due:
            screened.append(UnplannedOrder(o.id, UnplannedReason.IMPOSSIBLE_WINDOW))
            continue
        candidates = [vindex[o.pinned_vehicle]] if o.pinned_vehicle else range(len(vehicles))
        stages = {i: _stage(vehicles[i], o, due, cur == i, dur) for i in candidates}
        ok = frozenset(i for i, s in stages.items() if s == _STAGE_OK)
        if not ok:
            reason = _STAGE_REASON[max(stages.values(), default=0)]
            if o.pinned_vehicle and reason is not UnplannedReason.NO_CAPACITY:
                reason = UnplannedReason.PINNED_VEHICLE_CANNOT_SERVE
            screened.append(UnplannedOrder(o.id, reason))
            continue
        plannable.append(o)
        allowed.append(ok)
        current.append(cur)
    if screened:
        logger.info("%d orders cannot be planned: %s", len(screened), screened[:5])

    warm: dict[int, list[int]] = {}
    pos = {o.id: k for k, o in enumerate(plannable)}
    for vid, seq in problem.current_plan.items():
        v = vindex[vid]
        route = [pos[oid] for oid in seq if oid in pos and v in allowed[pos[oid]]]
        if route:
            warm[v] = route

    model = Model(
        problem=problem,
        params=params,
        orders=tuple(plannable),
        allowed=tuple(allowed),
        current=tuple(current),
        screened=tuple(screened),
        vehicles=vehicles,
        dur=dur,
        dist=dist,
        horizon=horizon,
        required_penalty=0,
        warm_routes=warm,
    )
    penalty = params.required_drop_penalty or _derived_penalty(model)
    object.__setattr__(model, "required_penalty", penalty)
    return model


def _latest(v: Vehicle) -> int:
    return v.shift_end if isinstance(v, OwnVan) else v.available_until  # type: ignore[union-attr]


def _compile(v: Vehicle, now: int, horizon: int) -> CompiledVehicle:
    if isinstance(v, OwnVan):
        start = v.depot if v.start is None else v.start
        return CompiledVehicle(
            v,
            start,
            v.depot,
            max(now, v.shift_start),
            v.shift_end,
            v.capacity,
            None,
            v.fixed_cost,
            v.cost_per_km,
            v.cost_per_hour,
            0,
            True,
        )
    if isinstance(v, Carrier):
        return CompiledVehicle(
            v,
            v.depot,
            v.depot,
            now,
            horizon,
            None,
            v.daily_stops,
            0,
            0,
            0,
            v.price_per_stop,
            False,
        )
    assert isinstance(v, GigCourier)
    return CompiledVehicle(
        v,
        v.start,
        ANYWHERE,
        max(now, v.available_from),
        v.available_until,
        v.capacity,
        None,
        0,
        0,
        0,
        v.price_per_drop,
        True,
    )


def _stage(cv: CompiledVehicle, o: Order, due: int, is_current: bool, dur: IntArray) -> int:
    v = cv.vehicle
    if not o.skills <= v.skills:
        return _STAGE_SKILLS
    if isinstance(v, GigCourier) and o.kind is OrderKind.PICKUP:
        return _STAGE_SKILLS
    if isinstance(v, Carrier):
        closed = cv.earliest > v.cutoff and not is_current
        if v.daily_stops == 0 or closed:
            return _STAGE_CAPACITY
    if cv.capacity is not None and o.demand > cv.capacity:
        return _STAGE_CAPACITY
    if not cv.timed:
        return _STAGE_OK if max(cv.earliest, o.ready) <= due else _STAGE_TIME
    begin = max(cv.earliest + int(dur[cv.start, o.location]), o.ready)
    back = 0 if cv.end == ANYWHERE else int(dur[o.location, cv.end])
    if begin > due or begin + o.service + back > cv.latest:
        return _STAGE_TIME
    return _STAGE_OK


def _derived_penalty(m: Model) -> int:
    """Large enough that serving a required order always beats leaving it out."""
    max_d, max_t = int(m.dist.max()), int(m.dur.max())
    max_service = max((o.service for o in m.orders), default=0)
    worst = 0
    for cv in m.vehicles:
        leg = (max_d * cv.cost_per_km) // 1000 + ((max_t + max_service) * cv.cost_per_hour) // 3600
        worst = max(worst, 2 * leg + cv.price_per_stop + cv.fixed_cost)
    base = worst + m.params.vehicle_fixed_cost + m.problem.stability_cost
    base = max(base, max((o.postponement_cost for o in m.orders), default=0))
    return 10 * base + 1_000
