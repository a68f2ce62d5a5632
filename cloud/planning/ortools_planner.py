"""The OR-Tools planner: the only module that imports OR-Tools.

The setup that measured best on the Solomon benchmark (see ANCHORS): every cost and time
as a registered transit *matrix* (no per-call Python), parallel cheapest insertion for the
first solution, guided local search, a fixed cost per vehicle. Every order is a disjunction
(its postponement cost when optional, a large penalty when required), so a plan is found
even when some required order cannot fit; vehicles and pins become allowed-vehicle sets.
OR-Tools has no seed: with ``iteration_limit`` (a solution limit) a run is reproducible.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from cloud.planning.evaluate import evaluate, no_solution
from cloud.planning.model import ANYWHERE, Model, build_model
from cloud.planning.params import PlanningParams
from cloud.planning.problem import OrderKind, PlanningProblem
from cloud.planning.result import PlanResult

__all__ = ["OrToolsPlanner"]

logger = logging.getLogger(__name__)

_MIN_BUDGET_S = 0.05


class OrToolsPlanner:
    """Plans with OR-Tools' routing library (guided local search)."""

    name = "ortools"

    def plan(self, problem: PlanningProblem, params: PlanningParams) -> PlanResult:
        t0 = time.perf_counter()
        model = build_model(problem, params)
        return self.solve(model, params.time_limit_s - (time.perf_counter() - t0))

    def solve(self, model: Model, time_limit_s: float) -> PlanResult:
        t0 = time.perf_counter()
        if not model.orders or not model.vehicles:
            return evaluate(model, {}, self.name, time.perf_counter() - t0)
        routing, manager = _build(model)
        search = _search_parameters(model, time_limit_s - (time.perf_counter() - t0))
        routing.CloseModelWithParameters(search)
        initial = None
        if model.warm_routes:
            routes = [model.warm_routes.get(v, []) for v in range(len(model.vehicles))]
            initial = routing.ReadAssignmentFromRoutes(routes, True)
            if initial is None:
                logger.warning("warm start rejected by OR-Tools; solving from scratch")
        if initial is not None:
            solution = routing.SolveFromAssignmentWithParameters(initial, search)
        else:
            solution = routing.SolveWithParameters(search)
        seconds = time.perf_counter() - t0
        if solution is None:
            status = routing.status()
            return no_solution(model, self.name, seconds, f"OR-Tools found no plan ({status})")
        n = len(model.orders)
        assignment: dict[int, list[int]] = {}
        for v in range(len(model.vehicles)):
            index = solution.Value(routing.NextVar(routing.Start(v)))
            seq: list[int] = []
            while not routing.IsEnd(index):
                node = manager.IndexToNode(index)
                if node < n:
                    seq.append(node)
                index = solution.Value(routing.NextVar(index))
            if seq:
                assignment[v] = seq
        return evaluate(model, assignment, self.name, seconds)


def _nodes(model: Model) -> tuple[Any, Any, Any, list[int], list[int]]:
    """Orders are nodes 0..n-1, then one node per start/end location (and 'anywhere')."""
    locs = [o.location for o in model.orders]
    extra: dict[int, int] = {}

    def node(loc: int) -> int:
        if loc not in extra:
            extra[loc] = len(locs)
            locs.append(loc)
        return extra[loc]

    starts = [node(cv.start) for cv in model.vehicles]
    ends = [node(cv.end) for cv in model.vehicles]
    n = len(model.orders)
    service = [o.service for o in model.orders] + [0] * (len(locs) - n)
    order = list(range(n)) + [-1] * (len(locs) - n)
    return (
        np.asarray(locs, dtype=np.int64),
        np.asarray(service, dtype=np.int64),
        np.asarray(order, dtype=np.int64),
        starts,
        ends,
    )


def _build(model: Model) -> tuple[Any, Any]:
    locs, service, order, starts, ends = _nodes(model)
    num_nodes, num_vehicles, n = len(locs), len(model.vehicles), len(model.orders)
    manager = pywrapcp.RoutingIndexManager(num_nodes, num_vehicles, starts, ends)
    routing = pywrapcp.RoutingModel(manager)
    vfc = model.params.vehicle_fixed_cost

    cost_cb: dict[tuple[object, ...], int] = {}
    time_cb: dict[tuple[object, ...], int] = {}
    time_of_vehicle: list[int] = []
    for v, cv in enumerate(model.vehicles):
        key = model.cost_class(v)
        if key not in cost_cb:
            matrix = model.cost_matrix(v, locs, service, order)
            cost_cb[key] = routing.RegisterTransitMatrix(matrix.tolist())
        routing.SetArcCostEvaluatorOfVehicle(cost_cb[key], v)
        routing.SetFixedCostOfVehicle(cv.fixed_cost + vfc, v)
        tkey = (cv.timed, cv.end == ANYWHERE)
        if tkey not in time_cb:
            time_cb[tkey] = routing.RegisterTransitMatrix(
                model.time_matrix(v, locs, service).tolist()
            )
        time_of_vehicle.append(time_cb[tkey])

    horizon = model.horizon
    routing.AddDimensionWithVehicleTransits(time_of_vehicle, horizon, horizon, False, "Time")
    time_dim = routing.GetDimensionOrDie("Time")
    for k, o in enumerate(model.orders):
        time_dim.CumulVar(manager.NodeToIndex(k)).SetRange(o.ready, model.due(o))
    for v, cv in enumerate(model.vehicles):
        time_dim.CumulVar(routing.Start(v)).SetRange(cv.earliest, cv.latest)
        time_dim.CumulVar(routing.End(v)).SetRange(cv.earliest, cv.latest)

    if any(cv.capacity is not None for cv in model.vehicles):
        big = sum(o.demand for o in model.orders) + 1
        caps = [big if cv.capacity is None else cv.capacity for cv in model.vehicles]
        pickups = model.has_pickups
        demand = [
            (o.demand if o.kind is OrderKind.PICKUP else -o.demand) if pickups else o.demand
            for o in model.orders
        ] + [0] * (num_nodes - n)
        cb = routing.RegisterUnaryTransitVector(demand)
        routing.AddDimensionWithVehicleCapacity(cb, 0, caps, not pickups, "Load")
        if pickups:
            _link_start_load(routing, model, caps, num_nodes)
    if model.has_stop_limits:
        ones = [1] * n + [0] * (num_nodes - n)
        caps = [n if cv.max_stops is None else cv.max_stops for cv in model.vehicles]
        cb = routing.RegisterUnaryTransitVector(ones)
        routing.AddDimensionWithVehicleCapacity(cb, 0, caps, True, "Stops")

    for k, o in enumerate(model.orders):
        index = manager.NodeToIndex(k)
        penalty = o.postponement_cost if o.optional else model.required_penalty
        routing.AddDisjunction([index], penalty)
        if len(model.allowed[k]) < num_vehicles:
            # SetAllowedVehiclesForIndex does not accept a Python list in 9.15's SWIG
            # binding; restricting the vehicle variable is the same (-1: left out).
            routing.VehicleVar(index).SetValues([-1, *sorted(model.allowed[k])])
    return routing, manager


def _link_start_load(routing: Any, model: Model, caps: list[int], num_nodes: int) -> None:
    """With returns the start load is every delivery of the route: then each delivery lowers
    and each pickup raises the load, which must stay within capacity all along."""
    n = len(model.orders)
    deliveries = [0 if o.kind is OrderKind.PICKUP else o.demand for o in model.orders]
    cb = routing.RegisterUnaryTransitVector(deliveries + [0] * (num_nodes - n))
    routing.AddDimensionWithVehicleCapacity(cb, 0, caps, True, "Deliveries")
    load = routing.GetDimensionOrDie("Load")
    dels = routing.GetDimensionOrDie("Deliveries")
    solver = routing.solver()
    for v in range(len(model.vehicles)):
        solver.Add(load.CumulVar(routing.Start(v)) == dels.CumulVar(routing.End(v)))


def _search_parameters(model: Model, budget_s: float) -> Any:
    search = pywrapcp.DefaultRoutingSearchParameters()
    search.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    )
    search.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    search.time_limit.FromMilliseconds(int(1000 * max(budget_s, _MIN_BUDGET_S)))
    if model.params.iteration_limit is not None:
        search.solution_limit = model.params.iteration_limit
    search.log_search = model.params.log_search
    return search
