"""The compiled local-search re-sequencer (``edge/sequencer/_lsearch.c``).

An iterated local search over one vehicle's route: 2-opt, or-opt (segments of 1-3 stops,
both orientations) and swap over the stops nearest each stop, each move priced by the
same simulation as :mod:`edge.sequencer.schedule` (soft windows, the break, the shift end,
capacity, depth), re-simulated from the first changed position only and dropped as soon as
it cannot gain. It starts from ``problem.current_order`` (the portfolio hands it the plan or
the greedy route), keeps the committed stop first, never answers a costlier route than its
warm start, and stops at the time limit (a hard deadline inside the C loop) or once
``patience`` kicks in a row have brought nothing. The search runs without the GIL.

:func:`compile_problem` gives the keyword arguments of ``_lsearch.cost``/``search`` for a
problem; :func:`search` runs the search on stop positions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from edge.sequencer import _lsearch
from edge.sequencer.base import build_result
from edge.sequencer.problem import (
    SequencerError,
    SequenceResult,
    SequencerParams,
    SequencingProblem,
)

__all__ = ["LocalSearchSequencer", "compile_problem", "search"]

NEIGHBOURS = 20  # granular neighbourhood: the stops nearest each stop by travel time
PATIENCE = 2_000  # kicks in a row without a gain after which the search stops
RESERVE_S = 0.002  # kept back from the time limit for building the answer
MIN_SEARCH_S = 0.001  # never hand the search less than this


def compile_problem(problem: SequencingProblem, params: SequencerParams) -> dict[str, Any]:
    """The problem as ``_lsearch``'s keyword arguments (all but ``route``)."""
    tt, dm = problem.arrays()
    st = problem.stops
    i64 = np.int64
    brk = problem.break_
    return {
        "travel_time": tt,
        "distance": dm,
        "nodes": np.fromiter((s.node for s in st), i64, len(st)),
        "ready": np.fromiter((s.ready for s in st), i64, len(st)),
        "due": np.fromiter((s.due for s in st), i64, len(st)),
        "service": np.fromiter((s.service for s in st), i64, len(st)),
        "dload": np.fromiter((s.pickup - s.delivery for s in st), i64, len(st)),
        "depth": np.fromiter((s.depth for s in st), np.float64, len(st)),
        "start_node": problem.start_node,
        "start_time": problem.start_time,
        "end_node": problem.end_node,
        "shift_end": problem.shift_end,
        "capacity": problem.capacity,
        "initial_load": problem.initial_load,
        "break_": None if brk is None else (brk.earliest, brk.latest, brk.duration),
        "weights": (params.lateness_weight, params.overload_weight, params.depth_weight),
    }


def search(
    args: dict[str, Any],
    route: Sequence[int],
    fixed: bool,
    seed: int,
    time_limit_s: float,
    neighbours: int = NEIGHBOURS,
    patience: int = PATIENCE,
    max_iters: int = -1,
    accept: float = 0.0,
    rule: int = 3,
) -> tuple[list[int], float, dict[str, Any]]:
    """Run the compiled search from ``route`` (stop positions); the best route, its cost
    and the search's counters."""
    return _lsearch.search(
        **args,
        route=np.asarray(route, dtype=np.int64),
        fixed=int(fixed),
        seed=seed,
        time_limit=time_limit_s,
        neighbours=neighbours,
        patience=patience,
        max_iters=max_iters,
        accept=accept,
        rule=rule,
    )


class LocalSearchSequencer:
    """The compiled iterated local search from the warm start, for ``params.time_limit_s``."""

    name = "lsearch"

    def __init__(self, neighbours: int = NEIGHBOURS, patience: int = PATIENCE) -> None:
        self.neighbours = neighbours
        self.patience = patience

    def solve(self, problem: SequencingProblem, params: SequencerParams) -> SequenceResult:
        t0 = time.perf_counter()
        try:
            args = compile_problem(problem, params)
            warm = [problem.index[s] for s in problem.current_order]
            left = params.time_limit_s - (time.perf_counter() - t0) - RESERVE_S
            route, _, _ = search(
                args,
                warm,
                problem.committed_next is not None,
                params.seed,
                max(MIN_SEARCH_S, left),
                self.neighbours,
                self.patience,
            )
        except (ValueError, MemoryError) as exc:
            raise SequencerError(f"local search failed: {exc}") from exc
        order = [problem.stops[i].id for i in route]
        return build_result(problem, params, order, self.name, time.perf_counter() - t0)
