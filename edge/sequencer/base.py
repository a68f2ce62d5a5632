"""The :class:`Sequencer` extension point and the one way every answer is put together."""

from __future__ import annotations

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

__all__ = ["Sequencer", "build_result"]


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
