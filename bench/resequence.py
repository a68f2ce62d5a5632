"""Benchmark of the vehicle re-sequencer: time and route cost at 50, 100 and 200 stops.

    .venv/bin/python -m bench.resequence [--quick] [--budget 0.2] [--long 30]

Sub-instances (single vehicle, windows soft, capacity ignored), from /work/shared/data:

* 50 stops: customers 1..50 of Solomon C101 C201 R101 R201 RC101 RC201;
* 100 stops: all customers of the same six Solomon instances;
* 200 stops: all customers of Homberger C1_2_1 C2_2_1 R1_2_1 R2_2_1 RC1_2_1 RC2_2_1.

The van leaves the depot at its ready time. What the instance gives a fleet is one van's
day here, so ready and due times are stretched by ``2 x BKS vehicles x stops / customers``
(``problem_from_instance(stretch=...)``); some lateness remains on most instances, which is
the point of soft windows. The warm start (the driver's current order) is the stops sorted
by ready time. Cost is the sequencer's objective (metres-equivalent at ``scale`` 100:
distance + 100 x seconds late), evaluated by the one common simulation.

The reference per sub-instance is the best of OR-Tools and PyVRP given ``--long`` seconds
each (30 s; 3 s with ``--quick``), or anything cheaper found in the short runs. Each
sequencer then runs ``--repeats`` times per sub-instance at the default budget, seeds
0.. ; p50/p95 are over all those calls. Prints a Markdown table; never fails on a time.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from dataclasses import replace
from pathlib import Path

from edge.sequencer import (
    GreedySequencer,
    OrToolsSequencer,
    PyVrpSequencer,
    Sequencer,
    SequencerParams,
    SequencingProblem,
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
    return cases


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.resequence", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="2 instances per size, 3 s references")
    ap.add_argument("--budget", type=float, default=0.2, help="time_limit_s of each call")
    ap.add_argument("--long", type=float, default=None, help="seconds of each reference run")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    long_s = args.long if args.long is not None else (3.0 if args.quick else 30.0)
    cases = build_cases(args.quick)
    base = SequencerParams(time_limit_s=args.budget)
    contenders: dict[str, Sequencer] = {
        "default (portfolio)": make_sequencer(),
        "greedy": GreedySequencer(),
        "ortools": OrToolsSequencer(),
        "pyvrp (soft, ours)": PyVrpSequencer(),
        "pyvrp (stock)": PyVrpSequencer(soft=False),
    }
    ref: dict[str, float] = {}
    ref_by: dict[str, str] = {}
    for n, name, prob in cases:
        key = f"{n}:{name}"
        for sname, s in (("ortools", OrToolsSequencer()), ("pyvrp", PyVrpSequencer())):
            r = s.solve(prob, replace(base, time_limit_s=long_s))
            if key not in ref or r.cost < ref[key]:
                ref[key], ref_by[key] = r.cost, sname
        print(f"reference {key}: {ref[key]:.0f} ({ref_by[key]}, {long_s:g} s)", flush=True)
    rows: dict[tuple[int, str], dict[str, list[float]]] = {}
    for n, name, prob in cases:
        key = f"{n}:{name}"
        for cname, seq in contenders.items():
            for seed in range(args.repeats):
                t = time.perf_counter()
                r = seq.solve(prob, replace(base, seed=seed))
                wall = time.perf_counter() - t
                ok = prob.is_valid_order(r.order)
                ref[key] = min(ref[key], r.cost)
                acc = rows.setdefault((n, cname), {"t": [], "cost": [], "bad": [], "key": []})
                acc["t"].append(wall)
                acc["cost"].append(r.cost)
                acc["bad"].append(0.0 if ok else 1.0)
                acc["key"].append(float(len(acc["key"])))
                acc.setdefault("keys", []).append(key)  # type: ignore[arg-type]
    print()
    print(f"budget {args.budget:g} s per call, references {long_s:g} s, {args.repeats} seeds")
    print()
    print("| stops | sequencer | p50 ms | p95 ms | max ms | mean gap % | worst gap % "
          "| late calls | no route |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (n, cname), acc in rows.items():
        keys: list[str] = acc["keys"]  # type: ignore[assignment]
        gaps = [100 * (c / ref[k] - 1) for c, k in zip(acc["cost"], keys, strict=True)]
        ms = [1000 * v for v in acc["t"]]
        late = sum(1 for v in acc["t"] if v > args.budget * 1.25)
        print(
            f"| {n} | {cname} | {pct(ms, 0.5):.0f} | {pct(ms, 0.95):.0f} | {max(ms):.0f} "
            f"| {statistics.fmean(gaps):.2f} | {max(gaps):.2f} | {late} | {int(sum(acc['bad']))} |"
        )
    print()
    print("references: " + ", ".join(f"{k} {ref_by[k]}" for k in ref_by))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
