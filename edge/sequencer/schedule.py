"""Simulate an order of stops: arrivals, waits, the break, service starts, and its cost.

Every sequencer is judged by this one simulation, so that solvers with different internal
models (OR-Tools, PyVRP, the greedy) are compared on the same terms.

The break rule (what a driver does): the break is taken on arrival at a stop, before its
service, once the arrival is past the break's earliest start, or when the wait for the
stop's window can hold the whole break, or when serving this stop first would push the
break past its latest start. If reaching the next stop would already be past the latest
start, the break is taken before leaving. A break still pending at the end is taken at the
end node (before leaving the last stop if arriving would be too late). A break started
after its latest start counts as lateness, as does arriving at the end after the shift end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge.sequencer.problem import InvalidProblemError, SequencerParams, SequencingProblem

__all__ = ["Evaluator", "Schedule", "simulate"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """The outcome of driving an order as planned; per-stop tuples follow ``order``."""

    order: tuple[str, ...]
    arrivals: tuple[int, ...]
    starts: tuple[int, ...]
    distance: int
    lateness: int
    overload: int
    depth: float
    break_start: int | None
    end_time: int

    def cost(self, params: SequencerParams) -> float:
        return (
            self.distance
            + params.lateness_weight * self.lateness
            + params.overload_weight * self.overload
            + params.depth_weight * self.depth
        )


class Evaluator:
    """A problem compiled for fast, repeated simulation of orders given as stop positions.

    ``run(idx)`` takes indices into ``problem.stops``; the greedy calls it thousands of
    times per re-sequence, so it avoids attribute look-ups in its loop.
    """

    def __init__(self, problem: SequencingProblem, params: SequencerParams) -> None:
        self.problem = problem
        self.params = params
        st = problem.stops
        self.node = [s.node for s in st]
        self.ready = [s.ready for s in st]
        self.due = [s.due for s in st]
        self.service = [s.service for s in st]
        self.dload = [s.pickup - s.delivery for s in st]
        self.depthv = [s.depth for s in st]
        self.ids = [s.id for s in st]
        self.initial_load = problem.initial_load
        self.has_depth = any(self.depthv)

    def arrays(self) -> tuple[Any, Any]:
        """The travel-time and distance matrices as NumPy arrays (see
        :meth:`SequencingProblem.arrays`)."""
        return self.problem.arrays()

    def run(self, idx: Sequence[int], trace: bool = False) -> Schedule:
        p = self.problem
        tt, dm = p.travel_time, p.distance
        brk = p.break_
        pending = brk is not None
        break_start: int | None = None
        t, pos = p.start_time, p.start_node
        load, cap = self.initial_load, p.capacity
        dist = late = over = 0
        arrivals: list[int] = []
        starts: list[int] = []
        node, ready, due, service, dload = (
            self.node,
            self.ready,
            self.due,
            self.service,
            self.dload,
        )
        for i in idx:
            nd = node[i]
            travel = tt[pos][nd]
            a = t + travel
            avail = a  # when service could begin, window aside
            if pending and brk is not None:
                if a > brk.latest:  # too late on arrival: take it before leaving
                    break_start = max(t, brk.earliest)
                    late += max(0, break_start - brk.latest)
                    a = avail = break_start + brk.duration + travel
                    pending = False
                else:
                    bs = max(a, brk.earliest)
                    if (
                        a >= brk.earliest
                        or ready[i] - bs >= brk.duration
                        or max(a, ready[i]) + service[i] > brk.latest
                    ):
                        break_start = bs
                        avail = bs + brk.duration
                        pending = False
            start = avail if avail > ready[i] else ready[i]
            if start > due[i]:
                late += start - due[i]
            if trace:
                arrivals.append(a)
                starts.append(start)
            dist += dm[pos][nd]
            if cap is not None:
                load += dload[i]
                if load > cap:
                    over += load - cap
            t = start + service[i]
            pos = nd
        travel = tt[pos][p.end_node]
        end = t + travel
        if pending and brk is not None:
            if end > brk.latest:
                break_start = max(t, brk.earliest)
                end = break_start + brk.duration + travel
            else:
                break_start = max(end, brk.earliest)
                end = break_start + brk.duration
            late += max(0, break_start - brk.latest)
        dist += dm[pos][p.end_node]
        if p.shift_end is not None and end > p.shift_end:
            late += end - p.shift_end
        n = len(idx)
        depth = 0.0
        if n and self.has_depth:
            dv = self.depthv
            depth = (
                sum(dv[i] * (n - 1 - k) for k, i in enumerate(idx)) / (n - 1)
                if n > 1
                else dv[idx[0]]
            )
        order = tuple(self.ids[i] for i in idx) if trace else ()
        return Schedule(
            order, tuple(arrivals), tuple(starts), dist, late, over, depth, break_start, end
        )

    def cost(self, idx: Sequence[int]) -> float:
        return self.run(idx).cost(self.params)

    def indices(self, order: Sequence[str]) -> list[int]:
        return [self.problem.index[s] for s in order]


def simulate(problem: SequencingProblem, order: Sequence[str]) -> Schedule:
    """Drive ``order`` (stop ids) from the vehicle's position and time to the end node."""
    if not problem.is_valid_order(order):
        raise InvalidProblemError(
            "order is not a permutation of the stops with the committed stop first"
        )
    ev = Evaluator(problem, SequencerParams())
    return ev.run(ev.indices(order), trace=True)
