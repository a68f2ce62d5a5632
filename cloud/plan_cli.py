"""``wayline plan INSTANCE --seconds S --json [--seed K]``: plan a Solomon/Homberger file.

Hard windows and capacities, the file's vehicle limit, fewer vehicles first then distance,
with the same planner the coordinator uses. The answer is re-checked in double precision
with ``routing.check_route`` (every route feasible, every customer exactly once) before it
is printed. Exit 0 with a plan; 1 when no complete plan was found in time; 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter

from cloud.planning import (
    PlanningError,
    PlanningParams,
    PlanStatus,
    customer_routes,
    hierarchical_params,
    plan,
    solomon_problem,
)
from routing import Instance, InstanceError, check_route, read_instance

__all__ = ["configure", "run"]

EXIT_NO_PLAN = 1
EXIT_BAD_INPUT = 2


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("instance", metavar="INSTANCE", help="Solomon/Homberger .txt file")
    parser.add_argument("--seconds", type=float, default=10.0, help="time limit (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def run(args: argparse.Namespace) -> int:
    if not math.isfinite(args.seconds) or args.seconds <= 0:
        return _fail(f"--seconds must be a positive number, got {args.seconds}", EXIT_BAD_INPUT)
    try:
        inst = read_instance(args.instance)
        params = hierarchical_params(PlanningParams(time_limit_s=args.seconds, seed=args.seed))
        result = plan(solomon_problem(inst), params)
    except (InstanceError, PlanningError) as exc:
        return _fail(str(exc), EXIT_BAD_INPUT)
    if result.status is not PlanStatus.COMPLETE:
        why = result.message or f"{len(result.unplanned)} customers left unplanned"
        return _fail(f"{inst.name}: no complete plan in {args.seconds:g} s ({why})", EXIT_NO_PLAN)
    routes = customer_routes(result)
    problem = _recheck(inst, routes)
    if problem:
        return _fail(f"{inst.name}: plan failed the re-check: {problem}", EXIT_NO_PLAN)
    distance = sum(check_route(inst, r).distance for r in routes)
    if args.json:
        print(json.dumps({"vehicles": len(routes), "distance": distance, "routes": routes}))
    else:
        print(
            f"{inst.name}: {len(routes)} vehicles, distance {distance:.2f} "
            f"({result.solver}, {result.seconds:.1f} s)"
        )
        for k, r in enumerate(routes, 1):
            print(f"  route {k}: {' '.join(map(str, r))}")
    return 0


def _recheck(inst: Instance, routes: list[list[int]]) -> str:
    seen = Counter(c for r in routes for c in r)
    if set(seen) != set(range(1, inst.size + 1)) or max(seen.values(), default=0) != 1:
        return "customers missing or repeated"
    if len(routes) > inst.vehicles:
        return f"{len(routes)} routes over the limit of {inst.vehicles}"
    for r in routes:
        chk = check_route(inst, r)
        if chk.late_stops or chk.returns_late or chk.load > inst.capacity:
            return f"route {r[:5]}... is infeasible"
    return ""


def _fail(message: str, code: int) -> int:
    print(f"wayline plan: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wayline plan", description=__doc__.split("\n")[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
