"""The default re-sequencer: a greedy answer first, then a real solver within what is left
of the budget, and the cheapest of the current order, the greedy and the solver's answer.

It never leaves the driver without a route: a solver that raises, or that has not answered
when the budget (plus a small grace) is spent, is logged and ignored, and the greedy route
(or the driver's current order, if cheaper) stands. The solver warm-starts from the
cheaper of the two, or from the current order where it is a plan that drifted. Which
solver runs is chosen per call: the ``primary``, or a ``soft`` one on days the greedy
route is late, if given. The compiled search is also told whether its warm start is the
driver's order (a repair) or a route built from it, and is handed the driver's order: it
chooses its descent rule by that and by the day's windows, and on a small day searches
from both starts. ``make_sequencer`` runs the compiled local search
(:mod:`edge.sequencer.lsearch`) after the greedy's starts (built by the extension too, in
well under a millisecond at 200 stops, so the search has nearly all of the time): it
prices every move by the
same simulation the answer is judged by, and beat the PyVRP portfolio (the earlier
default, still ``make_sequencer(solver="pyvrp")``) on the benchmark at the same answer
times. PyVRP runs where the extension is not built; OR-Tools where PyVRP is not installed.

Effort scales with size: the portfolio spends the budget or, where shorter, an aimed-for
answer time (``TARGET_S`` up to 100 stops, growing with the square of the stops past 100),
so that at 100 stops the default 0.2 s budget answers in under 0.1 s (about 90 ms, so a
p95 under 100 ms holds with the thread's start and the answer's simulation). The search has
not converged by then on a route built from a poor order (see ``docs/performance.md``);
repairing a good route after a trigger, the agent's everyday call, it mostly has.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

from edge.sequencer.base import Sequencer, build_result, wait_at_exit
from edge.sequencer.greedy import GreedySequencer
from edge.sequencer.problem import (
    SequenceResult,
    SequencerParams,
    SequencingProblem,
    Status,
)

__all__ = ["PortfolioSequencer", "make_sequencer"]

log = logging.getLogger(__name__)

TARGET_S = 0.088  # aimed-for answer time up to 100 stops (the goal: p95 under 0.1 s)
TARGET_GROWTH = 2.0  # past 100 stops the aim grows as (stops / 100) ** TARGET_GROWTH
GREEDY_SHARE = 0.15  # of the budget, for the greedy answer that always comes first
SOLVER_SHARE = 0.9  # of what is left, handed to the solver as its own time limit
LSEARCH_SHARE = 0.97  # the same for the compiled search (a hard deadline in its loop)
PLAN_DISTANCE_RATIO = 1.0  # a plan is no longer than the greedy route...
PLAN_LATENESS_SHARE = 0.05  # ...and late by at most this share of the day per stop
GRACE_S = 0.05  # how long past the budget a solver's answer is still awaited


class PortfolioSequencer:
    """Greedy first, then the solver that suits the day; the cheapest valid route wins."""

    name = "portfolio"

    def __init__(
        self,
        primary: Sequencer | None,
        soft: Sequencer | None = None,
        fallback: Sequencer | None = None,
        greedy_share: float = GREEDY_SHARE,
        grace_s: float = GRACE_S,
        target_s: float | None = TARGET_S,
        solver_share: float = SOLVER_SHARE,
    ) -> None:
        self.primary = primary
        self.solver_share = solver_share
        self.target_s = target_s
        self.soft = soft
        self.fallback = fallback if fallback is not None else GreedySequencer()
        self.greedy_share = greedy_share
        self.grace_s = grace_s

    def effort_s(self, stops: int, budget_s: float) -> float:
        """The time this portfolio spends on ``stops`` stops: the budget, or less where the
        aimed-for answer time (``target_s``, growing with the square of the stops past 100)
        is shorter. The budget is the hard cap the caller set; the aim keeps the answer at
        100 stops well before it."""
        if self.target_s is None:
            return budget_s
        return min(budget_s, self.target_s * max(1.0, stops / 100) ** TARGET_GROWTH)

    def solve(self, problem: SequencingProblem, params: SequencerParams) -> SequenceResult:
        t0 = time.perf_counter()
        params = replace(
            params, time_limit_s=self.effort_s(len(problem.stops), params.time_limit_s)
        )
        deadline = t0 + params.time_limit_s
        current = build_result(problem, params, problem.current_order, "current", 0.0)
        greedy: SequenceResult | None = None
        try:
            greedy = self.fallback.solve(
                problem, replace(params, time_limit_s=params.time_limit_s * self.greedy_share)
            )
        except Exception:
            log.exception("greedy re-sequence failed; keeping the current order as fallback")
        backup = current if greedy is None or current.cost <= greedy.cost else greedy
        solver = self.primary
        if self.soft is not None and (solver is None or (greedy is not None and greedy.lateness)):
            solver = self.soft
        answer: SequenceResult | None = None
        left = deadline - time.perf_counter()
        if solver is not None and left > 0:
            sub = replace(params, time_limit_s=left * self.solver_share)
            warm = problem
            if backup is not current and not _plan_like(problem, current, backup):
                warm = problem.reordered(backup.order)
            hints = {}
            if getattr(solver, "takes_starts", False):  # the compiled search
                hints = {"repair": warm is problem, "driver_order": problem.current_order}
            answer = self._bounded(solver, warm, sub, left + self.grace_s, hints)
        seconds = time.perf_counter() - t0
        if answer is None:
            status = Status.CURRENT if backup is current else Status.FALLBACK
            return replace(backup, seconds=seconds, status=status)
        best = min((answer, backup), key=lambda r: r.cost)
        status = Status.CURRENT if best is current else Status.SOLVED
        return replace(best, seconds=seconds, status=status)

    def _bounded(
        self,
        solver: Sequencer,
        problem: SequencingProblem,
        params: SequencerParams,
        timeout: float,
        hints: dict[str, object] | None = None,
    ) -> SequenceResult | None:
        """Run ``solver`` in a worker thread; ``None`` if it raises or misses ``timeout``.
        ``hints`` are keyword arguments for a solver that takes them (``takes_starts``)."""
        box: list[SequenceResult | BaseException] = []

        def work() -> None:
            try:
                box.append(solver.solve(problem, params, **(hints or {})))
            except BaseException as exc:  # handed back to the caller's thread
                box.append(exc)

        worker = threading.Thread(target=work, name=f"sequencer-{solver.name}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive() or not box:
            log.warning("%s missed its %.3f s budget; the fallback stands", solver.name, timeout)
            wait_at_exit(worker)
            return None
        out = box[0]
        if isinstance(out, BaseException):
            log.warning("%s failed (%s); the fallback route stands", solver.name, out)
            return None
        if not problem.is_valid_order(out.order):
            log.warning("%s returned an invalid order; the fallback route stands", solver.name)
            return None
        return out


def _plan_like(problem: SequencingProblem, current: SequenceResult, greedy: SequenceResult) -> bool:
    """Whether the current order is a plan that drifted (a delay, a moved window) rather
    than an order that ignores the windows: no longer than the greedy route, and late by
    no more than ``PLAN_LATENESS_SHARE`` of the day per stop. The solver then starts from
    it even where the greedy route is cheaper: repairing a good route beats rebuilding one
    (after an event, 0.4-0.9% above the reference from the plan against 1.8-4.8% from the
    greedy route, at 100 stops and 0.2 s)."""
    if current.distance > PLAN_DISTANCE_RATIO * greedy.distance:
        return False
    horizon = max(1, problem.day_end - problem.start_time)
    return current.lateness <= PLAN_LATENESS_SHARE * horizon * len(problem.stops)


def make_sequencer(
    target_s: float | None = TARGET_S, solver: str = "lsearch", threads: int | None = None
) -> Sequencer:
    """The re-sequencer the benchmark (``bench/resequence.py``) shows is best; with
    ``target_s=None`` it spends the whole budget whatever the size.

    ``solver="lsearch"`` (the default): the greedy's starts without their Python local
    search, then the compiled local search (:mod:`edge.sequencer.lsearch`) for the rest,
    ``threads`` searches side by side (``None``: two, or one on a single-CPU machine).
    ``solver="pyvrp"``: the greedy, then PyVRP (the default until the compiled search).
    Without the compiled extension the default falls back to PyVRP; without PyVRP,
    OR-Tools does all the work; with neither (an edge install carries no cloud solver),
    the greedy route alone. A solver library is imported only on the path that uses it,
    so the default on a gateway loads neither OR-Tools nor PyVRP.
    """
    if solver == "lsearch":
        try:
            from edge.sequencer.lsearch import LocalSearchSequencer
        except ImportError:
            log.warning(
                "the compiled local search is not built; the re-sequencer uses PyVRP, "
                "OR-Tools or the greedy, whichever is installed"
            )
        else:
            return PortfolioSequencer(
                primary=LocalSearchSequencer(threads=threads),
                fallback=GreedySequencer(polish=False, rebuild_current=False, compiled=True),
                target_s=target_s,
                solver_share=LSEARCH_SHARE,
            )
    elif solver != "pyvrp":
        raise ValueError(f"unknown solver {solver!r}")

    try:
        from edge.sequencer.pyvrp_solver import PyVrpSequencer
    except ImportError:
        log.info("pyvrp is not installed; the re-sequencer uses OR-Tools")
    else:
        return PortfolioSequencer(primary=PyVrpSequencer(), target_s=target_s)
    try:
        from edge.sequencer.ortools_solver import OrToolsSequencer
    except ImportError:
        log.warning("neither pyvrp nor ortools is installed; the re-sequencer is the greedy")
        return PortfolioSequencer(primary=None, target_s=target_s)
    return PortfolioSequencer(primary=OrToolsSequencer(), target_s=target_s)
