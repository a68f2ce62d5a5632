"""The vehicle's re-sequencer: orders the driver's remaining stops within a time budget.

``make_sequencer()`` gives the default (a portfolio that never leaves the driver without a
valid route); ``GreedySequencer``, ``LocalSearchSequencer`` (compiled), ``OrToolsSequencer``
and ``PyVrpSequencer`` are the implementations of the :class:`Sequencer` protocol. The
solver classes are imported lazily so that this package does not load OR-Tools, PyVRP or
the compiled extension until one is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edge.sequencer.base import Sequencer, build_result
from edge.sequencer.greedy import GreedySequencer
from edge.sequencer.instances import problem_from_instance
from edge.sequencer.portfolio import PortfolioSequencer, make_sequencer
from edge.sequencer.problem import (
    Break,
    InvalidProblemError,
    SequencerError,
    SequenceResult,
    SequencerParams,
    SequencingProblem,
    Status,
    Stop,
)
from edge.sequencer.schedule import Evaluator, Schedule, simulate

if TYPE_CHECKING:
    from edge.sequencer.lsearch import LocalSearchSequencer
    from edge.sequencer.ortools_solver import OrToolsSequencer
    from edge.sequencer.pyvrp_solver import PyVrpSequencer

__all__ = [
    "Break",
    "Evaluator",
    "GreedySequencer",
    "InvalidProblemError",
    "LocalSearchSequencer",
    "OrToolsSequencer",
    "PortfolioSequencer",
    "PyVrpSequencer",
    "Schedule",
    "SequenceResult",
    "Sequencer",
    "SequencerError",
    "SequencerParams",
    "SequencingProblem",
    "Status",
    "Stop",
    "build_result",
    "make_sequencer",
    "problem_from_instance",
    "simulate",
]


def __getattr__(name: str) -> Any:
    if name == "OrToolsSequencer":
        from edge.sequencer.ortools_solver import OrToolsSequencer

        return OrToolsSequencer
    if name == "LocalSearchSequencer":
        from edge.sequencer.lsearch import LocalSearchSequencer

        return LocalSearchSequencer
    if name == "PyVrpSequencer":
        from edge.sequencer.pyvrp_solver import PyVrpSequencer

        return PyVrpSequencer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
