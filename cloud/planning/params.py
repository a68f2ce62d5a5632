"""Planning parameters: one validated, frozen dataclass passed to every planner."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from cloud.planning.errors import InvalidParams

__all__ = ["PlanningParams", "SolverChoice"]


class SolverChoice(StrEnum):
    """Which engine plans: one of the two, both (better result wins), or the portfolio's pick."""

    AUTO = "auto"
    ORTOOLS = "ortools"
    PYVRP = "pyvrp"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class PlanningParams:
    """How to plan.

    ``time_limit_s`` bounds the whole solve (a portfolio splits it). ``iteration_limit``, when
    set, also stops the search after that many iterations (PyVRP) or solutions (OR-Tools);
    a run that stops on it rather than on time is reproducible for a given ``seed``.
    ``vehicle_fixed_cost`` is added to every used vehicle on top of its own fixed cost: a
    large value makes the objective hierarchical (fewer vehicles first, then cost).
    ``required_drop_penalty`` is what leaving a required order out costs in the search
    (it never enters the reported cost); when 0 it is derived from the problem so that
    serving a required order always beats dropping it.
    """

    time_limit_s: float = 10.0
    seed: int = 0
    solver: SolverChoice = SolverChoice.AUTO
    vehicle_fixed_cost: int = 0
    required_drop_penalty: int = 0
    iteration_limit: int | None = None
    log_search: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.time_limit_s, int | float) or not math.isfinite(self.time_limit_s):
            raise InvalidParams(f"time_limit_s must be a finite number, got {self.time_limit_s!r}")
        if self.time_limit_s <= 0:
            raise InvalidParams(f"time_limit_s must be positive, got {self.time_limit_s}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidParams(f"seed must be a non-negative integer, got {self.seed!r}")
        try:
            object.__setattr__(self, "solver", SolverChoice(self.solver))
        except ValueError as exc:
            choices = ", ".join(c.value for c in SolverChoice)
            raise InvalidParams(f"solver must be one of {choices}, got {self.solver!r}") from exc
        if self.vehicle_fixed_cost < 0:
            raise InvalidParams("vehicle_fixed_cost must be >= 0")
        if self.required_drop_penalty < 0:
            raise InvalidParams("required_drop_penalty must be >= 0")
        if self.iteration_limit is not None and self.iteration_limit <= 0:
            raise InvalidParams("iteration_limit must be positive when given")
