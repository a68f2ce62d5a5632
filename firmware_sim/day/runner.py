"""One demo day, end to end: start everything, play the scenario, settle, collect figures.

The day's clock (:class:`SimClock`) starts a quarter of an hour before the fleets leave,
anchored a few machine seconds ahead so the processes are up in time. Orders go to the
cloud through its REST API as they become known; the cloud plans the morning and then
rebalances on its own triggers. The scenario's timeline is played at its hours: the
carrier outage and the van's breakdown through the API (and the van's simulated hardware),
the dead zone through every gateway's coverage map, the jam through the vans' traffic
factors, the flash sale as extra orders. The driver bots work the own vans' tablets; the
3PL and the couriers are :class:`Partners`. At the end every outbox is drained and the
stores are read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from firmware_sim.day.driver import VanDriver
from firmware_sim.day.network import order_body, register_network
from firmware_sim.day.outcomes import VehicleDay, return_leg
from firmware_sim.day.partners import Partners
from firmware_sim.day.processes import CloudApi, DayProcesses, HttpError
from firmware_sim.world import Scenario, SimClock, TravelModel, World, load_scenario

__all__ = ["DayOptions", "DayResult", "run_day"]

log = logging.getLogger(__name__)

SETUP_REAL_S = 20.0
LEAD_S = 900
TICK_S = 0.2
SETTLE_S = 90.0


@dataclass(frozen=True)
class DayOptions:
    scenario: str = "disrupted"
    seed: int | None = None
    vehicles: int | None = None
    speed: float = 120.0
    broker: str | None = None


@dataclass
class DayResult:
    world: World
    wayline: list[VehicleDay]
    morning: dict[str, list[str]]
    drivers: list[VanDriver]
    partners: Partners
    played: list[dict[str, Any]] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0
    settled: bool = False


def build_world(opts: DayOptions) -> World:
    sc: Scenario = load_scenario(opts.scenario, seed=opts.seed)
    if opts.vehicles is not None:
        if not 1 <= opts.vehicles <= 30:
            raise ValueError("--vehicles must be 1..30")
        fleets = tuple(
            replace(f, vehicles=opts.vehicles) if f.kind == "own" else f for f in sc.fleets
        )
        sc = replace(sc, fleets=fleets)
    return World(sc)


def run_day(
    opts: DayOptions,
    work: Path,
    progress: Callable[[dict[str, Any]], None],
    announce: Callable[[str], None],
) -> tuple[DayResult, Any]:
    """Run the day in ``work``; returns the result and the processes (already stopped)."""
    t0 = time.monotonic()
    world = build_world(opts)
    sc = world.scenario
    clock = SimClock(sc.epoch(sc.start - LEAD_S), opts.speed, real_start=time.time() + SETUP_REAL_S)
    procs = DayProcesses(work, clock)
    stop = threading.Event()
    drivers: list[VanDriver] = []
    try:
        url = procs.start_broker(opts.broker)
        announce(f"broker      {url}" + ("" if opts.broker else " (Mosquitto, deploy/)"))
        api = procs.start_cloud()
        dash = _dashboard(api)
        announce(f"dashboard   {dash}")
        depot = sc.depots[0]
        depot_url = procs.start_depot(depot.depot_id, depot.lat, depot.lon)
        announce(f"depot       {depot_url} (sorter terminal of {depot.depot_id})")
        coverage = work / "coverage.json"
        coverage.write_text(json.dumps(world.dead_zones()))
        own = [v for v in world.vehicles if v.kind == "own"]
        gws = [procs.add_gateway(v.vehicle_id, v.depot, coverage, v.cruise_kmh) for v in own]
        for g in gws:  # one after the other: each start measures the next one's clock lead
            procs.power_up(g)
        for g in gws:
            if not g.running:
                raise OSError(f"gateway {g.vehicle_id} did not start; see {g.log}")
        announce(f"vans        {len(gws)} gateways, tablets at {gws[0].url}/ ...")
        register_network(api, world)
        day = sc.day.isoformat()
        released: set[str] = set()
        morning_orders = [o for o in world.orders if o.released_at <= sc.start]
        api.post("/v1/orders/batch", [order_body(sc, o) for o in morning_orders])
        released |= {o.order_id for o in morning_orders}
        api.post("/v1/plan", {"day": day})
        morning = _assignments(api, world)
        partners = Partners(world, api)
        for v, g in zip(own, gws, strict=True):
            d = VanDriver(v, g, procs, world, clock, stop)
            drivers.append(d)
            d.start()
        result = DayResult(world, [], morning, drivers, partners)
        result.urls = {"dashboard": dash, "cloud": api.url, "depot": depot_url}
        _play(world, api, procs, clock, drivers, partners, released, result, progress)
        stop.set()
        for d in drivers:
            d.join(30)
        end_t = clock() - sc.day_start_epoch
        partners.finish_day(end_t)
        travel = TravelModel(world)
        for d in drivers:
            d.final_stats()
            if d.day.visits and d.day.back_at is None:
                return_leg(travel, d.day, d.here, max(v.done for v in d.day.visits))
        result.wayline = [d.day for d in drivers] + list(partners.days.values())
        result.settled = _settle(procs)
        result.wall_s = time.monotonic() - t0
        return result, procs
    finally:
        stop.set()
        for d in drivers:
            d.join(10)
        procs.stop()


def _dashboard(api: CloudApi) -> str:
    try:
        with urllib.request.urlopen(api.url + "/dashboard", timeout=10) as resp:
            resp.read(1)
        return api.url + "/dashboard"
    except OSError:  # no dashboard page in this build: the API's own pages
        return api.url + "/docs"


def _assignments(api: CloudApi, world: World) -> dict[str, list[str]]:
    ids = {v.vehicle_id for v in world.vehicles if v.kind != "3pl"}
    ids |= {f.fleet_id for f in world.scenario.fleets if f.kind == "3pl"}
    return {
        vid: [a["order_id"] for a in api.get(f"/v1/assignments?vehicle_id={vid}")]
        for vid in sorted(ids)
    }


def _play(
    world: World,
    api: CloudApi,
    procs: DayProcesses,
    clock: SimClock,
    drivers: list[VanDriver],
    partners: Partners,
    released: set[str],
    result: DayResult,
    progress: Callable[[dict[str, Any]], None],
) -> None:
    sc = world.scenario
    d0 = sc.day_start_epoch
    deadline = time.monotonic() + clock.real_seconds(sc.end + 3600 - (clock() - d0)) + 300
    by_driver = {d.vehicle.vehicle_id: d for d in drivers}
    halt = threading.Event()

    def own_done() -> set[str]:
        return {v.order_id for d in drivers for v in list(d.day.visits)}

    def partner_loop() -> None:  # the carriers' systems run beside the world's timeline
        while not halt.wait(TICK_S) and time.monotonic() < deadline:
            try:
                partners.tick(clock() - d0, own_done())
            except OSError as exc:
                log.warning("partners: %s", exc)

    worker = threading.Thread(target=partner_loop, name="partners", daemon=True)
    worker.start()
    try:
        _timeline(world, api, clock, drivers, partners, released, result, progress, deadline,
                  rescheduled=set(), by_driver=by_driver, own_done=own_done)  # fmt: skip
    finally:
        halt.set()
        worker.join(60)


def _timeline(
    world: World,
    api: CloudApi,
    clock: SimClock,
    drivers: list[VanDriver],
    partners: Partners,
    released: set[str],
    result: DayResult,
    progress: Callable[[dict[str, Any]], None],
    deadline: float,
    *,
    rescheduled: set[str],
    by_driver: dict[str, VanDriver],
    own_done: Callable[[], set[str]],
) -> None:
    sc = world.scenario
    day, d0 = sc.day.isoformat(), sc.day_start_epoch
    end = sc.end + 3600
    started: set[int] = set()
    ended: set[int] = set()
    while time.monotonic() < deadline:
        t = clock() - d0
        if t >= end:
            break
        new = [o for o in world.orders if o.order_id not in released and o.released_at <= t]
        if new:
            api.post("/v1/orders/batch", [order_body(sc, o) for o in new])
            released |= {o.order_id for o in new}
        done = own_done()
        for o in world.orders:
            if o.reschedule_at is not None and o.reschedule_at <= t and o.order_id in released:
                if o.order_id in rescheduled or o.new_window is None:
                    continue
                rescheduled.add(o.order_id)
                body = {
                    "start": int(sc.epoch(o.new_window[0])),
                    "end": int(sc.epoch(o.new_window[1])),
                }
                try:
                    api.post(f"/v1/orders/{o.order_id}/reschedule", body)
                except HttpError as exc:  # already delivered: a fact is final
                    log.info("reschedule of %s refused: %s", o.order_id, exc)
        for i, e in enumerate(sc.events):
            if i not in started and e.at <= t:
                started.add(i)
                result.played.append(_start_event(e, api, by_driver, day, t))
            if i not in ended and i in started and e.until <= t and e.until < sc.end:
                ended.add(i)
                result.played.append(_end_event(e, api, by_driver, day, t))
        progress(_counts(world, t, released, drivers, partners, result))
        all_done = len(done | {v.order_id for d in partners.days.values() for v in d.visits})
        if t > sc.end and all_done >= len(world.orders):
            break
        time.sleep(TICK_S)


def _start_event(
    e: Any, api: CloudApi, drivers: dict[str, VanDriver], day: str, t: float
) -> dict[str, Any]:
    rec = {"kind": e.kind, "at_s": t, "phase": "start", "params": e.params, "applied": True}
    try:
        if e.kind == "carrier_outage":
            api.post(
                f"/v1/fleets/{e.params['fleet']}/outage?rebalance=false",
                {"day": day, "reason": "carrier systems down"},
            )
        elif e.kind == "breakdown":
            vid = e.params["vehicle"]
            if vid in drivers:
                api.post(
                    f"/v1/vehicles/{vid}/breakdown?rebalance=false",
                    {"day": day, "reason": "engine fault"},
                )
                _on_gateway(lambda: drivers[vid].gw.set_van(broken=True))
            else:
                rec["applied"] = False  # that van is not on the road in this run
        # dead zones act through the gateways' coverage maps, jams through traffic factors,
        # the flash sale through its orders
    except OSError as exc:
        rec.update(applied=False, error=str(exc)[:200])
    return rec


def _end_event(
    e: Any, api: CloudApi, drivers: dict[str, VanDriver], day: str, t: float
) -> dict[str, Any]:
    rec = {"kind": e.kind, "at_s": t, "phase": "end", "params": e.params, "applied": True}
    try:
        if e.kind == "breakdown" and e.params["vehicle"] in drivers:
            vid = e.params["vehicle"]
            _on_gateway(lambda: drivers[vid].gw.set_van(broken=False))
            api.post(
                f"/v1/vehicles/{vid}/restore?rebalance=false", {"day": day, "reason": "repaired"}
            )
        elif e.kind == "carrier_outage":
            api.post(f"/v1/fleets/{e.params['fleet']}/restore?rebalance=false", {"day": day})
    except OSError as exc:
        rec.update(applied=False, error=str(exc)[:200])
    return rec


def _on_gateway(call: Callable[[], Any], tries: int = 40, wait_s: float = 0.25) -> Any:
    """A call to a van's simulated hardware, retried while its gateway restarts after a
    power cut (the cut may fall at the same moment as the scenario's event)."""
    for k in range(tries):
        try:
            return call()
        except OSError:
            if k == tries - 1:
                raise
            time.sleep(wait_s)
    return None


def _counts(
    world: World,
    t: float,
    released: set[str],
    drivers: list[VanDriver],
    partners: Partners,
    result: DayResult,
) -> dict[str, Any]:
    visits = [v for d in drivers for v in d.day.visits]
    visits += [v for d in partners.days.values() for v in d.visits]
    offline = sum(1 for d in drivers if d.log.online and not d.log.online[-1][1])
    sc = world.scenario
    return {
        "t": t,
        "frac": min(1.0, max(0.0, (t - sc.start) / (sc.end - sc.start))),
        "released": len(released),
        "orders": len(world.orders),
        "delivered": sum(1 for v in visits if v.ok),
        "failed": sum(1 for v in visits if not v.ok),
        "events": len(result.played),
        "offline": offline,
        "cuts": sum(len(d.log.cuts) for d in drivers),
    }


def _settle(procs: DayProcesses) -> bool:
    """Give every van back its coverage and wait until every outbox is empty."""
    for gw in procs.gateways.values():
        with contextlib.suppress(OSError):
            gw.set_modem(True)
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        try:
            if all(gw.status()["pending_sync"] == 0 for gw in procs.gateways.values()):
                time.sleep(1.0)  # the cloud's last acks are applied before they are sent
                return True
        except OSError:
            pass
        time.sleep(0.3)
    return False
