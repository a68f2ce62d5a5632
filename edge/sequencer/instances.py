"""Sequencing problems built from Solomon/Homberger instances, for the CLI, tests and bench.

Instance units become integers by ``scale`` (default 100): distance ``round(d * scale)``,
travel time ``ceil(d * scale)`` (never optimistic), ready/due/service times ``* scale``.
``stretch`` multiplies ready and due times, so that one vehicle can plausibly serve what the
instance gives to a fleet (the benchmark's sub-instances use it); windows stay soft.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from edge.sequencer.problem import InvalidProblemError, SequencingProblem, Stop
from routing.instance import Instance

__all__ = ["problem_from_instance"]


def problem_from_instance(
    inst: Instance,
    customers: Sequence[int],
    *,
    scale: int = 100,
    stretch: float = 1.0,
    current_order: Sequence[int] | None = None,
) -> SequencingProblem:
    """One vehicle leaving the depot at its ready time to serve ``customers``, then back.

    Matrix node 0 is the depot, node ``k`` the ``k``-th of ``customers``; stop ids are the
    customer numbers as strings. Capacity is ignored.
    """
    if not customers or any(not 0 < c <= inst.size for c in customers):
        raise InvalidProblemError(f"customers must be numbers in 1..{inst.size}")
    if len(set(customers)) != len(customers):
        raise InvalidProblemError("customers repeat")
    pts = [0, *customers]
    m = len(pts)
    d = [[inst.distance(pts[i], pts[j]) * scale for j in range(m)] for i in range(m)]
    dist = tuple(tuple(round(v) for v in row) for row in d)
    tt = tuple(tuple(math.ceil(v - 1e-9) for v in row) for row in d)
    stops = []
    for k, c in enumerate(customers, start=1):
        cu = inst.customers[c]
        stops.append(
            Stop(
                id=str(c),
                node=k,
                ready=round(cu.ready * scale * stretch),
                due=round(cu.due * scale * stretch),
                service=cu.service * scale,
            )
        )
    order = tuple(str(c) for c in (current_order or customers))
    return SequencingProblem(
        travel_time=tt,
        distance=dist,
        start_node=0,
        start_time=inst.depot.ready * scale,
        stops=tuple(stops),
        end_node=0,
        current_order=order,
        coordinates=tuple((inst.customers[c].y, inst.customers[c].x) for c in pts),
    )
