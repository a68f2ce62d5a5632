"""Benchmark of the vehicle re-sequencer: time and route cost at 50, 100 and 200 stops.

    .venv/bin/python -m bench.resequence [--quick] [--budgets 0.1,0.2] [--long 30]

Two families of days, one van each, windows soft, capacity ignored.

*Solomon/Homberger* sub-instances, from data/ in the repository (`WAYLINE_DATA` overrides):

* 50 stops: customers 1..50 of Solomon C101 C201 R101 R201 RC101 RC201;
* 100 stops: all customers of the same six Solomon instances;
* 200 stops: all customers of Homberger C1_2_1 C2_2_1 R1_2_1 R2_2_1 RC1_2_1 RC2_2_1.

The van leaves the depot at its ready time. What the instance gives a fleet is one van's
day here, so ready and due times are stretched by ``2 x BKS vehicles x stops / customers``
(``problem_from_instance(stretch=...)``). Every stop is windowed, windows are narrow against
the service times, and a route that keeps them all exists on every one of these days: they
are hard time-window TSPs more than a van's day.

*Van days* (``van_day``), seeded: stops uniform on a square around the depot (8 km for 100
stops, its side shrinking with the square root of the stops), road
distance 1.3 x straight line driven at 8 m/s, 30-150 s of service, half the stops with a
2-hour window starting between 08:00 and 18:00, the other half free; the van leaves at 08:00
and its shift ends at 20:00. Two days per size (seeds 1, 2). The driver's current order is a
sweep (stops by angle around the depot): a plan with a sensible geometry that ignores the
windows.

*After an event* (``after_event``, 100 and 200 stops, ``--no-events`` to skip): each of
those days again, as the van's agent meets it. The van carries a good plan (the day's best
known route, from the references) and the day drifts before the first stop: it leaves late by
2% of the horizon and three windowed stops move their window later by 5% of it. This is the
re-sequencer's everyday job (repairing a good route after a trigger); the days above, from a
poor order, are its worst case (a plan that ignores the windows, or none).

On the Solomon days the warm start (the driver's current order) is the stops sorted by
ready time. Cost is the
sequencer's objective (metres-equivalent: distance + 100 x seconds late), evaluated by the
one common simulation.

The reference per day is the best of four long runs of ``--long`` seconds each (30 s; 3 s
with ``--quick``): OR-Tools and PyVRP (our judged model, no early stop) from the current
order, the same PyVRP from the greedy's route, and the default portfolio's compiled search
without its early stop; or anything cheaper found in the short runs. ``--refs FILE`` keeps
the references in a JSON file (``docs/results/resequence-refs.json`` is the one the
published figures use: the best order found per day, the problem's fingerprint, the long
runs made): a rerun simulates each
stored order again and makes only the long runs a day lacks, and anything cheaper found
later is written back, so a reference is the best route ever found for that day.
Each sequencer then runs ``--repeats`` times per day at each budget of ``--budgets``, seeds
0.. ; p50/p95 are over all those calls; a call that raises counts as "no route" and is left
out of the gaps. ``pyvrp (stock)`` is PyVRP as it comes (hard
windows, adaptive penalties, warm start, the whole budget), the peer; ``pyvrp (stock, no
warm start)`` is the same from ``pyvrp.solve``'s own start (a random order and one
exhaustive local search, which the budget does not bound). ``default (portfolio)`` spends
the budget or, where shorter, its aimed-for time for the size (``PortfolioSequencer.effort_s``:
0.088 s up to 100 stops, 0.352 s at 200), with two searches side by side
(``edge.sequencer.lsearch.THREADS``); ``default on one thread`` is the same with one
search, as on a single-CPU machine; ``portfolio, whole budget`` is the same as the default
without that aim; ``session 3 default`` is the default as session 3 left it, at its aim (0.08 s
up to 100 stops, 0.32 s at 200): the greedy's starts built in Python (25-35 ms at 200
stops), then the search from one start (both the driver's order and the warm start on a
wide-window day of up to 50 stops, half the time each), over this session's compiled
search (the same extension as the default: its faster pricing gives the same routes, its
kicks and seeding are this session's, so the row isolates what changed outside the
extension); ``portfolio with pyvrp (session 2)``
is the default before that (the greedy, then PyVRP) at session 3's aim; ``lsearch
(compiled, from the current order)`` is the compiled local search alone from the
driver's order (as a repair: its rule for the day), the whole budget. ``--days`` and
``--sequencers`` narrow an exploratory run to some days and rows. Gaps are against the
references as they stand at the end of the run (the short runs' routes included, so the
cheapest call of a day is at 0); the last column is the mean gap against the references
as they stood before this run's calls (negative where a call beat them). Prints a
Markdown table; never fails on a time.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path

from edge.sequencer import (
    GreedySequencer,
    OrToolsSequencer,
    PyVrpSequencer,
    Sequencer,
    SequencerError,
    SequenceResult,
    SequencerParams,
    SequencingProblem,
    Stop,
    build_result,
    lsearch,
    make_sequencer,
    problem_from_instance,
)
from edge.sequencer.lsearch import RULE_TIGHT, LocalSearchSequencer
from edge.sequencer.portfolio import LSEARCH_SHARE, PortfolioSequencer
from routing import read_instance
from tests.helpers import DATA_DIR

DATA = DATA_DIR
SOLOMON = ["C101", "C201", "R101", "R201", "RC101", "RC201"]
HOMBERGER = ["C1_2_1", "C2_2_1", "R1_2_1", "R2_2_1", "RC1_2_1", "RC2_2_1"]
QUICK_SOLOMON = ["C101", "R201"]
QUICK_HOMBERGER = ["R1_2_1", "RC2_2_1"]
STRETCH = 2.0  # x BKS vehicles x stops / customers: one van, a plausible day
VAN_DAY_SEEDS = (1, 2)
EVENT_SIZES = (100, 200)  # the sizes the latency goals name
SESSION3_TARGET_S = 0.08  # session 3's aimed-for answer time up to 100 stops


def _bks_vehicles() -> dict[str, int]:
    with (DATA / "bks.csv").open() as f:
        return {row["instance"]: int(row["vehicles"]) for row in csv.DictReader(f)}


def build_cases(quick: bool) -> list[tuple[int, str, SequencingProblem]]:
    bks = _bks_vehicles()
    cases = []
    sol = QUICK_SOLOMON if quick else SOLOMON
    hom = QUICK_HOMBERGER if quick else HOMBERGER
    plan = [(50, name, DATA / "solomon" / f"{name}.txt") for name in sol]
    plan += [(100, name, DATA / "solomon" / f"{name}.txt") for name in sol]
    plan += [(200, name, DATA / "homberger" / "200" / f"{name}.txt") for name in hom]
    for n, name, path in plan:
        inst = read_instance(path)
        customers = list(range(1, n + 1))
        stretch = max(1.0, STRETCH * bks[name] * n / inst.size)
        warm = sorted(customers, key=lambda c: (inst.customers[c].ready, c))
        prob = problem_from_instance(inst, customers, stretch=stretch, current_order=warm)
        cases.append((n, name, prob))
    for n in (50, 100, 200):
        for seed in VAN_DAY_SEEDS[:1] if quick else VAN_DAY_SEEDS:
            cases.append((n, f"van{seed}", van_day(n, seed)))
    return cases


def van_day(n: int, seed: int) -> SequencingProblem:
    """A synthetic van's day: see the module docstring."""
    rng = random.Random(seed)
    side = 8_000.0 * math.sqrt(100 / n)  # denser with more stops: about 2.5 h of driving
    pts = [(side / 2, side / 2)] + [(rng.uniform(0, side), rng.uniform(0, side)) for _ in range(n)]
    road = [[1.3 * math.dist(a, b) for b in pts] for a in pts]
    dist = tuple(tuple(round(v) for v in row) for row in road)
    tt = tuple(tuple(math.ceil(v / 8.0) for v in row) for row in road)
    day, end = 8 * 3600, 20 * 3600
    stops = []
    for k in range(1, n + 1):
        service = rng.randint(30, 150)
        if rng.random() < 0.5:
            ready = rng.randint(day, 18 * 3600)
            stops.append(Stop(str(k), k, ready=ready, due=ready + 7200, service=service))
        else:
            stops.append(Stop(str(k), k, ready=day, due=end, service=service))
    cx, cy = pts[0]
    angle = [math.atan2(y - cy, x - cx) for x, y in pts]
    warm = tuple(s.id for s in sorted(stops, key=lambda s: (angle[s.node], s.node)))
    return SequencingProblem(
        tt,
        dist,
        0,
        day,
        tuple(stops),
        0,
        shift_end=end,
        current_order=warm,
        coordinates=tuple((y, x) for x, y in pts),
    )


def fingerprint(prob: SequencingProblem) -> str:
    """A digest of everything that prices a route: a cached reference is for this problem."""
    h = hashlib.sha256()
    h.update(repr((prob.travel_time, prob.distance, prob.start_node, prob.start_time)).encode())
    h.update(repr((prob.stops, prob.end_node, prob.shift_end, prob.capacity)).encode())
    h.update(repr((prob.extra_load, prob.break_, prob.committed_next)).encode())
    return h.hexdigest()[:16]


REFERENCE_RUNS = ("ortools", "pyvrp", "pyvrp from the greedy", "wayline search")


def reference_run(run: str, prob: SequencingProblem, params: SequencerParams) -> SequenceResult:
    """One long run: OR-Tools or our judged PyVRP (no early stop) from the current order, the
    same PyVRP from the greedy's route (the portfolio's warm start), or the default
    portfolio's compiled search with no early stop, given ``params.time_limit_s``."""
    if run == "ortools":
        return OrToolsSequencer().solve(prob, params)
    if run == "pyvrp":
        return PyVrpSequencer(patience=2**62).solve(prob, params)
    if run == "pyvrp from the greedy":
        warm = GreedySequencer().solve(prob, replace(params, time_limit_s=0.2)).order
        return PyVrpSequencer(patience=2**62).solve(prob.reordered(warm), params)
    if run == "wayline search":
        return PortfolioSequencer(
            primary=LocalSearchSequencer(patience=-1, threads=1),
            fallback=GreedySequencer(polish=False, rebuild_current=False, compiled=True),
            target_s=None,
            solver_share=LSEARCH_SHARE,
        ).solve(prob, params)
    raise ValueError(f"unknown reference run {run!r}")


class References:
    """Best known cost per day: long runs, cached in ``path`` (if given) as orders.

    Each day's entry keeps the best order found, the problem's fingerprint and the long
    runs made for it (name and seconds), so that a rerun makes only the runs it lacks.
    """

    def __init__(self, path: Path | None, params: SequencerParams) -> None:
        self.path, self.params = path, params
        self.cost: dict[str, float] = {}
        self.by: dict[str, str] = {}
        self._stored: dict[str, dict] = {}
        if path is not None and path.exists():
            self._stored = json.loads(path.read_text())

    def load(
        self,
        key: str,
        prob: SequencingProblem,
        long_s: float,
        runs: tuple[str, ...] = REFERENCE_RUNS,
    ) -> list[str]:
        """Take the cached best route for ``key`` if it is for this problem (its cost is
        simulated again, never trusted) and return the long runs of ``runs`` still to make
        for it at ``long_s`` seconds: all of them when nothing valid is cached."""
        item = self._stored.get(key)
        if not item or item["fingerprint"] != fingerprint(prob):
            self._stored.pop(key, None)
            return list(runs)
        order = tuple(item["order"])
        if not prob.is_valid_order(order):
            self._stored.pop(key, None)
            return list(runs)
        self.cost[key] = build_result(prob, self.params, order, "ref", 0.0).cost
        self.by[key] = item["by"]
        made = item.get("runs")
        if made is None:  # cached before runs were recorded: OR-Tools and PyVRP made it
            made = {"ortools": item["long_s"], "pyvrp": item["long_s"]}
            item["runs"] = made
        return [r for r in runs if made.get(r, 0.0) < long_s]

    def order(self, key: str) -> tuple[str, ...]:
        """The best known order of a day whose reference is loaded or computed."""
        return tuple(self._stored[key]["order"])

    def offer(
        self, key: str, prob: SequencingProblem, result: SequenceResult, by: str, long_s: float
    ) -> None:
        """A route found for ``key``: by a long run of ``long_s`` seconds named ``by``
        (recorded as made), or by a short run (``long_s`` 0); kept if it is the cheapest."""
        old = self._stored.get(key, {})
        runs = dict(old.get("runs") or {})
        if long_s > 0:
            runs[by] = max(long_s, runs.get(by, 0.0))
        if key in self.cost and result.cost >= self.cost[key] - 1e-9:
            if old:
                old["runs"] = runs
            return
        self.cost[key], self.by[key] = result.cost, by
        self._stored[key] = {
            "fingerprint": fingerprint(prob),
            "runs": runs,
            "order": list(result.order),
            "cost": result.cost,
            "by": by,
        }

    def save(self) -> None:
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._stored, indent=0, sort_keys=True))
            tmp.replace(self.path)


def _references(
    refs: References,
    cases: list[tuple[int, str, SequencingProblem]],
    base: SequencerParams,
    long_s: float,
) -> None:
    for n, name, prob in cases:
        key = f"{n}:{name}"
        todo = refs.load(key, prob, long_s)
        for run in todo:
            r = reference_run(run, prob, replace(base, time_limit_s=long_s))
            refs.offer(key, prob, r, run, long_s)
            refs.save()
        how = f"{long_s:g} s, made {', '.join(todo)}" if todo else "cached"
        print(f"reference {key}: {refs.cost[key]:.0f} ({refs.by[key]}, {how})", flush=True)


def after_event(prob: SequencingProblem, plan: tuple[str, ...], seed: int) -> SequencingProblem:
    """The day as the van meets it: ``plan`` (the best known route of the day, what the cloud
    sent) is the current order, and then the day drifts before the first stop: the van
    leaves late by 2% of the day's horizon (observed delay) and three windowed stops get a
    window later by 5% of it (customers' new windows). The re-sequencer repairs a good
    route rather than building one from a poor order."""
    rng = random.Random(seed)
    last = prob.shift_end if prob.shift_end is not None else max(s.due for s in prob.stops)
    horizon = last - prob.start_time
    windowed = [k for k, s in enumerate(prob.stops) if s.due - s.ready < horizon // 2]
    moved = set(rng.sample(windowed, min(3, len(windowed))))
    shift = round(0.05 * horizon)
    stops = tuple(
        replace(s, ready=s.ready + shift, due=s.due + shift) if k in moved else s
        for k, s in enumerate(prob.stops)
    )
    return replace(
        prob,
        stops=stops,
        start_time=prob.start_time + round(0.02 * horizon),
        current_order=plan,
    )


class _Session3Search(LocalSearchSequencer):
    """The compiled search as session 3's default ran it: from the warm start, or on a day
    of wide windows with at most 50 stops from the driver's order and the warm start for
    half the time each, the cheaper kept."""

    def solve(
        self,
        problem: SequencingProblem,
        params: SequencerParams,
        *,
        repair: bool = True,
        driver_order: tuple[str, ...] | None = None,
    ) -> SequenceResult:
        t0 = time.perf_counter()
        deadline = t0 + params.time_limit_s - lsearch.RESERVE_S
        fixed = problem.committed_next is not None
        args = lsearch.compile_problem(problem, params)
        rule = lsearch.choose_rule(problem, repair)
        starts = [[problem.index[s] for s in problem.current_order]]
        if (
            driver_order is not None
            and not repair
            and tuple(driver_order) != problem.current_order
            and problem.is_valid_order(driver_order)
            and len(problem.stops) <= 50
            and rule != RULE_TIGHT
        ):
            starts.insert(0, [problem.index[s] for s in driver_order])
        best: tuple[list[int], float] | None = None
        for k, warm in enumerate(starts):
            left = (deadline - time.perf_counter()) / (len(starts) - k)
            route, cost, _ = lsearch.search(
                args, warm, fixed, params.seed, max(lsearch.MIN_SEARCH_S, left), rule=rule
            )
            if best is None or cost < best[1]:
                best = (route, cost)
        assert best is not None
        order = [problem.stops[i].id for i in best[0]]
        return build_result(problem, params, order, self.name, time.perf_counter() - t0)


def session3_default() -> PortfolioSequencer:
    """Session 3's default: the greedy's starts in Python, then the search from one start
    (two on a small day of wide windows)."""
    return PortfolioSequencer(
        primary=_Session3Search(),
        fallback=GreedySequencer(polish=False, rebuild_current=False),
        target_s=SESSION3_TARGET_S,
        solver_share=LSEARCH_SHARE,
    )


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.resequence", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="2 instances per size, 3 s references")
    ap.add_argument("--budgets", default="0.2", help="time_limit_s of the calls, comma-separated")
    ap.add_argument("--long", type=float, default=None, help="seconds of each reference run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--refs", type=Path, default=None, help="JSON file caching the references")
    ap.add_argument("--refs-only", action="store_true", help="compute the references and stop")
    ap.add_argument(
        "--no-events", dest="events", action="store_false", help="only the days from scratch"
    )
    ap.add_argument(
        "--days",
        default=None,
        help="only these days, comma-separated, as stops:name (50:van1, 200:C1_2_1); "
        "their after-event days come along; for exploratory runs",
    )
    ap.add_argument(
        "--sequencers", default=None, help="only these rows, comma-separated names of the table"
    )
    args = ap.parse_args(argv)
    long_s = args.long if args.long is not None else (3.0 if args.quick else 30.0)
    cases = build_cases(args.quick)
    if args.days:
        wanted = set(args.days.split(","))
        cases = [c for c in cases if f"{c[0]}:{c[1]}" in wanted]
        if not cases:
            ap.error(f"--days {args.days}: no such day")
    budgets = [float(b) for b in args.budgets.split(",")]
    base = SequencerParams(time_limit_s=max(budgets))
    contenders: dict[str, Sequencer] = {
        "default (portfolio)": make_sequencer(),
        "default on one thread": make_sequencer(threads=1),
        "portfolio, whole budget": make_sequencer(target_s=None),
        "session 3 default": session3_default(),
        "portfolio with pyvrp (session 2)": make_sequencer(
            target_s=SESSION3_TARGET_S, solver="pyvrp"
        ),
        "lsearch (compiled, from the current order)": LocalSearchSequencer(),
        "greedy": GreedySequencer(),
        "ortools": OrToolsSequencer(),
        "pyvrp (soft)": PyVrpSequencer(),
        "pyvrp (stock)": PyVrpSequencer(soft=False),
        "pyvrp (stock, no warm start)": PyVrpSequencer(soft=False, warm=False),
    }
    if args.sequencers:
        names = args.sequencers.split(",")
        unknown = [n for n in names if n not in contenders]
        if unknown:
            ap.error(f"--sequencers: unknown {', '.join(unknown)}")
        contenders = {n: contenders[n] for n in names}
    refs = References(args.refs, base)
    ref, ref_by = refs.cost, refs.by
    _references(refs, cases, base, long_s)
    if args.events:
        events = [
            (n, f"{name}+event", after_event(prob, refs.order(f"{n}:{name}"), seed=n))
            for n, name, prob in cases
            if n in EVENT_SIZES
        ]
        _references(refs, events, base, long_s)
        cases += events
    if args.refs_only:
        return 0
    start_ref = dict(ref)  # the references before this run's short runs offer theirs
    rows: dict[tuple[str, int, float, str], dict[str, list]] = {}
    for n, name, prob in cases:
        key = f"{n}:{name}"
        family = "van day" if name.startswith("van") else "Solomon"
        if name.endswith("+event"):
            family += ", after an event"
        for budget in budgets:
            for cname, seq in contenders.items():
                for seed in range(args.repeats):
                    acc = rows.setdefault((family, n, budget, cname), {})
                    t = time.perf_counter()
                    try:
                        r = seq.solve(prob, replace(base, time_limit_s=budget, seed=seed))
                    except SequencerError:  # a bare solver may fail; the portfolio may not
                        acc.setdefault("t", []).append(time.perf_counter() - t)
                        acc.setdefault("bad", []).append(True)
                        continue
                    acc.setdefault("t", []).append(time.perf_counter() - t)
                    acc.setdefault("bad", []).append(not prob.is_valid_order(r.order))
                    refs.offer(key, prob, r, f"short run: {cname}", 0.0)
                    acc.setdefault("cost", []).append(r.cost)
                    acc.setdefault("keys", []).append(key)
    refs.save()
    print()
    print(f"budgets {args.budgets} s per call, references {long_s:g} s, {args.repeats} seeds")
    print()
    print(
        "| days | stops | budget s | sequencer | p50 ms | p95 ms | max ms | mean gap % "
        "| worst gap % | late calls | no route | mean gap % to refs at start |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (family, n, budget, cname), acc in sorted(rows.items(), key=lambda kv: kv[0][:3]):
        pairs = list(zip(acc.get("cost", []), acc.get("keys", []), strict=True))
        gaps = [100 * (c / ref[k] - 1) for c, k in pairs] or [float("nan")]
        gaps0 = [100 * (c / start_ref[k] - 1) for c, k in pairs] or [float("nan")]
        ms = [1000 * v for v in acc["t"]]
        late = sum(1 for v in acc["t"] if v > budget * 1.25)
        print(
            f"| {family} | {n} | {budget:g} | {cname} | {pct(ms, 0.5):.0f} | {pct(ms, 0.95):.0f} "
            f"| {max(ms):.0f} | {statistics.fmean(gaps):.2f} | {max(gaps):.2f} | {late} "
            f"| {sum(acc['bad'])} | {statistics.fmean(gaps0):.2f} |"
        )
    print()
    print("references: " + ", ".join(f"{k} {ref_by[k]}" for k in ref_by))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
