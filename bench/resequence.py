"""Benchmark of the vehicle re-sequencer: time and route cost at 50, 100 and 200 stops.

    .venv/bin/python -m bench.resequence [--quick] [--budgets 0.1,0.2] [--long 30]

Two families of days, one van each, windows soft, capacity ignored.

*Solomon/Homberger* sub-instances, from /work/shared/data:

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

On the Solomon days the warm start (the driver's current order) is the stops sorted by
ready time. Cost is the
sequencer's objective (metres-equivalent: distance + 100 x seconds late), evaluated by the
one common simulation.

The reference per day is the best of OR-Tools and PyVRP (our judged model, no early stop)
given ``--long`` seconds each (30 s; 3 s with ``--quick``), or anything cheaper found in
the short runs.
Each sequencer then runs ``--repeats`` times per day at each budget of ``--budgets``, seeds
0.. ; p50/p95 are over all those calls; a call that raises counts as "no route" and is left
out of the gaps. ``pyvrp (stock)`` is PyVRP as it comes (hard
windows, adaptive penalties, warm start, the whole budget), the peer. Prints a Markdown
table; never fails on a time.
"""

from __future__ import annotations

import argparse
import csv
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
    SequencerParams,
    SequencingProblem,
    Stop,
    make_sequencer,
    problem_from_instance,
)
from routing import read_instance

DATA = Path("/work/shared/data")
SOLOMON = ["C101", "C201", "R101", "R201", "RC101", "RC201"]
HOMBERGER = ["C1_2_1", "C2_2_1", "R1_2_1", "R2_2_1", "RC1_2_1", "RC2_2_1"]
QUICK_SOLOMON = ["C101", "R201"]
QUICK_HOMBERGER = ["R1_2_1", "RC2_2_1"]
STRETCH = 2.0  # x BKS vehicles x stops / customers: one van, a plausible day
VAN_DAY_SEEDS = (1, 2)


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


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.resequence", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="2 instances per size, 3 s references")
    ap.add_argument("--budgets", default="0.2", help="time_limit_s of the calls, comma-separated")
    ap.add_argument("--long", type=float, default=None, help="seconds of each reference run")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    long_s = args.long if args.long is not None else (3.0 if args.quick else 30.0)
    cases = build_cases(args.quick)
    budgets = [float(b) for b in args.budgets.split(",")]
    base = SequencerParams(time_limit_s=max(budgets))
    contenders: dict[str, Sequencer] = {
        "default (portfolio)": make_sequencer(),
        "greedy": GreedySequencer(),
        "ortools": OrToolsSequencer(),
        "pyvrp (soft)": PyVrpSequencer(),
        "pyvrp (stock)": PyVrpSequencer(soft=False),
    }
    ref: dict[str, float] = {}
    ref_by: dict[str, str] = {}
    for n, name, prob in cases:
        key = f"{n}:{name}"
        for sname, s in (
            ("ortools", OrToolsSequencer()),
            ("pyvrp", PyVrpSequencer(patience=2**62)),
        ):
            r = s.solve(prob, replace(base, time_limit_s=long_s))
            if key not in ref or r.cost < ref[key]:
                ref[key], ref_by[key] = r.cost, sname
        print(f"reference {key}: {ref[key]:.0f} ({ref_by[key]}, {long_s:g} s)", flush=True)
    rows: dict[tuple[str, int, float, str], dict[str, list]] = {}
    for n, name, prob in cases:
        key = f"{n}:{name}"
        family = "van day" if name.startswith("van") else "Solomon"
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
                    ref[key] = min(ref[key], r.cost)
                    acc.setdefault("cost", []).append(r.cost)
                    acc.setdefault("keys", []).append(key)
    print()
    print(f"budgets {args.budgets} s per call, references {long_s:g} s, {args.repeats} seeds")
    print()
    print(
        "| days | stops | budget s | sequencer | p50 ms | p95 ms | max ms | mean gap % "
        "| worst gap % | late calls | no route |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (family, n, budget, cname), acc in sorted(rows.items(), key=lambda kv: kv[0][:3]):
        pairs = zip(acc.get("cost", []), acc.get("keys", []), strict=True)
        gaps = [100 * (c / ref[k] - 1) for c, k in pairs] or [float("nan")]
        ms = [1000 * v for v in acc["t"]]
        late = sum(1 for v in acc["t"] if v > budget * 1.25)
        print(
            f"| {family} | {n} | {budget:g} | {cname} | {pct(ms, 0.5):.0f} | {pct(ms, 0.95):.0f} "
            f"| {max(ms):.0f} | {statistics.fmean(gaps):.2f} | {max(gaps):.2f} | {late} "
            f"| {sum(acc['bad'])} |"
        )
    print()
    print("references: " + ", ".join(f"{k} {ref_by[k]}" for k in ref_by))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
