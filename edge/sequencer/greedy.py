"""The pure-Python re-sequencer: the cheapest of the warm start, a time-oriented nearest
neighbour (two variants) and a window-keeping cheapest insertion, then or-opt and 2-opt
moves restricted to near neighbours, judged by the full soft-window simulation and stopped
at the time limit. Fast enough to be everyone's fallback and the solvers' warm start.
:func:`polish` is the same local search, iterated, for other solvers' answers.

With ``compiled=True`` the starts are built by the compiled extension
(``_lsearch.construct``: the same constructions, step for step and with the same ties, so
the same routes, 30-50 times faster), where it is built; the portfolio's warm start."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edge.sequencer.base import build_result
from edge.sequencer.problem import SequenceResult, SequencerParams, SequencingProblem
from edge.sequencer.schedule import Evaluator

__all__ = ["GreedySequencer", "polish"]

log = logging.getLogger(__name__)

NEIGHBOURS = 10  # candidate positions per stop in the local search
URGENCIES = (0.05,)  # nearest-neighbour variants tried, after the two insertions
KICKS_WITHOUT_GAIN = 30  # polish stops after this many fruitless kicks in a row


class GreedySequencer:
    """Nearest neighbour or insertion, then or-opt/2-opt until the time limit.

    With ``polish=False`` it answers the cheapest start without the local search: the
    warm start of a portfolio whose solver does the searching (the compiled one), which
    starts from a drifted plan itself, so ``rebuild_current=False`` skips the insertion
    in the current order. ``compiled=True`` builds the starts in C where the extension is
    built (the same routes)."""

    name = "greedy"

    def __init__(
        self,
        neighbours: int = NEIGHBOURS,
        polish: bool = True,
        rebuild_current: bool = True,
        compiled: bool = False,
    ) -> None:
        self.neighbours = neighbours
        self.polish = polish
        self.rebuild_current = rebuild_current
        self.compiled = compiled

    def solve(self, problem: SequencingProblem, params: SequencerParams) -> SequenceResult:
        t0 = time.perf_counter()
        deadline = t0 + params.time_limit_s
        ev = Evaluator(problem, params)
        fixed = 1 if problem.committed_next is not None else 0
        best = ev.indices(problem.current_order)
        best_cost = ev.cost(best)
        current = best
        build = _builder(ev, problem, params, current, fixed, self.compiled)
        starts = (
            lambda: build("insertion"),
            *((lambda: build("insertion in order"),) if self.rebuild_current else ()),
            *(lambda u=u: build("nearest", u) for u in URGENCIES),
        )
        for k, make in enumerate(starts):  # the first always, the others while time is left
            if k and time.perf_counter() > deadline:
                break
            route = make()
            cost = ev.cost(route)
            if cost < best_cost:
                best, best_cost = route, cost
        if self.polish:
            best, best_cost = _local_search(
                ev, best, best_cost, fixed, deadline, _near(ev, self.neighbours)
            )
        order = [ev.ids[i] for i in best]
        return build_result(problem, params, order, self.name, time.perf_counter() - t0)


def _builder(
    ev: Evaluator,
    problem: SequencingProblem,
    params: SequencerParams,
    current: list[int],
    fixed: int,
    compiled: bool,
) -> Callable[..., list[int]]:
    """``build(method, urgency=0.0)``: one of the starts (``insertion``, ``insertion in
    order``, ``nearest``), from the compiled constructions with ``compiled`` where the
    extension is built, else in Python. A construction the extension refuses
    (``ValueError``) is logged and built in Python instead."""
    lib: Any = None
    if compiled:
        try:
            from edge.sequencer import _lsearch
            from edge.sequencer.lsearch import compile_problem

            lib = _lsearch
        except ImportError:
            log.debug("the compiled extension is not built; the greedy builds its starts in Python")
    route = np.asarray(current, dtype=np.int64)
    args: dict[str, object] | None = None

    def build(method: str, urgency: float = 0.0) -> list[int]:
        nonlocal args
        if lib is not None:
            try:
                if args is None:
                    args = compile_problem(problem, params)
                order: list[int] = lib.construct(
                    **args, route=route, fixed=fixed, method=method, urgency=urgency
                )
                return order
            except (ValueError, MemoryError) as exc:
                log.warning("compiled %s start failed (%s); built in Python", method, exc)
        if method == "nearest":
            return _nearest_neighbour(ev, current[:fixed], urgency)
        return _insertion(ev, current[:fixed], current if method == "insertion in order" else None)

    return build


def polish(
    ev: Evaluator,
    route: list[int],
    deadline: float,
    seed: int = 0,
    neighbours: int = NEIGHBOURS,
    patience: int = KICKS_WITHOUT_GAIN,
) -> tuple[list[int], float]:
    """Iterated local search judged by the exact simulation: or-opt/2-opt to a local
    optimum, then kicks (a random segment moved elsewhere, twice) from the best, until
    ``patience`` kicks in a row bring nothing or ``deadline`` (a ``time.perf_counter()``
    value) passes. ``route`` is stop positions; the committed stop stays first."""
    fixed = 1 if ev.problem.committed_next is not None else 0
    near = _near(ev, neighbours)
    best, best_cost = _local_search(ev, list(route), ev.cost(route), fixed, deadline, near)
    n = len(best)
    if n - fixed < 3:
        return best, best_cost
    rng = random.Random(seed)
    misses = 0
    while misses < patience and time.perf_counter() < deadline:
        r = best
        for _ in range(2):
            a = rng.randrange(fixed, n)
            b = min(n, a + rng.randint(1, 3))
            seg, rest = r[a:b], r[:a] + r[b:]
            j = rng.randrange(fixed, len(rest) + 1)
            r = rest[:j] + seg + rest[j:]
        r, c = _local_search(ev, r, ev.cost(r), fixed, deadline, near)
        if c < best_cost - 1e-9:
            best, best_cost, misses = r, c, 0
        else:
            misses += 1
    return best, best_cost


def _nearest_neighbour(ev: Evaluator, prefix: list[int], urgency: float = 0.0) -> list[int]:
    """Next is the stop that is cheapest to serve from here: travel, wait and lateness, plus
    ``urgency`` per second of slack left before its due time (Solomon's time-oriented
    nearest neighbour), which brings the stops whose windows close soon forward. Each step
    scores every stop left at once (NumPy); ties go to the lower stop position."""
    p = ev.problem
    tt, dm = ev.arrays()
    node = np.asarray(ev.node, dtype=np.int64)
    ready = np.asarray(ev.ready, dtype=np.int64)
    due = np.asarray(ev.due, dtype=np.int64)
    service = ev.service
    w = ev.params.lateness_weight
    route = list(prefix)
    done = np.zeros(len(node), dtype=bool)
    done[route] = True
    t, pos = p.start_time, p.start_node
    for i in route:
        t = max(t + tt[pos, ev.node[i]], ev.ready[i]) + service[i]
        pos = ev.node[i]
    for _ in range(len(node) - len(route)):
        a = t + tt[pos, node]
        start = np.maximum(a, ready)
        slack = due - start
        score = dm[pos, node] + (start - a) + np.where(slack >= 0, urgency * slack, -w * slack)
        score[done] = np.inf
        i = int(np.argmin(score))
        done[i] = True
        route.append(i)
        t = int(start[i]) + service[i]
        pos = ev.node[i]
    return route


def _insertion(ev: Evaluator, prefix: list[int], order: list[int] | None = None) -> list[int]:
    """Sequential cheapest insertion that keeps the windows where it can: stops by due time
    (the free ones last, farthest from the start first), or in ``order`` if given (the
    current order: a plan that a delay made late is rebuilt close to itself, its stops
    that no longer fit moved to where they do), each where it adds the least
    distance without making itself or any later stop late (``latest`` is the latest
    service start at each position that keeps every later window and the shift end). A
    stop that fits nowhere goes where it is least late. The route stays after ``prefix``.
    Each stop's positions are scored at once (NumPy); the schedule is kept up to date in
    O(route) per insertion."""
    p = ev.problem
    tt, dm = ev.arrays()
    node, ready, due, service = ev.node, ev.ready, ev.due, ev.service
    end_limit = p.shift_end if p.shift_end is not None else 2**62
    placed = set(prefix)
    if order is not None:
        todo = [i for i in order if i not in placed]
    else:
        todo = sorted(
            (i for i in range(len(node)) if i not in placed),
            key=lambda i: (due[i], -int(dm[p.start_node, node[i]]), i),
        )
    route = list(prefix)
    fixed = len(prefix)
    big = float(2**62)

    ttl = p.travel_time
    dep = [p.start_time]  # departure from each position (the start at 0)
    t, pos = p.start_time, p.start_node
    for i in route:
        t = max(t + ttl[pos][node[i]], ready[i]) + service[i]
        dep.append(t)
        pos = node[i]
    latest = [end_limit] * (len(route) + 1)  # latest start at the next position
    for k in range(len(route) - 1, -1, -1):
        i, nxt_node = route[k], node[route[k + 1]] if k + 1 < len(route) else p.end_node
        latest[k] = min(due[i], latest[k + 1] - ttl[node[i]][nxt_node] - service[i])
    prev_nodes = [p.start_node, *(node[i] for i in route)]
    route_ready = [*(ready[i] for i in route), 0]  # the end node's "ready" is 0
    for u in todo:
        nu = node[u]
        prev = np.asarray(prev_nodes, dtype=np.int64)
        nxt = np.append(prev[1:], p.end_node)
        nxt_ready = np.asarray(route_ready, dtype=np.int64)
        start_u = np.maximum(np.asarray(dep, dtype=np.int64) + tt[prev, nu], ready[u])
        start_next = np.maximum(start_u + service[u] + tt[nu, nxt], nxt_ready)
        added = (dm[prev, nu] + dm[nu, nxt] - dm[prev, nxt]).astype(np.float64)
        ok = (start_u <= due[u]) & (start_next <= np.asarray(latest, dtype=np.int64))
        ok[:fixed] = False
        if ok.any():
            score = np.where(ok, added, big)
        else:  # late wherever it goes: least lateness (its own, and the delay it passes on
            # to the stops already late after it, a bound that ignores their waits), then
            # least distance
            now = [dep[j + 1] - service[i] for j, i in enumerate(route)]
            now.append(dep[-1] + ttl[prev_nodes[-1]][p.end_node])
            late_now = [st > due[i] for st, i in zip(now, route, strict=False)]
            late_now.append(now[-1] > end_limit)
            behind = np.cumsum(np.asarray(late_now[::-1], dtype=np.int64))[::-1]
            pushed = np.maximum(start_next - np.asarray(now, dtype=np.int64), 0) * behind
            own = np.maximum(start_u - due[u], 0)
            score = (own + pushed) * ev.params.lateness_weight + added
            score[:fixed] = big
        k = int(np.argmin(score))
        route.insert(k, u)
        prev_nodes.insert(k + 1, nu)
        route_ready.insert(k, ready[u])
        # departures from position k on, until one is as before (the rest then is too)
        old, dep = dep, dep[: k + 1]
        t, pos = dep[k], prev_nodes[k]
        for j in range(k, len(route)):
            i = route[j]
            t = max(t + ttl[pos][node[i]], ready[i]) + service[i]
            dep.append(t)
            pos = node[i]
            if j > k and t == old[j]:
                dep.extend(old[j + 1 :])
                break
        latest.insert(k, 0)
        for j in range(k, -1, -1):
            i = route[j]
            nxt_node = node[route[j + 1]] if j + 1 < len(route) else p.end_node
            lt = min(due[i], latest[j + 1] - ttl[node[i]][nxt_node] - service[i])
            if j < k and lt == latest[j]:
                break  # unchanged from here back
            latest[j] = lt
    return route


def _near(ev: Evaluator, k: int) -> list[list[int]]:
    """The ``k`` stops nearest each stop, nearest first (ties by position)."""
    n = len(ev.node)
    k = min(k, n - 1)
    if k <= 0:
        return [[] for _ in range(n)]
    node = np.asarray(ev.node, dtype=np.int64)
    d = ev.arrays()[1][np.ix_(node, node)].astype(np.float64)
    np.fill_diagonal(d, np.inf)
    part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < n - 1 else np.tile(np.arange(n), (n, 1))
    out = []
    for i in range(n):
        cand = [int(j) for j in part[i] if j != i]
        cand.sort(key=lambda j: (d[i, j], j))
        out.append(cand[:k])
    return out


def _local_search(
    ev: Evaluator,
    route: list[int],
    cost: float,
    fixed: int,
    deadline: float,
    near: list[list[int]],
) -> tuple[list[int], float]:
    n = len(route)
    if n - fixed < 2:
        return route, cost
    clock = time.perf_counter
    improved = True
    while improved:
        improved = False
        pos = {c: i for i, c in enumerate(route)}
        for a in range(fixed, n):
            if clock() > deadline:
                return route, cost
            moved = False
            for b_stop in near[route[a]]:
                b = pos[b_stop]
                if b < fixed:
                    continue
                if clock() > deadline:
                    return route, cost
                for r in _moves(route, a, b, fixed):
                    c = ev.cost(r)
                    if c < cost - 1e-9:
                        route, cost, improved, moved = r, c, True, True
                        break
                if moved:
                    pos = {c: i for i, c in enumerate(route)}
                    break
    log.debug("greedy local search converged at cost %.1f", cost)
    return route, cost


def _moves(route: list[int], a: int, b: int, fixed: int) -> list[list[int]]:
    """Or-opt (segments of 1-3 from ``a`` placed next to ``b``) and a 2-opt between them."""
    out: list[list[int]] = []
    n = len(route)
    for length in (1, 2, 3):
        if a + length > n or a <= b < a + length:
            continue
        seg = route[a : a + length]
        rest = route[:a] + route[a + length :]
        j = rest.index(route[b])
        for ins in (j, j + 1):
            if ins >= fixed and ins != a:
                out.append(rest[:ins] + seg + rest[ins:])
    lo, hi = min(a, b), max(a, b)
    if hi - lo >= 1 and lo >= fixed:
        out.append(route[:lo] + route[lo : hi + 1][::-1] + route[hi + 1 :])
        if lo + 1 < hi:
            out.append(route[: lo + 1] + route[lo + 1 : hi + 1][::-1] + route[hi + 1 :])
    return out
