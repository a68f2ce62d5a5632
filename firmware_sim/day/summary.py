"""The day's figures in one dictionary: Wayline, both baselines, sync, exceptions, goals."""

from __future__ import annotations

from typing import Any

from firmware_sim.day.baselines import static_baseline, zones_baseline
from firmware_sim.day.ledger import events_ledger, exceptions_ledger, notifications
from firmware_sim.day.outcomes import figures
from firmware_sim.day.report import offline_periods
from firmware_sim.day.runner import DayOptions, DayResult
from firmware_sim.world import World, hygiene_report, load_scenario, simulate_work

__all__ = ["HISTORY_DAYS", "summarize"]

HISTORY_DAYS = 5


def learning(world: World) -> dict[str, Any]:
    """ETA error on a calm day of this city, learned from disrupted days before it."""
    sc = world.scenario
    history = [simulate_work(World(sc.with_seed(sc.seed + 1000 + k))) for k in range(HISTORY_DAYS)]
    calm = load_scenario("calm", seed=sc.seed + 2000)
    return hygiene_report(history, simulate_work(World(calm)))


def summarize(opts: DayOptions, r: DayResult, work: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    world = r.world
    own = figures(world, r.wayline)
    static, static_days = static_baseline(world, r.morning)
    zones, zone_days = zones_baseline(world)
    devices = [d.vehicle.vehicle_id for d in r.drivers] + [world.scenario.depots[0].depot_id]
    ev = events_ledger(work, devices, work / "cloud.db")
    exc = exceptions_ledger(work / "cloud.db", world.scenario.day_start_epoch * 1000)
    notes = notifications(work / "cloud.db", world.scenario.day_start_epoch * 1000)
    vans = {
        d.vehicle.vehicle_id: {"offline": offline_periods(d.log.online), "cuts": d.log.cuts}
        for d in r.drivers
    }
    offline = [b - a for v in vans.values() for a, b in v["offline"]]
    s: dict[str, Any] = {
        "scenario": world.scenario.name,
        "seed": world.seed,
        "speed": opts.speed,
        "vehicles": len(r.drivers),
        "wall_s": round(r.wall_s, 1),
        **own,
        "baseline_static": static,
        "baseline_zones": zones,
        **{k: v for k, v in ev.items()},
        **{k: v for k, v in exc.items() if k != "timeline"},
        **{k: v for k, v in notes.items() if not k.endswith("_ms") and not k.endswith("_s")},
        "disconnections": sum(d.log.disconnections for d in r.drivers),
        "offline_periods": len(offline),
        "max_offline_s": round(max(offline, default=0.0)),
        "power_cuts": sum(len(d.log.cuts) for d in r.drivers),
        "partner_conflicts": r.partners.conflicts,
        "outboxes_drained": r.settled,
        "events_played": r.played,
        "learning": learning(world),
        "urls": r.urls,
    }
    s["goals"] = goals(s)
    strategies = {"wayline": r.wayline, "static": static_days, "zones": zone_days}
    extra = {"vans": vans, "exceptions": exc["timeline"], "notices": notes}
    extra["strategies"] = strategies
    return s, extra


def goals(s: dict[str, Any]) -> list[dict[str, Any]]:
    def cpd(x: dict[str, Any]) -> float:
        return x["cost_per_delivered"] if x["cost_per_delivered"] is not None else float("inf")

    auto = s["exceptions_auto_resolved"] / s["exceptions_total"] if s["exceptions_total"] else 1.0
    bs, bz = s["baseline_static"], s["baseline_zones"]

    def vs(key: str) -> str:
        return f"{s[key]} vs static {bs[key]}, zones {bz[key]}"

    lost, twice = s["events_lost"], s["events_duplicated"]
    return [
        {
            "goal": "no event lost or applied twice",
            "met": lost == 0 and twice == 0,
            "value": f"lost {lost}, twice {twice}",
        },
        {
            "goal": "on-time rate better than both baselines",
            "met": s["on_time_rate"] > max(bs["on_time_rate"], bz["on_time_rate"]),
            "value": vs("on_time_rate"),
        },
        {
            "goal": "cost per delivered order better than both baselines",
            "met": cpd(s) < min(cpd(bs), cpd(bz)),
            "value": vs("cost_per_delivered"),
        },
        {
            "goal": "at least 95% of exceptions resolved without a person",
            "met": auto >= 0.95,
            "value": f"{s['exceptions_auto_resolved']}/{s['exceptions_total']}",
        },
    ]
