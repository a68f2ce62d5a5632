"""A simulated van gateway: the real vehicle agent on simulated hardware.

``python -m firmware_sim.gateway --id V --broker URL --db PATH --http HOST:PORT [--period S]``

Runs the same :class:`edge.vehicle.VehicleAgent` and tablet app as ``wayline vehicle``,
plus a position source that drives the van toward its next stop and reports telemetry
every ``--period`` seconds, as the gateway's receiver and vehicle bus would.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
from pathlib import Path

from edge.tablet_api import create_tablet_app
from edge.vehicle import VehicleAgent, VehicleSettings
from protocol import Telemetry
from sync import parse_broker_url
from wayline.serve import HttpServer, parse_hostport

__all__ = ["SimulatedVan", "main"]

log = logging.getLogger(__name__)


class SimulatedVan:
    """Moves toward the agent's next stop at ``speed_kmh`` and reports telemetry."""

    def __init__(self, agent: VehicleAgent, period_s: float, speed_kmh: float = 30.0) -> None:
        self.agent = agent
        self.period_s = period_s
        self.speed_kmh = speed_kmh
        self.odometer_km = 12_000.0
        self.fuel_pct = 80.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-van", daemon=True)
        self.position: tuple[float, float] | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self._step()
            except Exception:
                log.exception("simulated telemetry step failed")

    def _step(self) -> None:
        status = self.agent.status()
        route = status["route"]
        if route is None:
            return
        if self.position is None:
            self.position = (route["depot_lat"], route["depot_lon"])
        target = status["next"]
        lat, lon = self.position
        heading, speed = 0.0, 0.0
        if target is not None:
            dlat, dlon = target["lat"] - lat, target["lon"] - lon
            dist_km = math.hypot(dlat * 111.0, dlon * 111.0 * math.cos(math.radians(lat)))
            step_km = min(dist_km, self.speed_kmh * self.period_s / 3600 * 60)  # a minute a tick
            if dist_km > 0:
                f = step_km / dist_km
                self.position = (lat + dlat * f, lon + dlon * f)
                heading = (math.degrees(math.atan2(dlon, dlat)) + 360) % 360
                speed = self.speed_kmh
                self.odometer_km += step_km
                self.fuel_pct = max(5.0, self.fuel_pct - step_km * 0.08)
        self.agent.telemetry(
            Telemetry(
                at=self.agent.now_ms(),
                lat=self.position[0],
                lon=self.position[1],
                speed_kmh=speed,
                heading_deg=heading % 360,
                odometer_km=self.odometer_km,
                fuel_pct=round(self.fuel_pct, 1),
                door_open=False,
                ignition=True,
            )
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="firmware_sim.gateway", description=__doc__.splitlines()[0])
    p.add_argument("--id", required=True)
    p.add_argument("--broker", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--http", required=True)
    p.add_argument("--period", type=float, default=1.0, help="seconds between samples")
    a = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    agent = VehicleAgent(
        VehicleSettings(vehicle_id=a.id, db_path=Path(a.db), broker=parse_broker_url(a.broker))
    )
    van = SimulatedVan(agent, a.period)
    server = HttpServer(create_tablet_app(agent), *parse_hostport(a.http))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agent.start()
    server.start()
    van.start()
    try:
        stop.wait()
    finally:
        van.stop()
        server.stop()
        agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
