"""The pure-Python re-sequencer: a warm start or a time-oriented nearest neighbour (the
cheapest of two variants), then or-opt and 2-opt moves restricted to near neighbours,
judged by the full soft-window simulation and stopped at the time limit. Fast enough to be
everyone's fallback. :func:`polish` is the same local search, iterated, for other solvers'
answers."""

from __future__ import annotations

import heapq
import logging
import random
import time

from edge.sequencer.base import build_result
from edge.sequencer.problem import SequenceResult, SequencerParams, SequencingProblem
from edge.sequencer.schedule import Evaluator

__all__ = ["GreedySequencer", "polish"]

log = logging.getLogger(__name__)

NEIGHBOURS = 10  # candidate positions per stop in the local search
URGENCIES = (0.0, 0.05)  # nearest-neighbour variants tried: each fails some days badly
KICKS_WITHOUT_GAIN = 30  # polish stops after this many fruitless kicks in a row


class GreedySequencer:
    """Nearest neighbour with soft windows, then or-opt/2-opt until the time limit."""

    name = "greedy"

    def __init__(self, neighbours: int = NEIGHBOURS) -> None:
        self.neighbours = neighbours

    def solve(self, problem: SequencingProblem, params: SequencerParams) -> SequenceResult:
        t0 = time.perf_counter()
        deadline = t0 + params.time_limit_s
        ev = Evaluator(problem, params)
        fixed = 1 if problem.committed_next is not None else 0
        best = ev.indices(problem.current_order)
        best_cost = ev.cost(best)
        for urgency in URGENCIES:
            nn = _nearest_neighbour(ev, best[:fixed], urgency)
            nn_cost = ev.cost(nn)
            if nn_cost < best_cost:
                best, best_cost = nn, nn_cost
        best, best_cost = _local_search(
            ev, best, best_cost, fixed, deadline, _near(ev, self.neighbours)
        )
        order = [ev.ids[i] for i in best]
        return build_result(problem, params, order, self.name, time.perf_counter() - t0)


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
    nearest neighbour), which brings the stops whose windows close soon forward."""
    p = ev.problem
    tt, dm = p.travel_time, p.distance
    w = ev.params.lateness_weight
    route = list(prefix)
    left = set(range(len(p.stops))) - set(route)
    t, pos = p.start_time, p.start_node
    for i in route:
        t = max(t + tt[pos][ev.node[i]], ev.ready[i]) + ev.service[i]
        pos = ev.node[i]
    while left:
        best_i, best_s = -1, float("inf")
        for i in left:
            a = t + tt[pos][ev.node[i]]
            start = max(a, ev.ready[i])
            slack = ev.due[i] - start
            score = (
                dm[pos][ev.node[i]] + (start - a) + (urgency * slack if slack >= 0 else -w * slack)
            )
            if score < best_s or (score == best_s and i < best_i):
                best_i, best_s = i, score
        i = best_i
        left.discard(i)
        route.append(i)
        t = max(t + tt[pos][ev.node[i]], ev.ready[i]) + ev.service[i]
        pos = ev.node[i]
    return route


def _near(ev: Evaluator, k: int) -> list[list[int]]:
    """The ``k`` stops nearest each stop (ties by position): a partial sort, not a full one."""
    dm = ev.problem.distance
    node = ev.node
    out = []
    for i in range(len(node)):
        row = dm[node[i]]
        d = [row[v] for v in node]
        d[i] = 2**62
        out.append(heapq.nsmallest(k, range(len(node)), key=d.__getitem__))
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
