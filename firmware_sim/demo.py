"""``wayline demo``: a whole disrupted delivery day on this machine, with a report.

One command: it starts Mosquitto from ``deploy/`` (or uses ``--broker``), the cloud
coordinator with its API, the depot's sorter agent and one gateway process per own van
(the real vehicle agent on simulated hardware, each with its own store), then plays the
scenario at ``--speed`` (see :mod:`firmware_sim.day`). A progress line with live counts
goes to stderr (``--headless``: plain lines instead). At the end it prints the figures
against both baselines and, with ``--report DIR``, writes ``summary.json``, PNG plots and
``report.html``. Exit status 1 if an event was lost or applied twice.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario", default="disrupted", help="calm, disrupted or a TOML file (default disrupted)"
    )
    parser.add_argument("--seed", type=int, help="seed of the world (default: the scenario's)")
    parser.add_argument(
        "--vehicles", type=int, help="own vans on gateways (default: the scenario's)"
    )
    parser.add_argument(
        "--speed", type=float, default=150.0, help="simulated seconds per second (default 150)"
    )
    parser.add_argument(
        "--broker", help="use this MQTT broker (mqtt://host:port) instead of starting one"
    )
    parser.add_argument("--headless", action="store_true", help="progress as plain lines, no bar")
    parser.add_argument(
        "--report", type=Path, help="write summary.json, plots and report.html here"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep stores and logs here (default: temporary)"
    )


class _Progress:
    def __init__(self, headless: bool) -> None:
        self.headless = headless
        self.last_line = -1.0

    def __call__(self, c: dict[str, Any]) -> None:
        t = int(c["t"])
        clock = f"{t // 3600:02d}:{t % 3600 // 60:02d}"
        text = (
            f"{clock} orders {c['released']}/{c['orders']} delivered {c['delivered']} "
            f"failed {c['failed']} events {c['events']} offline {c['offline']} cuts {c['cuts']}"
        )
        if self.headless:
            if c["t"] - self.last_line >= 1800:
                self.last_line = c["t"]
                print(text, file=sys.stderr, flush=True)
            return
        n = int(c["frac"] * 30)
        print(f"\r[{'#' * n}{'.' * (30 - n)}] {text}   ", end="", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from firmware_sim.day import DayOptions, run_day, summarize, write_report

    if not 1 <= args.speed <= 2000:
        raise ValueError("--speed must be 1..2000")
    opts = DayOptions(args.scenario, args.seed, args.vehicles, args.speed, args.broker)
    with tempfile.TemporaryDirectory(prefix="wayline-demo-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        progress = _Progress(args.headless)
        result, _ = run_day(opts, work, progress, lambda line: print(line, flush=True))
        if not args.headless:
            print(file=sys.stderr)
        summary, extra = summarize(opts, result, work)
        if args.report:
            write_report(args.report, summary, result.world, extra["strategies"], extra["vans"],
                         extra["exceptions"], extra["notices"])  # fmt: skip
    _print(summary, args.report)
    return 0 if summary["events_lost"] == 0 and summary["events_duplicated"] == 0 else 1


def _print(s: dict[str, Any], report: Path | None) -> None:
    bs, bz = s["baseline_static"], s["baseline_zones"]
    print()
    print(f"{'':22}{'Wayline':>10}{'static':>10}{'zones':>10}")
    for k in ("orders", "delivered", "failed", "on_time_rate", "cost", "cost_per_delivered", "km"):
        print(f"{k:22}{s[k]!s:>10}{bs[k]!s:>10}{bz[k]!s:>10}")
    print(
        f"events sent/applied   {s['events_sent']}/{s['events_applied']}  "
        f"lost / twice {s['events_lost']} / {s['events_duplicated']}"
    )
    print(
        f"exceptions            {s['exceptions_total']} ({s['exceptions_auto_resolved']} "
        f"by policy, {s['exceptions_escalated']} escalated)"
    )
    print(f"notifications         {s['notifications_sent']}")
    print(
        f"offline               {s['disconnections']} disconnections, "
        f"longest {s['max_offline_s']} s; power cuts {s['power_cuts']}"
    )
    for g in s["goals"]:
        print(f"goal {'met    ' if g['met'] else 'NOT met'} {g['goal']} ({g['value']})")
    if report:
        print(f"report                {report / 'report.html'}")
