"""The day's report: ``summary.json``, plots as PNG (matplotlib, Agg) and ``report.html``.

Plots: Wayline's routes on a map (from coordinates, the dead zone and the jam drawn as
circles), the on-time rate through the day against both baselines, the exceptions
timeline, customer notifications per hour, the vans' offline periods and power cuts, and
the ETA error learned with and without hygiene.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Ellipse

from firmware_sim.day.outcomes import VehicleDay, window_of
from firmware_sim.world import World

__all__ = ["offline_periods", "write_report"]

_CSS = (
    "body{font:14px sans-serif;max-width:960px;margin:2em auto}"
    "td,th{padding:2px 10px;text-align:left}img{max-width:100%}"
)


def offline_periods(samples: list[tuple[float, bool]]) -> list[tuple[float, float]]:
    out, start = [], None
    for t, online in samples:
        if not online and start is None:
            start = t
        elif online and start is not None:
            out.append((start, t))
            start = None
    if start is not None and samples:
        out.append((start, samples[-1][0]))
    return out


def _hours(ax: Any, world: World) -> None:
    s = world.scenario
    ticks = list(range(s.start, s.end + 3601, 3600))
    ax.set_xticks(ticks, [f"{t // 3600:02d}:00" for t in ticks], fontsize=7)


def write_report(
    out: Path,
    summary: dict[str, Any],
    world: World,
    strategies: dict[str, list[VehicleDay]],
    vans: dict[str, Any],
    exceptions: list[dict[str, Any]],
    notices: dict[str, Any],
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    pngs = [
        _routes(out, world, strategies["wayline"]),
        _on_time(out, world, strategies),
        _exceptions(out, world, exceptions),
        _notifications(out, world, notices),
        _offline(out, world, vans),
        _hygiene(out, summary["learning"]),
    ]
    _html(out, summary, pngs)
    return pngs


def _routes(out: Path, world: World, days: list[VehicleDay]) -> Path:
    orders = {o.order_id: o for o in world.orders}
    fig, ax = plt.subplots(figsize=(8, 7))
    for d in days:
        pts = [d.vehicle.depot] + [
            (orders[v.order_id].lat, orders[v.order_id].lon) for v in d.visits
        ]
        if len(pts) > 1:
            ax.plot([p[1] for p in pts], [p[0] for p in pts], "-o", ms=2.5, lw=1,
                    label=f"{d.vehicle.vehicle_id} ({len(d.visits)})")  # fmt: skip
    for o in world.orders:
        if not any(v.order_id == o.order_id for d in days for v in d.visits):
            ax.plot(o.lon, o.lat, "x", color="grey", ms=4)
    for e in world.scenario.events:
        area = world.area_of(e)
        if area is not None:
            color = "red" if e.kind == "jam" else "purple"
            height = 2 * area[2] / 111.32
            width = height / math.cos(math.radians(area[0]))
            ax.add_patch(Ellipse((area[1], area[0]), width, height, color=color, alpha=0.12))
            ax.annotate(e.kind.replace("_", " "), (area[1], area[0]), color=color, fontsize=8)
    depot = world.scenario.depots[0]
    ax.plot(depot.lon, depot.lat, "k*", ms=14, label="depot")
    ax.set_title("Wayline's day: routes driven (grey x: not served)")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.legend(fontsize=6, ncol=2, loc="best")
    return _save(fig, out / "routes.png")


def _on_time(out: Path, world: World, strategies: dict[str, list[VehicleDay]]) -> Path:
    s = world.scenario
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, days in strategies.items():
        served = {v.order_id: v for d in days for v in d.visits if v.ok}
        xs, ys = [], []
        for t in range(s.start + 3600, s.end + 3601, 900):
            due = [o for o in world.orders if window_of(o)[1] <= t]
            if not due:
                continue
            ok = sum(
                1
                for o in due
                if o.order_id in served
                and window_of(o)[0] <= served[o.order_id].start <= window_of(o)[1]
            )
            xs.append(t)
            ys.append(ok / len(due))
        ax.plot(xs, ys, label=name)
    _hours(ax, world)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("on time, of orders due so far")
    ax.set_title("On-time rate through the day")
    ax.legend()
    return _save(fig, out / "on_time.png")


def _exceptions(out: Path, world: World, items: list[dict[str, Any]]) -> Path:
    fig, ax = plt.subplots(figsize=(8, 3.5))
    cats = sorted({i["category"] for i in items}) or ["none"]
    for i in items:
        y = cats.index(i["category"])
        ax.plot(
            i["at_s"], y, "o" if i["auto"] else "X", color="tab:green" if i["auto"] else "tab:red"
        )
    for e in world.scenario.events:
        ax.axvspan(e.at, e.until, alpha=0.06, color="grey")
        ax.annotate(e.kind.replace("_", " "), (e.at, len(cats) - 0.5), fontsize=6, rotation=20)
    ax.set_yticks(range(len(cats)), cats)
    _hours(ax, world)
    ax.set_title("Exceptions (green: resolved by policy, red X: escalated); shaded: disruptions")
    return _save(fig, out / "exceptions.png")


def _notifications(out: Path, world: World, notices: dict[str, Any]) -> Path:
    d0 = world.scenario.day_start_epoch
    times = [ms / 1000 - d0 for ms in notices["notice_times_ms"]]
    fig, ax = plt.subplots(figsize=(8, 3))
    bins = list(range(world.scenario.start - 3600, world.scenario.end + 3601, 1800))
    ax.hist([times, notices["failed_times_s"]], bins=bins, stacked=True,
            label=["ETA window given / moved", "moved to another day"])  # fmt: skip
    _hours(ax, world)
    ax.set_title(f"Customer notifications ({notices['notifications_sent']} in all)")
    ax.legend(fontsize=7)
    return _save(fig, out / "notifications.png")


def _offline(out: Path, world: World, vans: dict[str, Any]) -> Path:
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.45 * max(1, len(vans))))
    for k, (_vid, v) in enumerate(sorted(vans.items())):
        for a, b in v["offline"]:
            ax.broken_barh([(a, max(b - a, 30))], (k - 0.35, 0.7), color="tab:orange")
        for c in v["cuts"]:
            ax.plot(c, k, "k|", ms=14)
    ax.set_yticks(range(len(vans)), sorted(vans))
    _hours(ax, world)
    ax.set_title("Vans offline (orange) and power cuts (|)")
    return _save(fig, out / "offline.png")


def _hygiene(out: Path, learning: dict[str, Any]) -> Path:
    fig, ax = plt.subplots(figsize=(5, 3))
    vals = [learning["with_hygiene"]["mae_s"], learning["without_hygiene"]["mae_s"]]
    ax.bar(["with hygiene", "without"], vals, color=["tab:green", "tab:red"])
    ax.set_ylabel("mean absolute ETA error, s")
    ax.set_title("Learned ETAs on an ordinary day")
    return _save(fig, out / "eta_learning.png")


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _html(out: Path, s: dict[str, Any], pngs: list[Path]) -> None:
    keys = ["orders", "delivered", "failed", "on_time_rate", "cost", "cost_per_delivered", "km"]
    rows = "".join(
        f"<tr><th>{k}</th><td>{s[k]}</td><td>{s['baseline_static'][k]}</td><td>{s['baseline_zones'][k]}</td></tr>"
        for k in keys
    )
    goals = "".join(
        f"<li>{html.escape(g['goal'])}: <b>{'met' if g['met'] else 'NOT met'}</b> "
        f"({html.escape(str(g['value']))})</li>"
        for g in s["goals"]
    )
    sync = "".join(
        f"<tr><th>{k}</th><td>{s[k]}</td></tr>"
        for k in ("events_sent", "events_applied", "events_lost", "events_duplicated",
                  "exceptions_total", "exceptions_auto_resolved", "exceptions_escalated",
                  "notifications_sent", "disconnections", "max_offline_s", "power_cuts")
    )  # fmt: skip
    imgs = "".join(f'<figure><img src="{p.name}" alt="{p.stem}"></figure>' for p in pngs)
    learn = s["learning"]
    (out / "report.html").write_text(f"""<!doctype html><meta charset="utf-8">
<title>Wayline demo day: {html.escape(s["scenario"])}</title>
<style>{_CSS}</style>
<h1>Wayline demo day — {html.escape(s["scenario"])} (seed {s["seed"]})</h1>
<p>{s["vehicles"]} own vans on gateways, speed x{s["speed"]}, wall time {s["wall_s"]} s.</p>
<h2>Goals</h2><ul>{goals}</ul>
<h2>Wayline against the baselines</h2>
<table><tr><th></th><th>Wayline</th><th>static morning plan</th><th>fixed zones</th></tr>
{rows}</table>
<h2>Sync, exceptions, notifications</h2><table>{sync}</table>
<h2>Learning with hygiene</h2><p>ETA error on an ordinary day:
{learn["with_hygiene"]["mae_s"]} s with hygiene, {learn["without_hygiene"]["mae_s"]} s without
({learn["history_days"]} disrupted days of history).</p>
{imgs}
""")
