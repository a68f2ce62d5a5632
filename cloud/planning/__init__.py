"""The cloud coordinator's planning engine: cross-fleet assignment and routing.

A :class:`PlanningProblem` (travel matrices, orders, own vans, 3PL carriers, gig couriers,
the current plan) is planned by a :class:`Planner` under :class:`PlanningParams` into a
:class:`PlanResult`. Engines: OR-Tools, PyVRP, and the portfolio that picks per problem.
"""

from cloud.planning.errors import InvalidParams, InvalidProblem, PlanningError
from cloud.planning.ortools_planner import OrToolsPlanner
from cloud.planning.params import PlanningParams, SolverChoice
from cloud.planning.portfolio import Planner, PortfolioPlanner, make_planner, plan
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
from cloud.planning.pyvrp_planner import PyVrpPlanner
from cloud.planning.result import (
    CostBreakdown,
    PlannedRoute,
    PlannedStop,
    PlanResult,
    PlanStatus,
    UnplannedOrder,
    UnplannedReason,
)
from cloud.planning.solomon import customer_routes, hierarchical_params, solomon_problem

__all__ = [
    "Carrier",
    "CostBreakdown",
    "FleetKind",
    "GigCourier",
    "InvalidParams",
    "InvalidProblem",
    "OrToolsPlanner",
    "Order",
    "OrderKind",
    "OwnVan",
    "PlanResult",
    "PlanStatus",
    "PlannedRoute",
    "PlannedStop",
    "Planner",
    "PlanningError",
    "PlanningParams",
    "PlanningProblem",
    "PortfolioPlanner",
    "PyVrpPlanner",
    "SolverChoice",
    "UnplannedOrder",
    "UnplannedReason",
    "Vehicle",
    "customer_routes",
    "hierarchical_params",
    "make_planner",
    "plan",
    "solomon_problem",
]
