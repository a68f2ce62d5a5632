"""``wayline resequence INSTANCE --stops N --seconds S --json [--seed K] [--threads T]``.

One vehicle leaves the depot of a Solomon-format instance at the depot's ready time and
serves customers 1..N with soft windows (capacity ignored), re-sequenced by the default
sequencer within S seconds (T searches side by side; by default two, or one on a
single-CPU machine). Prints ``{"order", "distance", "lateness", "seconds"}``, with
distance (double-precision Euclidean) and lateness (time past due dates) computed by
:func:`routing.check_route`. Bad input gives a one-line error on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from edge.sequencer import SequencerError, SequencerParams, make_sequencer, problem_from_instance
from routing import InstanceError, check_route, read_instance

__all__ = ["configure", "run"]

MIN_BUDGET_S = 0.001  # --seconds 0 still gets the greedy answer


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``resequence`` arguments to ``parser``."""
    parser.description = "Re-sequence one vehicle's stops of a Solomon-format instance."
    parser.add_argument("instance", metavar="INSTANCE", help="Solomon-format instance file")
    parser.add_argument("--stops", type=int, required=True, help="serve customers 1..N")
    parser.add_argument("--seconds", type=float, default=0.2, help="time budget (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="searches side by side (default: two, or one on a single-CPU machine)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Run the command; 0 on success, 2 on bad input, 1 if no route could be made."""
    try:
        if not args.seconds >= 0:
            raise ValueError(f"--seconds must be non-negative, not {args.seconds}")
        if args.seed < 0:
            raise ValueError(f"--seed must be non-negative, not {args.seed}")
        if args.threads is not None and args.threads < 1:
            raise ValueError(f"--threads must be at least 1, not {args.threads}")
        inst = read_instance(args.instance)
        if not 1 <= args.stops <= inst.size:
            raise ValueError(f"--stops must be in 1..{inst.size} for {inst.name}, not {args.stops}")
    except (InstanceError, ValueError) as exc:
        print(f"wayline resequence: error: {exc}", file=sys.stderr)
        return 2
    try:
        sequencer = make_sequencer(threads=args.threads)
        problem = problem_from_instance(inst, list(range(1, args.stops + 1)))
        params = SequencerParams(time_limit_s=max(MIN_BUDGET_S, args.seconds), seed=args.seed)
        t0 = time.perf_counter()
        result = sequencer.solve(problem, params)
    except SequencerError as exc:
        print(f"wayline resequence: error: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - t0
    order = [int(s) for s in result.order]
    check = check_route(inst, order)
    out = {
        "order": order,
        "distance": check.distance,
        "lateness": check.lateness,
        "seconds": round(seconds, 4),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"{inst.name}: {len(order)} stops, distance {check.distance:.2f}, "
            f"lateness {check.lateness:.2f}, {seconds:.3f} s ({result.solver})"
        )
        print(" ".join(map(str, order)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wayline resequence")
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
