"""Benchmark of the cloud planner against its peers on Solomon and Homberger VRPTW.

    .venv/bin/python -m bench.plan [--seconds 10 60] [--instances R101 C1_10_1 ...]
                                   [--solvers wayline ortools pyvrp vroom vroom-t] [--quick]
                                   [--csv bench-plan.csv] [--no-day] [--day-only]
    .venv/bin/python -m bench.plan --report a.csv b.csv    # tables of merged runs

Peers run one after the other for one instance (never two solvers at once); every result
is re-checked in double precision with ``routing.check_route`` and appended to the CSV at
once, so a partial run is usable (``--resume`` skips rows already in the CSV). Then the
table, totals against ``bks.csv`` and head to head, and the synthetic 1,000-order day.
Benchmarks never fail on a time: they print figures.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path

from bench.plan_peers import PEERS, UNBUDGETED, PeerRun
from cloud.planning import PlanningParams, plan
from routing import Instance, check_route, read_instance
from tests.helpers import DATA_DIR

DATA = DATA_DIR
QUICK = ["C101", "C201", "R101", "R201", "RC101", "RC201"]
FIELDS = ["instance", "seconds", "solver", "vehicles", "distance", "feasible", "took", "note"]


def instance_path(name: str) -> Path:
    if "_" in name:
        size = int(name.split("_")[1]) * 100
        return DATA / "homberger" / str(size) / f"{name}.txt"
    return DATA / "solomon" / f"{name}.txt"


def all_instances() -> list[str]:
    solomon = sorted(p.stem for p in (DATA / "solomon").glob("*.txt"))
    homberger = [
        p.stem for d in ("200", "1000") for p in sorted((DATA / "homberger" / d).glob("*.txt"))
    ]
    return solomon + homberger


def load_bks() -> dict[str, tuple[int, float]]:
    with (DATA / "bks.csv").open() as f:
        rows = list(csv.reader(f))
    header = [h.strip().lower() for h in rows[0]]
    out = {}
    for r in rows[1:]:
        rec = dict(zip(header, r, strict=False))
        name = next(v for k, v in rec.items() if "inst" in k or k == "name")
        veh = next(v for k, v in rec.items() if "veh" in k)
        dist = next(v for k, v in rec.items() if "cost" in k or "dist" in k)
        out[name.strip().upper()] = (int(float(veh)), float(dist))
    return out


def recheck(inst: Instance, run: PeerRun) -> tuple[int, float, bool]:
    seen: Counter[int] = Counter(c for r in run.routes for c in r)
    ok = bool(run.routes) and set(seen) == set(range(1, inst.size + 1)) and max(seen.values()) == 1
    dist = 0.0
    for r in run.routes:
        chk = check_route(inst, r)
        dist += chk.distance
        ok = ok and chk.late_stops == 0 and not chk.returns_late and chk.load <= inst.capacity
    ok = ok and len(run.routes) <= inst.vehicles
    return len(run.routes), dist, ok


def run_all(args: argparse.Namespace) -> list[dict[str, str]]:
    path = Path(args.csv)
    done: set[tuple[str, str, str]] = set()
    rows: list[dict[str, str]] = []
    if args.resume and path.exists():
        with path.open() as f:
            rows = list(csv.DictReader(f))
        done = {(r["instance"], r["seconds"], r["solver"]) for r in rows}
    # A run stopped before its first row leaves an empty file: it starts afresh.
    new = not args.resume or not path.exists() or path.stat().st_size == 0
    with path.open("w" if new else "a", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        if new:
            writer.writeheader()
            f.flush()
        for name in args.instances:
            inst = read_instance(instance_path(name))
            for seconds in args.seconds:
                for solver in args.solvers:
                    if solver in UNBUDGETED and seconds != args.seconds[0]:
                        continue  # no time budget: one run is enough
                    key = (name, str(seconds), solver)
                    if key in done:
                        continue
                    try:
                        run = PEERS[solver](inst, float(seconds), args.seed)
                    except Exception as exc:  # a peer's crash is a figure, not the end
                        run = PeerRun([], 0.0, f"error: {exc}")
                    k, d, ok = recheck(inst, run)
                    row = {
                        "instance": name,
                        "seconds": str(seconds),
                        "solver": solver,
                        "vehicles": str(k),
                        "distance": f"{d:.2f}",
                        "feasible": str(ok),
                        "took": f"{run.seconds:.1f}",
                        "note": run.note,
                    }
                    writer.writerow(row)
                    f.flush()
                    rows.append(row)
                    print(" ".join(f"{v:>8}" for v in row.values()), flush=True)
    return rows


def report(rows: list[dict[str, str]], seconds: list[int]) -> None:
    bks = load_bks()
    res: dict[tuple[str, str, str], tuple[int, float, bool]] = {
        (r["instance"], r["seconds"], r["solver"]): (
            int(r["vehicles"]),
            float(r["distance"]),
            r["feasible"] == "True",
        )
        for r in rows
    }
    solvers = [s for s in PEERS if any(k[2] == s for k in res)]
    names = list(dict.fromkeys(r["instance"] for r in rows))
    vroom_s = str(seconds[0])
    for sec in map(str, seconds):
        print(f"\n== {sec} s (VROOM: one run, no budget) ==")
        print(f"{'instance':<9} {'BKS':>12} " + " ".join(f"{s:>16}" for s in solvers))
        totals: dict[str, Counter[str]] = {s: Counter() for s in solvers}
        for name in names:
            b = bks.get(name.upper())
            cells = []
            for s in solvers:
                got = res.get((name, vroom_s if s in UNBUDGETED else sec, s))
                if got is None:
                    cells.append(f"{'-':>16}")
                    continue
                k, d, ok = got
                if not ok:
                    cells.append(f"{'infeasible':>16}")
                    totals[s]["infeasible"] += 1
                    continue
                cells.append(f"{k:>3} {d:>12.2f}")
                if b:
                    totals[s]["runs"] += 1
                    totals[s]["bks_vehicles"] += k <= b[0]
                    totals[s]["extra_vehicles"] += max(0, k - b[0])
                    if k == b[0]:
                        totals[s]["gap_sum_x100"] += round(10_000 * (d / b[1] - 1))
                        totals[s]["gap_n"] += 1
            bcell = f"{b[0]:>3} {b[1]:>8.2f}" if b else "-"
            print(f"{name:<9} {bcell:>12} " + " ".join(cells))
        for s in solvers:
            t = totals[s]
            gap = t["gap_sum_x100"] / 100 / t["gap_n"] if t["gap_n"] else float("nan")
            print(
                f"{s:>8}: runs {t['runs']}, BKS vehicles {t['bks_vehicles']}/{t['runs']}, "
                f"extra vehicles {t['extra_vehicles']}, mean gap on BKS fleet {gap:.2f}% "
                f"({t['gap_n']}), infeasible {t['infeasible']}"
            )
        for peer in [s for s in solvers if s != "wayline"]:
            psec = vroom_s if peer in UNBUDGETED else sec
            h: Counter[str] = Counter()
            lost: list[str] = []
            for name in names:
                a = res.get((name, sec, "wayline"))
                p = res.get((name, psec, peer))
                if a and p:
                    v = _versus(a, p)
                    h[v] += 1
                    if v == "loss":
                        lost.append(f"{name} {a[0]}/{a[1]:.2f} vs {p[0]}/{p[1]:.2f}")
            print(f"wayline vs {peer}: wins {h['win']}, losses {h['loss']}, ties {h['tie']}")
            if lost:
                print("  lost: " + ", ".join(lost))
            both = _gaps_where_both_reach_bks(res, names, bks, (sec, "wayline"), (psec, peer))
            if both:
                mine, theirs = (sum(g) / len(both) for g in zip(*both, strict=True))
                print(
                    f"  on the {len(both)} where both reach the BKS fleet, mean gap: "
                    f"wayline {mine:.2f}%, {peer} {theirs:.2f}%"
                )


def _gaps_where_both_reach_bks(
    res: dict[tuple[str, str, str], tuple[int, float, bool]],
    names: list[str],
    bks: dict[str, tuple[int, float]],
    a: tuple[str, str],
    b: tuple[str, str],
) -> list[tuple[float, float]]:
    """Per instance where runs ``a`` and ``b`` (seconds, solver) both reach the BKS fleet
    feasibly: their distance gaps to the BKS in %. A like-for-like mean of quality."""
    out = []
    for name in names:
        best = bks.get(name.upper())
        ra, rb = res.get((name, *a)), res.get((name, *b))
        if best and ra and rb and all(r[2] and r[0] <= best[0] for r in (ra, rb)):
            out.append((100 * (ra[1] / best[1] - 1), 100 * (rb[1] / best[1] - 1)))
    return out


def _versus(a: tuple[int, float, bool], b: tuple[int, float, bool]) -> str:
    ka = (not a[2], a[0], round(a[1], 2))
    kb = (not b[2], b[0], round(b[1], 2))
    return "tie" if ka == kb else ("win" if ka < kb else "loss")


def day(seconds: float) -> None:
    from bench.plan_day import synthetic_day

    t0 = time.perf_counter()
    problem = synthetic_day()
    built = time.perf_counter() - t0
    result = plan(problem, PlanningParams(time_limit_s=seconds, seed=0))
    took = time.perf_counter() - t0
    kinds = Counter(str(r.kind) for r in result.routes)
    reasons = Counter(str(u.reason) for u in result.unplanned)
    print(f"\n== synthetic day: {len(problem.orders)} orders, {len(problem.vehicles)} vehicles ==")
    print(
        f"time limit {seconds} s; took {took:.1f} s (problem built in {built:.1f} s); "
        f"status {result.status} by {result.solver}; routes {dict(kinds)}; "
        f"unplanned {dict(reasons)}; cost {result.cost.total} ({result.cost})"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.plan", description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, nargs="+", default=[10, 60])
    ap.add_argument("--instances", nargs="+")
    ap.add_argument(
        "--solvers", nargs="+", choices=list(PEERS), default=[p for p in PEERS if p != "vroom-t"]
    )
    ap.add_argument("--quick", action="store_true", help=f"only {' '.join(QUICK)} at 10 s")
    ap.add_argument("--csv", default="bench-plan.csv")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-day", action="store_true")
    ap.add_argument("--day-only", action="store_true")
    ap.add_argument("--day-seconds", type=float, default=25.0)
    ap.add_argument(
        "--report", nargs="+", metavar="CSV", help="only the tables, from these CSVs merged"
    )
    args = ap.parse_args(argv)
    if args.report:
        merged: list[dict[str, str]] = []
        for name in args.report:
            with open(name, newline="") as f:
                merged.extend(csv.DictReader(f))
        seconds = sorted({int(r["seconds"]) for r in merged})
        report(merged, seconds)
        return 0
    if args.quick:
        args.instances = args.instances or QUICK
        args.seconds = [10]
    args.instances = [i.upper() for i in (args.instances or all_instances())]
    if not args.day_only:
        rows = run_all(args)
        report(rows, args.seconds)
    if not args.no_day:
        day(args.day_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
