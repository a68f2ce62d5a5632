"""The compiled local-search re-sequencer (``edge/sequencer/_lsearch.c``).

An iterated local search over one vehicle's route: 2-opt, or-opt (segments of 1-3 stops,
both orientations; single stops where it repairs a plan, and after the first descent on a
day of narrow windows: :func:`choose_segments`) and swap over the stops nearest each stop,
each move priced by the same simulation as :mod:`edge.sequencer.schedule` (soft windows,
the break, the shift end, capacity, depth), re-simulated from the first changed position
only and dropped as soon as it cannot gain. It starts from ``problem.current_order`` (the
portfolio hands it the plan or the greedy route), keeps the committed stop first, never
answers a costlier route than its warm start, and stops at the time limit (a hard deadline
inside the C loop) or once ``patience`` kicks in a row have brought nothing. The search
runs without the GIL.

How it descends depends on the day (:func:`choose_rule`): on a day of narrow windows
(:func:`window_share` under ``TIGHT_WINDOW_SHARE``) the first descent takes the best move
of each stop, the descents after a kick the first that gains; on a day of wide windows
and free stops the first descent takes the first that gains and, where the search repairs
a plan that drifted, the descents after a kick the best. Each rule won on one family of
the benchmark and lost on the other (``docs/performance.md``). Handed the driver's order
besides a warm start built from it (``driver_order``), on a day of narrow windows with at
most ``MULTI_MAX_STOPS`` stops, or any day of at most ``MULTI_MAX_LOOSE`` stops, it
screens several starts: the warm start, the driver's order, the greedy's insertion and its
nearest neighbour (built by ``_lsearch.construct``), each searched for ``SCREEN_SHARE`` of
the time, and goes on from the cheapest route found for the rest of it. Which start ends
best differs from day to day and is not the cheapest start: on narrow windows a
time-ordered driver's order often is. On the 100-stop van days the screening cost more
than it brought. Building a day of wide windows and more than ``WIDE_MIN_STOPS`` stops
from a poor order, it looks at ``WIDE_NEIGHBOURS`` neighbours of each stop rather than
``NEIGHBOURS``: with 20, the 200-stop van days stayed stuck 7-13% above the reference on
one call in four or five.

Between descents a kick, one of two at random: two adjacent segments of up to eight stops
exchanged, or a run of up to eight stops each moved to the cheapest place next to one of
its near stops, three places from its own at least, whatever that costs (a ruin and
recreate in small). Against the exchange alone, the mix brought the 200-stop days built
from a poor order nearer the best routes found and cost the 100-stop van days 0.05-0.25
points (the C file's ``KICK_KIND``; ``docs/performance.md``, *Re-sequencer (edge)*).

After each kick and descent the route is kept if it is no costlier than the one kicked, or
within ``ACCEPT`` (0.3 %) of the best route found so far (record-to-record): the search
walks through slightly worse routes without drifting away from the best. Against keeping
no worse routes only, that brought the Solomon-derived days built from a poor order from
0.60 % to 0.43 % above the references at 100 stops, and from 1.06 % to 0.96 % at 200 (ten
seeds, 0.2 s budget, in exploratory runs before the benchmark); the other families moved
within their noise.

That share is wider at the start of a search and falls to ``ACCEPT`` as the square of the
share of its time left (:func:`choose_accept_start`): 6 % (``ACCEPT_START``) on a day of at
most 100 stops, whatever the call, and 2 % (``ACCEPT_START_WIDE``) building a larger day of
wide windows from a poor order. The search from one start otherwise settles within tens of
milliseconds in one basin and stays there whatever the seed (a 100-stop van day, from the
greedy's route: 1.5 % above the best route known after 10 s); roaming first, it ends in the
best basin it passed through. In interleaved exploratory runs (the default portfolio at the
0.2 s budget, with and without the wider start, against the best routes known), the
Solomon-derived 100-stop days built from a poor order went from 0.35 % to 0.19 %, after an
event from 0.29 % to 0.20 %; the van days of 100 stops from 1.21 % to 1.01 %, of 150 from
2.00 % to 1.76 %, of 200 from 3.71 % to 3.48 %; the 50-stop days stayed at 0.00 %. On the
200-stop days of narrow windows and on the 200-stop repairs a wider start cost more than it
brought (0.19 % to 0.43 %, 0.10 % to 0.37 %, with 4 %): there the search has about 160
kicks in the time, too few to roam and settle.

Two searches run side by side (``THREADS``, at most the machine's CPUs), each with its own
seed: on a route built from a poor order the second goes from another start (below; the
driver's own order where none is built), on a small day the two cheapest screened routes go
on, and the cheapest route found wins. The second runs at the lowest priority, on CPU no
one else wants: on a busy gateway the answer is about what one search finds, and the
tablet's server comes before it.

On a day of narrow windows built from a poor order, a beam search (``_lsearch.construct``,
``method="beam"``: :func:`beam_route`) builds one more start forwards in time, keeping the
cheapest partial routes of each length, 100 at 100 stops and 50 at 200 (about 5 ms): there
the second search goes on from it rather than from the driver's order, and a small day
screens it with the others. On such a day the order is mostly the time's, and neither the
greedy's constructions nor the search from them find it: on the clustered 200-stop
Solomon-derived day the beam's route is 0.7 % above the best route known, the greedy's
insertion 34 %, and the search from that stayed 3-5 % above; with the beam it ends below the
route known before. On wide windows the beam over all stops is no better than the greedy's
routes; there instead the second search goes on from "windows first"
(``method="windows first"``): the beam over the stops whose windows bind (narrower than
half the day), then each free stop, the farthest first, where it adds the least distance
and makes no stop late. The driver's sweep on those days is hours late and the search from
it did not recover in the time; the windows-first route is 8-205 % above the best known
rather than thousands, and on eight van days of each size the search from it ended nearer
the best found (``docs/performance.md``, *Re-sequencer (edge)*).

:func:`compile_problem` gives the keyword arguments of ``_lsearch.cost``/``search`` for a
problem; :func:`search` runs the search on stop positions.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from edge.sequencer import _lsearch
from edge.sequencer.base import build_result, wait_at_exit
from edge.sequencer.greedy import URGENCIES
from edge.sequencer.problem import (
    SequencerError,
    SequenceResult,
    SequencerParams,
    SequencingProblem,
)

__all__ = ["LocalSearchSequencer", "compile_problem", "default_threads", "search"]

_T = TypeVar("_T")
log = logging.getLogger(__name__)

NEIGHBOURS = 20  # granular neighbourhood: the stops nearest each stop by travel time
WIDE_NEIGHBOURS = 24  # the same on a large day of wide windows built from a poor order
WIDE_MIN_STOPS = 100  # "large": more stops than this
SEGMENT = 3  # or-opt's longest segment, building a route from a poor order...
TIGHT_SEGMENT_AFTER = 1  # ...after the first descent, on a day of narrow windows
REPAIR_SEGMENT = 1  # ...and throughout, repairing a plan that drifted
ACCEPT = 0.003  # a kicked route within this share of the best found is kept
ACCEPT_START = 0.06  # ...or within this share at the start of a search (falling to ACCEPT)
ANNEAL_MAX_STOPS = 100  # on a day of at most this many stops; on a larger one...
ACCEPT_START_WIDE = 0.02  # ...this, building a day of wide windows from a poor order only
PATIENCE = 2_000  # kicks in a row without a gain after which the search stops
RESERVE_S = 0.002  # kept back from the time limit for building the answer
MIN_SEARCH_S = 0.001  # never hand the search less than this
TIGHT_WINDOW_SHARE = 0.3  # a day whose windows cover less of it on average is "tight"
MULTI_MAX_STOPS = 100  # narrow windows: up to this many stops, several starts are screened
MULTI_MAX_LOOSE = 50  # wide windows: the same up to this many
SCREEN_SHARE = 0.15  # of the time, for each start screened
BEAM_SIZE = 10_000  # the beam search keeps this many partial routes over the stops...
BEAM_WIDTH_MAX = 200  # ...at most this many (0: no beam)
WINDOWS_FIRST = True  # wide windows: the second search from the windowed stops' beam
THREADS = 2  # searches side by side (at most the CPUs): see LocalSearchSequencer.solve
THREAD_SEED_STRIDE = 1 << 32  # thread k searches with seed + k * this
HELPER_NICE = 19  # the helper threads' priority: CPU no one else wants
HELPER_GRACE_S = 0.005  # how long past its phase a helper's search is still awaited
# the C search's rule (bit 0: first improvement in the first descent; bit 1: after kicks)
RULE_TIGHT = 2  # narrow windows: best moves first, then first improvement
RULE_LOOSE = 3  # wide windows, a route built from a poor order: first improvement
RULE_LOOSE_REPAIR = 1  # wide windows, a drifted plan: first, then best after kicks


def window_share(problem: SequencingProblem) -> float:
    """The mean share of the day (from the start to the shift end, or to the latest due
    time) that a stop's window covers; a free stop covers all of it."""
    if not problem.stops:
        return 1.0
    last = problem.day_end
    t0 = problem.start_time
    horizon = last - t0
    if horizon <= 0:
        return 1.0
    covered = sum(max(0, min(s.due, last) - max(s.ready, t0)) for s in problem.stops)
    return covered / (horizon * len(problem.stops))


def choose_rule(problem: SequencingProblem, repair: bool) -> int:
    """The descent rule for this day: see the module docstring."""
    if window_share(problem) < TIGHT_WINDOW_SHARE:
        return RULE_TIGHT
    return RULE_LOOSE_REPAIR if repair else RULE_LOOSE


def choose_accept_start(stops: int, rule: int, repair: bool) -> float:
    """How far above the best route found a kicked route may be at the start of a search
    (``accept_start`` of the C search; negative: ``ACCEPT`` throughout)."""
    if stops <= ANNEAL_MAX_STOPS:
        return ACCEPT_START
    if rule == RULE_LOOSE and not repair:
        return ACCEPT_START_WIDE
    return -1.0


def choose_segments(rule: int, repair: bool) -> tuple[int, int]:
    """Or-opt's longest segment in the first descent and in the descents after a kick
    (0: the same): single stops where the search repairs a plan, and after the first
    descent on a day of narrow windows; up to three stops otherwise. The shorter the
    segments, the cheaper a descent and the more kicks fit in the time: that won where the
    route is already close to good, and lost on the wide-window days built from a poor order
    (``docs/performance.md``)."""
    if repair:
        return REPAIR_SEGMENT, 0
    return SEGMENT, TIGHT_SEGMENT_AFTER if rule == RULE_TIGHT else 0


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
    accept_start: float = -1.0,
    rule: int = 3,
    segment: int = SEGMENT,
    segment_after: int = 0,
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
        accept_start=accept_start,
        rule=rule,
        segment=segment,
        segment_after=segment_after,
    )


def _starts(
    args: dict[str, Any], warm: list[int], driver: list[int], fixed: bool, built: str | None = None
) -> list[list[int] | Callable[[], list[int]]]:
    """The starts screened on a small day: the warm start, the driver's order, and the
    greedy's insertion and nearest neighbour from it, each once; with ``built`` (a method
    of :func:`beam_route`), last, its route, built by the search that screens it."""
    route = np.asarray(driver, dtype=np.int64)
    out: list[list[int] | Callable[[], list[int]]] = [warm]
    for start in (
        driver,
        _lsearch.construct(**args, route=route, fixed=int(fixed), method="insertion"),
        *(
            _lsearch.construct(**args, route=route, fixed=int(fixed), method="nearest", urgency=u)
            for u in URGENCIES
        ),
    ):
        if start not in out:
            out.append(start)
    if built is not None:
        out.append(functools.partial(beam_route, args, driver, fixed, built))
    return out


def beam_width(stops: int) -> int:
    """How many partial routes the beam search keeps on a day of ``stops`` stops:
    ``BEAM_SIZE`` over the stops (100 at 100 stops, 50 at 200), at most ``BEAM_WIDTH_MAX``.
    Its time grows with both, so that it takes about 5 ms at either size."""
    return max(1, min(BEAM_WIDTH_MAX, BEAM_SIZE // max(1, stops)))


def beam_route(
    args: dict[str, Any], route: list[int], fixed: bool, method: str = "beam"
) -> list[int]:
    """The beam search's route (``_lsearch.construct(method="beam")``, :func:`beam_width`
    wide), keeping ``route``'s first stop where ``fixed``; with ``method="windows first"``,
    over the stops with binding windows only, the others then inserted."""
    return _lsearch.construct(
        **args,
        route=np.asarray(route, dtype=np.int64),
        fixed=int(fixed),
        method=method,
        width=beam_width(len(route)),
    )


class LocalSearchSequencer:
    """The compiled iterated local search from the warm start, for ``params.time_limit_s``.

    ``rule`` fixes the C search's descent rule; ``None`` (the default) chooses it per day
    (:func:`choose_rule`). The portfolio says whether the warm start is the driver's order
    (``repair``, the default when not said) or a route built from it (``driver_order``).
    ``threads`` searches run side by side (``None``: :func:`default_threads`); see
    :meth:`solve`."""

    name = "lsearch"
    takes_starts = True  # solve() accepts repair= and driver_order=

    def __init__(
        self,
        neighbours: int = NEIGHBOURS,
        patience: int = PATIENCE,
        rule: int | None = None,
        threads: int | None = None,
    ) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        self.neighbours = neighbours
        self.patience = patience
        self.rule = rule
        self.threads = threads

    def solve(
        self,
        problem: SequencingProblem,
        params: SequencerParams,
        *,
        repair: bool = True,
        driver_order: Sequence[str] | None = None,
    ) -> SequenceResult:
        """Search from the warm start until the time limit, the cheapest route found.

        With several threads the searches run side by side, each with its own seed, and
        the cheapest wins. On a small day the starts are screened (:func:`_starts`) a
        thread's share each, and the cheapest routes found go on, one per thread. Otherwise
        the first thread goes on from the warm start and, on a route built from a poor order
        (not a repair), the second from a route it builds first: the beam search's on a
        day of narrow windows, windows first on a day of wide ones (the driver's own order
        with neither): which ends best differs from day to day (``docs/performance.md``);
        further threads search from the warm start with other seeds."""
        t0 = time.perf_counter()
        deadline = t0 + params.time_limit_s - RESERVE_S
        fixed = problem.committed_next is not None
        threads = self.threads if self.threads is not None else default_threads()
        try:
            args = compile_problem(problem, params)
            rule = self.rule if self.rule is not None else choose_rule(problem, repair)
            warm = [problem.index[s] for s in problem.current_order]
            driver = None
            if driver_order is not None and not repair and problem.is_valid_order(driver_order):
                driver = [problem.index[s] for s in driver_order]
            screened = driver is not None and len(problem.stops) <= (
                MULTI_MAX_STOPS if rule == RULE_TIGHT else MULTI_MAX_LOOSE
            )

            neighbours = self.neighbours
            segment, segment_after = choose_segments(rule, repair)
            if self.rule is None and rule == RULE_LOOSE and len(problem.stops) > WIDE_MIN_STOPS:
                neighbours = max(neighbours, WIDE_NEIGHBOURS)

            built = None  # how the second start is built, if it is
            if driver is not None and BEAM_WIDTH_MAX > 0:
                if rule == RULE_TIGHT:
                    built = "beam"
                elif WINDOWS_FIRST:
                    built = "windows first"

            accept_start = choose_accept_start(len(problem.stops), rule, repair)

            def run(
                route: list[int] | Callable[[], list[int]], seconds: float, seed: int, until: float
            ) -> tuple[list[int], float]:
                if callable(route):  # a start built in the search's own thread
                    route = route()
                left = min(seconds, until - time.perf_counter())
                found, cost, _ = search(
                    args,
                    route,
                    fixed,
                    seed,
                    max(MIN_SEARCH_S, left),
                    neighbours,
                    self.patience,
                    accept=ACCEPT,
                    accept_start=accept_start,
                    rule=rule,
                    segment=segment,
                    segment_after=segment_after,
                )
                return found, cost

            seeds = [thread_seed(params.seed, k) for k in range(threads)]
            found: list[tuple[list[int], float]] = []
            goes_on: list[list[int] | Callable[[], list[int]]]
            if screened:
                assert driver is not None
                # the beam's route on narrow windows (the small days of wide windows did as
                # well without one more start)
                starts = _starts(args, warm, driver, fixed, built if rule == RULE_TIGHT else None)
                screen = (deadline - time.perf_counter()) * SCREEN_SHARE
                rounds = -(-len(starts) // threads)
                until = time.perf_counter() + screen * rounds
                jobs = [
                    functools.partial(run, route, screen, seeds[k % threads], until)
                    for k, route in enumerate(starts)
                ]
                found = [rc for rc in _side_by_side(jobs, threads, until) if rc is not None]
                goes_on = [route for route, _ in sorted(found, key=lambda rc: rc[1])[:threads]]
            else:
                goes_on = [warm]
                if driver is not None and threads > 1:
                    if built is not None:
                        goes_on.append(functools.partial(beam_route, args, driver, fixed, built))
                    elif driver != warm:
                        goes_on.append(driver)
            goes_on += [goes_on[0]] * (threads - len(goes_on))
            left = deadline - time.perf_counter()
            jobs = [
                functools.partial(run, route, left, seeds[k], deadline)
                for k, route in enumerate(goes_on)
            ]
            more = [rc for rc in _side_by_side(jobs, threads, deadline) if rc is not None]
            best = min(more + found, key=lambda rc: rc[1])
        except (ValueError, MemoryError) as exc:
            raise SequencerError(f"local search failed: {exc}") from exc
        order = [problem.stops[i].id for i in best[0]]
        return build_result(problem, params, order, self.name, time.perf_counter() - t0)


def default_threads() -> int:
    """How many searches run side by side: ``THREADS``, at most the machine's CPUs."""
    return max(1, min(THREADS, os.cpu_count() or 1))


def thread_seed(seed: int, k: int) -> int:
    """Thread ``k``'s seed: the caller's for the first, so that one thread searches as
    before; the C search hashes it, so neighbouring values are independent streams."""
    return seed + k * THREAD_SEED_STRIDE


def _side_by_side(jobs: list[Callable[[], _T]], threads: int, until: float) -> list[_T | None]:
    """Run ``jobs`` with at most ``threads`` at once, their results in order. The calling
    thread runs the first job, then takes the next one free like the helpers; the compiled
    search releases the GIL, so the jobs run in parallel. The helpers run at the lowest
    priority (:func:`_yield_to_others`): they use CPU no one else wants, so on a busy
    machine the first job searches as fast as it would alone. A helper starts no job past
    ``until`` (``time.perf_counter()``; the caller runs whatever is left), and one not done
    by then (and ``HELPER_GRACE_S``) is not waited for: its job's result is ``None``. An
    exception in a job waited for is raised here once they have ended."""
    if threads <= 1 or len(jobs) <= 1:
        return [job() for job in jobs]
    results: list[_T | None] = [None] * len(jobs)
    failed: list[BaseException] = []
    lock = threading.Lock()
    pending = iter(range(1, len(jobs)))

    def take(helper: bool) -> int | None:
        with lock:
            return None if helper and time.perf_counter() >= until else next(pending, None)

    def run(k: int | None, helper: bool) -> None:
        while k is not None:
            try:
                results[k] = jobs[k]()
            except BaseException as exc:  # handed back to the caller
                failed.append(exc)
            k = take(helper)

    def helper() -> None:
        _yield_to_others()
        run(take(True), True)

    helpers = [
        threading.Thread(target=helper, name=f"lsearch-{k}", daemon=True)
        for k in range(1, min(threads, len(jobs)))
    ]
    for t in helpers:
        t.start()
    run(0, False)
    for t in helpers:
        t.join(max(0.0, until - time.perf_counter()) + HELPER_GRACE_S)
        if t.is_alive():
            wait_at_exit(t)
    if failed:
        raise failed[0]
    return list(results)


def _yield_to_others() -> None:
    """Give the calling thread the lowest scheduling priority, where the system allows it
    per thread (Linux takes a thread's id for a process id here); elsewhere nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HELPER_NICE)
    except OSError:  # a sandbox may refuse it: the helper then runs at the usual priority
        log.debug("could not lower a search thread's priority", exc_info=True)
