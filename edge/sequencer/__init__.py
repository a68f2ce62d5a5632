"""The vehicle's re-sequencer: orders the driver's remaining stops within a time budget.

``make_sequencer()`` gives the default (a portfolio that never leaves the driver without a
valid route); ``GreedySequencer``, ``LocalSearchSequencer`` (compiled), ``OrToolsSequencer``
and ``PyVrpSequencer`` are the implementations of the :class:`Sequencer` protocol. The
sequencers and ``make_sequencer`` are imported lazily: the problem, its simulation and the
results load no third-party library, so a van's agent starts without numpy and loads the
search (numpy and the compiled extension) at its first re-sequence, and OR-Tools or PyVRP
only where they are asked for (an edge install has neither).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edge.sequencer.base import Sequencer, build_result
from edge.sequencer.instances import problem_from_instance
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
    from edge.sequencer.greedy import GreedySequencer
    from edge.sequencer.lsearch import LocalSearchSequencer
    from edge.sequencer.ortools_solver import OrToolsSequencer
    from edge.sequencer.portfolio import PortfolioSequencer, make_sequencer
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


#: Names this package gives on first use, and the module each comes from.
_LAZY = {
    "GreedySequencer": "edge.sequencer.greedy",
    "LocalSearchSequencer": "edge.sequencer.lsearch",
    "OrToolsSequencer": "edge.sequencer.ortools_solver",
    "PortfolioSequencer": "edge.sequencer.portfolio",
    "PyVrpSequencer": "edge.sequencer.pyvrp_solver",
    "make_sequencer": "edge.sequencer.portfolio",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
