"""The driver bot: one thread per van that works the van's tablet like a driver would.

It waits until the simulated van stands at the stop the tablet shows next, taps *arrive*,
waits for the window if early, serves for the order's true service time and taps
*deliver* (with the parcels' barcodes) or *fail* with the world's reason
(:meth:`World.attempt`). Every tap carries an event id, so a tap repeated after a power cut
is applied once. Some deliveries are chosen for a power cut in flight
(:meth:`GatewayProcess.power_cut_during`): the gateway is killed mid-request, powered up
again where the van stands, and the tap repeated. It also sets the van's traffic factor
from the world (hour of day, jams, the road detour) and samples the modem's state.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from firmware_sim.day.outcomes import VehicleDay, Visit
from firmware_sim.day.processes import DayProcesses
from firmware_sim.hardware import GatewayProcess, distance_km
from firmware_sim.world import SimClock, TravelModel, Vehicle, World, hashed_rng

__all__ = ["VanDriver"]

log = logging.getLogger(__name__)

AT_DOOR_KM = 0.03
POLL_S = 0.05
TRAFFIC_EVERY_S = 300.0
NO_ANSWER_SERVICE_S = 90
SAMPLE_S = 0.3
"""Machine seconds between samples of the modem while the driver waits at a door."""
CUT_AT = (4, 12)
"""The n-th doorstep of each van at which the power goes mid-tap."""


@dataclass
class VanLog:
    online: list[tuple[float, bool]] = field(default_factory=list)
    cuts: list[float] = field(default_factory=list)
    disconnections: int = 0
    errors: list[str] = field(default_factory=list)


class VanDriver(threading.Thread):
    def __init__(
        self,
        vehicle: Vehicle,
        gw: GatewayProcess,
        procs: DayProcesses,
        world: World,
        clock: SimClock,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"driver-{vehicle.vehicle_id}", daemon=True)
        self.vehicle, self.gw, self.procs, self.world, self.clock = vehicle, gw, procs, world, clock
        self.stop_event = stop
        self.travel = TravelModel(world)
        self.day0 = world.scenario.day_start_epoch
        self.orders = {o.order_id: o for o in world.orders}
        self.day = VehicleDay(vehicle)
        self.log = VanLog()
        self.here = vehicle.depot
        self.pos = vehicle.depot
        self._traffic_at = -1e9
        self._doorsteps = 0

    def tod(self) -> float:
        return self.clock() - self.day0

    def run(self) -> None:
        end = self.world.scenario.end + 3600
        deadline = time.monotonic() + self.clock.real_seconds(end - self.tod()) + 120
        while not self.stop_event.is_set() and self.tod() < end and time.monotonic() < deadline:
            try:
                self._step()
            except OSError as exc:  # the gateway is restarting or busy: try again
                self.log.errors.append(str(exc)[:200])
                self.stop_event.wait(0.2)

    def _step(self) -> None:
        st = self.gw.status()
        sim = self.gw.sim_state()
        van, modem = sim["van"], sim.get("modem") or {}
        self.pos = (van["lat"], van["lon"])
        self.log.online.append((self.tod(), bool(modem.get("online", True))))
        self._traffic()
        nxt = st.get("next")
        if st.get("route") is None or nxt is None:
            home = distance_km(self.pos, self.vehicle.depot) <= AT_DOOR_KM
            if self.day.visits and self.day.back_at is None and home:
                self.day.back_at = self.tod()
                self.day.km += self.travel.road_km(self.here, self.vehicle.depot)
            self.stop_event.wait(POLL_S * 4)
            return
        if distance_km(self.pos, (nxt["lat"], nxt["lon"])) > AT_DOOR_KM:
            self.day.back_at = None
            self.stop_event.wait(POLL_S)
            return
        self._doorstep(nxt)

    def _traffic(self) -> None:
        t = self.tod()
        if t - self._traffic_at < TRAFFIC_EVERY_S:
            return
        self._traffic_at = t
        factor = self.travel.detour * self.travel.traffic_factor(t, self.pos)
        self.gw.set_van(traffic_factor=round(factor, 3))

    def _doorstep(self, stop: dict[str, Any]) -> None:
        sid = stop["stop_id"]
        order = self.orders.get(stop.get("order_id") or sid)
        base = f"/api/stops/{sid}"
        self.gw.post(base + "/arrive", {"event_id": f"{sid}-arrive"})
        if order is None:  # not a world order: nothing to simulate
            return
        window = order.new_window or (order.window_start, order.window_end)
        self._sleep_until(float(window[0]))
        start = self.tod()
        ok, reason = self.world.attempt(order)
        service = order.service_s if ok else min(order.service_s, NO_ANSWER_SERVICE_S)
        self._sleep_until(start + service)
        self._doorsteps += 1
        if ok:
            codes = ",".join(p["barcode"] for p in stop.get("parcels", []))
            fields = {"event_id": f"{sid}-done", "recipient": "At the door", "barcodes": codes}
            url = self.gw.url + base + "/deliver"

            def tap() -> Any:
                return _form(url, fields, self.gw.auth)
        else:
            body = {"event_id": f"{sid}-done", "reason": reason or "absent"}

            def tap() -> Any:
                return self.gw.post(base + "/fail", body)

        if self._doorsteps in CUT_AT:
            self._cut_during(tap, sid)
        else:
            self._with_retries(tap)
        self.day.km += self.travel.road_km(self.here, (order.lat, order.lon))
        self.here = (order.lat, order.lon)
        self.day.visits.append(
            Visit(order.order_id, self.vehicle.vehicle_id, start, self.tod(), ok, reason)
        )

    def _cut_during(self, tap: Callable[[], Any], sid: str) -> None:
        try:
            sim = self.gw.sim_state()
            self.log.disconnections += int((sim.get("modem") or {}).get("disconnections", 0))
        except OSError:
            pass
        delay = hashed_rng(self.world.seed, "cut", self.vehicle.vehicle_id, sid).uniform(0.0, 0.03)
        self.gw.power_cut_during(tap, delay)
        self.log.cuts.append(self.tod())
        self.procs.power_up(self.gw, at=self.pos)
        time.sleep(0.5)  # let the driver loop see the route, then put the van back where it was
        self.gw.set_van(lat=self.pos[0], lon=self.pos[1])
        self._traffic_at = -1e9
        self._with_retries(tap)  # the same event id: applied once whatever the cut did

    def _with_retries(self, tap: Callable[[], Any], attempts: int = 20) -> None:
        for k in range(attempts):
            try:
                tap()
                return
            except OSError as exc:
                if "409" in str(exc) or "404" in str(exc):  # the stop moved off this van
                    log.info("%s: %s", self.vehicle.vehicle_id, exc)
                    return
                if k == attempts - 1:
                    raise
                time.sleep(0.2)

    def _sleep_until(self, t_of_day: float) -> None:
        """Wait at the door; the modem is still sampled, the van may be in a dead zone."""
        for _ in range(100_000):
            wait = self.clock.real_seconds(t_of_day - self.tod())
            if wait <= 0 or self.stop_event.wait(min(wait, SAMPLE_S)):
                return
            try:
                modem = self.gw.sim_state().get("modem") or {}
                self.log.online.append((self.tod(), bool(modem.get("online", True))))
            except OSError:
                pass

    def final_stats(self) -> None:
        try:
            sim = self.gw.sim_state()
            self.log.disconnections += int((sim.get("modem") or {}).get("disconnections", 0))
        except OSError:
            pass


def _form(url: str, fields: dict[str, str], headers: dict[str, str]) -> Any:
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as resp:
        return resp.read()
