"""Operational ETAs for the driver's remaining stops in a given order.

The operational ETA moves all the time (the customer-facing window is someone else's and
moves only on meaningful shifts). It is the same simulation the re-sequencer judges its
routes by (:mod:`edge.sequencer.schedule`): travel from the current position and time,
wait for a window to open, take the break when the driver would, serve, go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge.sequencer import SequencingProblem, simulate

__all__ = ["StopEta", "compute_etas"]


@dataclass(frozen=True, slots=True)
class StopEta:
    """When the van reaches a stop, starts serving it and leaves it; how late it is."""

    stop_id: str
    arrival: int
    service_start: int
    departure: int
    lateness: int


def compute_etas(problem: SequencingProblem, order: Sequence[str] | None = None) -> list[StopEta]:
    """ETAs for ``order`` (default: the problem's current order) from where the van is now."""
    seq = tuple(order) if order is not None else problem.current_order
    sched = simulate(problem, seq)
    out = []
    for sid, arrival, start in zip(sched.order, sched.arrivals, sched.starts, strict=True):
        stop = problem.stops[problem.index[sid]]
        out.append(StopEta(sid, arrival, start, start + stop.service, max(0, start - stop.due)))
    return out
