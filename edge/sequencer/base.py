"""The :class:`Sequencer` extension point and the one way every answer is put together."""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from edge.sequencer.problem import (
    SequencerError,
    SequenceResult,
    SequencerParams,
    SequencingProblem,
    Status,
)
from edge.sequencer.schedule import Evaluator

__all__ = ["Sequencer", "build_result", "wait_at_exit"]

LATE_JOIN_S = 5.0  # at exit, how long to wait for each solver thread left running

_late: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def wait_at_exit(thread: threading.Thread) -> None:
    """Have the interpreter wait for ``thread``, a solver thread its caller stopped waiting
    for, when it exits (up to ``LATE_JOIN_S``): a thread still inside native code when the
    interpreter exits aborts the process, and a solver ends within its own time limit."""
    _late.add(thread)


@atexit.register
def _join_late() -> None:
    for thread in list(_late):
        thread.join(LATE_JOIN_S)


@runtime_checkable
class Sequencer(Protocol):
    """Orders one vehicle's remaining stops within ``params.time_limit_s``.

    Implementations warm-start from ``problem.current_order``, are reproducible for a given
    ``params.seed`` when they finish before their time limit, keep ``problem.committed_next``
    first, and raise :class:`SequencerError` (never anything else) when they cannot answer.
    """

    name: str

    def solve(self, problem: SequencingProblem, params: SequencerParams) -> SequenceResult: ...


def build_result(
    problem: SequencingProblem,
    params: SequencerParams,
    order: Sequence[str],
    solver: str,
    seconds: float,
    status: Status = Status.SOLVED,
) -> SequenceResult:
    """Check ``order`` and simulate it into a :class:`SequenceResult`."""
    if not problem.is_valid_order(order):
        raise SequencerError(f"{solver} returned an order that is not a valid permutation")
    ev = Evaluator(problem, params)
    sched = ev.run(ev.indices(order), trace=True)
    return SequenceResult(
        order=sched.order,
        arrivals=sched.arrivals,
        starts=sched.starts,
        distance=sched.distance,
        lateness=sched.lateness,
        cost=sched.cost(params),
        break_start=sched.break_start,
        end_time=sched.end_time,
        solver=solver,
        seconds=seconds,
        status=status,
    )
