"""One solve in a forked child, killed at its deadline: how the portfolio uses a second core.

The planner's engines hold the GIL for much of their search, so the portfolio's work on the
machine's second core runs in a child process forked from the solve: VROOM's search beside
the PyVRP phases (``vroom_planner``), and a second distance search with another seed
(``pyvrp_planner``). ``ForkedRun`` starts the child and returns at once; the caller works
beside it and calls ``result`` later, which waits at most until the run's deadline (plus
``KILL_GRACE_S``), then kills the child if it still runs. The child sends back vehicle →
orders, or a one-line reason it has none; the caller checks the plan with ``evaluate``.

A child forked from a process with other threads could in principle block on a lock one of
them held; it is then killed at the same deadline, so the caller never waits longer.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable
from typing import Any

from cloud.planning.evaluate import evaluate, no_solution
from cloud.planning.model import Model
from cloud.planning.result import PlanResult

__all__ = ["ForkedRun", "child_timeout"]

logger = logging.getLogger(__name__)

Assignment = dict[int, list[int]]
_MIN_BUDGET_S = 0.05
KILL_GRACE_S = 0.1
"""How long past its deadline a forked solve may take to hand its plan over."""
CHILD_TIMEOUT_SHARE = 0.75
CHILD_MARGIN_S = 0.5
"""A child's own time limit is its budget less a margin of ``1 - CHILD_TIMEOUT_SHARE`` of
it, at most ``CHILD_MARGIN_S``: VROOM overruns its timeout a little even on small problems,
by about the time its construction takes, and PyVRP's data takes a moment to build."""


def child_timeout(time_limit_s: float) -> float:
    """The time limit a child with a budget of ``time_limit_s`` gives its engine."""
    return time_limit_s - min((1 - CHILD_TIMEOUT_SHARE) * time_limit_s, CHILD_MARGIN_S)


class ForkedRun:
    """``target(*args)`` (vehicle → orders) running in a forked child, killed at its deadline.

    ``solver`` names the result's engine; ``label`` starts its messages ("VROOM found no
    plan in time"). With ``refused`` no child starts and the result is that reason.
    """

    def __init__(
        self,
        model: Model,
        time_limit_s: float,
        target: Callable[..., Assignment],
        args: tuple[Any, ...],
        *,
        solver: str,
        label: str,
        refused: str | None = None,
    ) -> None:
        self._model, self._solver, self._label = model, solver, label
        self._t0 = time.perf_counter()
        self._budget = time_limit_s
        self._deadline = self._t0 + max(time_limit_s, _MIN_BUDGET_S)
        self._answer: Assignment | str | None = refused
        self._result: PlanResult | None = None
        self._child: Any = None
        if refused is not None:
            return
        ctx = multiprocessing.get_context("fork")
        self._receiver, sender = ctx.Pipe(duplex=False)
        self._child = ctx.Process(target=_child, args=(target, args, label, sender), daemon=True)
        self._child.start()
        sender.close()

    def result(self) -> PlanResult:
        """The plan, waiting for it at most until the deadline (and ``KILL_GRACE_S``);
        collected and checked once, then kept."""
        if self._result is None:
            if self._answer is None:
                self._answer = self._collect()
            seconds = time.perf_counter() - self._t0
            if isinstance(self._answer, str):
                self._result = no_solution(self._model, self._solver, seconds, self._answer)
            else:
                self._result = evaluate(self._model, self._answer, self._solver, seconds)
        return self._result

    def done(self) -> bool:
        """Whether the plan (or the child's end) is in, so that ``result`` will not wait."""
        return self._answer is not None or self._receiver.poll(0)

    def cancel(self) -> None:
        """Stop the child now, if it still runs; ``result`` then says so."""
        if self._answer is None:
            self._answer = f"{self._label} cancelled"
            self._stop()

    def _collect(self) -> Assignment | str:
        child, receiver = self._child, self._receiver
        try:
            if receiver.poll(max(self._deadline - time.perf_counter(), 0.0) + KILL_GRACE_S):
                answer: Any = receiver.recv()
                if isinstance(answer, dict | str):
                    return answer
                return f"{self._label}: unexpected answer"
            logger.info("%s: no plan within %.2f s; stopped", self._label, self._budget)
            return f"{self._label} found no plan in time"
        except EOFError:
            child.join(KILL_GRACE_S)  # closed its end by exiting: reap it for the exit code
            return f"{self._label} stopped without a plan (exit code {child.exitcode})"
        finally:
            self._stop()

    def _stop(self) -> None:
        if self._child is None:
            return
        if self._child.is_alive():
            self._child.kill()
        self._child.join()
        self._receiver.close()
        self._child = None


def _child(
    target: Callable[..., Assignment], args: tuple[Any, ...], label: str, sender: Any
) -> None:
    try:
        answer: Assignment | str = target(*args)
    except Exception as exc:  # the parent reports it; the child has no one else to tell
        answer = f"{label} failed: {exc}"
    sender.send(answer)
    sender.close()
