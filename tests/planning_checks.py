"""Checks shared by the planner's tests: a Solomon instance (or its first customers), and a
plan that serves every customer once within windows, shift and capacity."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from cloud.planning import (
    PlanningParams,
    PlanStatus,
    customer_routes,
    hierarchical_params,
    solomon_problem,
)
from cloud.planning.model import build_model
from routing import Instance, check_route, read_instance
from tests.helpers import DATA_DIR


def solomon_instance(name: str, customers: int | None = None) -> Instance:
    inst = read_instance(DATA_DIR / "solomon" / f"{name}.txt")
    if customers is not None:
        inst = replace(inst, customers=inst.customers[: customers + 1])
    return inst


def solomon_model(inst: Instance, seed: int = 0) -> Any:
    """The planner's model of ``inst``: fewer vehicles first, then distance."""
    return build_model(solomon_problem(inst), hierarchical_params(PlanningParams(seed=seed)))


def assert_feasible_and_complete(inst: Instance, result: Any) -> None:
    assert result.status is PlanStatus.COMPLETE
    routes = customer_routes(result)
    seen = Counter(c for r in routes for c in r)
    assert set(seen) == set(range(1, len(inst.customers))) and max(seen.values()) == 1
    for r in routes:
        chk = check_route(inst, r)
        assert chk.late_stops == 0 and not chk.returns_late and chk.load <= inst.capacity
