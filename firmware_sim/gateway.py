"""A simulated van gateway: the real vehicle agent on simulated hardware.

``python -m firmware_sim.gateway --id V --broker URL --db PATH --http HOST:PORT [--period S]``

Runs the same :class:`edge.vehicle.VehicleAgent` and tablet app as ``wayline vehicle``. The
simulated hardware is served where a real gateway's hardware would be — the GNSS receiver
on a serial line (a pseudo-terminal), a TCP NMEA feed or a gpsd; the vehicle bus as FMS
frames (encoded with ``deploy/fms.dbc``) or an OBD-II ECU on a CAN bus another process can
open — and the agent is handed the :class:`HardwareSettings` that name them, exactly as
``wayline vehicle`` gets them from its config: it opens its inputs itself. It reaches the
broker through a simulated cellular modem (a loopback proxy with coverage holes), and its
clock may drift. A driver loop steers the van toward the stop the tablet shows next.

Options beyond the basics: ``--speed`` and ``--sim-start`` run accelerated simulated time;
``--coverage FILE`` (JSON list of dead zones, see :class:`DeadZone`); ``--clock-offset``
and ``--clock-skew-ppm``; ``--start LAT,LON``; ``--cruise-kmh``; ``--ev``;
``--garbage-every N``; ``--gnss-via pty|tcp|gpsd``; ``--can-profile fms|obd2``. The tablet
app also serves ``/sim/*`` (see :mod:`firmware_sim.hardware.control`) so the demo's world
can move the van, cut the modem, break the van down or turn the ignition off.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Literal

from edge.errors import EdgeError
from edge.tablet_api import create_tablet_app
from edge.vehicle import VehicleAgent, VehicleSettings
from firmware_sim.hardware import (
    CoverageMap,
    DeadZone,
    GnssVia,
    HardwareRig,
    RouteFollower,
    SimHardwareError,
    VanModel,
    sim_router,
)
from firmware_sim.world.clock import SimClock
from sync import SyncSettings, parse_broker_url
from wayline.serve import HttpServer, parse_hostport

__all__ = ["SimulatedGateway", "load_coverage", "main"]

log = logging.getLogger(__name__)

DEFAULT_START = (52.5200, 13.4050)


def load_coverage(path: Path) -> CoverageMap:
    """Dead zones from a JSON list of objects with :class:`DeadZone`'s fields."""
    try:
        items = json.loads(path.read_text())
        return CoverageMap(DeadZone(**item) for item in items)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"bad coverage file {path}: {exc}") from exc


class SimulatedGateway:
    """The agent, its simulated hardware, the driver loop and the tablet app, in one box."""

    def __init__(
        self,
        settings: VehicleSettings,
        *,
        van: VanModel,
        clock: SimClock,
        http: tuple[str, int] | None,
        period_s: float = 1.0,
        coverage: CoverageMap | None = None,
        clock_offset_s: float = 0.0,
        clock_skew_ppm: float = 0.0,
        garbage_every: int = 0,
        gnss_via: GnssVia = "pty",
        can_profile: Literal["fms", "obd2"] = "fms",
        workdir: Path | None = None,
    ) -> None:
        self.rig = HardwareRig(
            van,
            broker=settings.broker,
            clock=clock,
            coverage=coverage,
            period_s=period_s,
            gnss_via=gnss_via,
            can_profile=can_profile,
            workdir=workdir,
            clock_offset_s=clock_offset_s,
            clock_skew_ppm=clock_skew_ppm,
            garbage_every=garbage_every,
        )
        self.rig.start()
        try:
            self.agent = VehicleAgent(
                replace(settings, broker=self.rig.broker, hardware=self.rig.hardware_settings()),
                clock=self.rig.agent_clock,
            )
        except Exception:
            self.rig.stop()
            raise
        self.rig.observe(self.agent.hardware)
        self.driver = RouteFollower(
            van, self.agent.status, clock=clock, period_s=min(period_s, 0.2)
        )
        self.server: HttpServer | None = None
        if http is not None:
            app = create_tablet_app(self.agent)
            tablet_routes = len(app.router.routes)
            app.include_router(sim_router(self.rig))
            # ahead of the tablet app's catch-all static files
            routes = app.router.routes
            routes[:] = routes[tablet_routes:] + routes[:tablet_routes]
            self.server = HttpServer(app, *http)

    def start(self) -> None:
        self.agent.start()
        self.driver.start()
        if self.server is not None:
            self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.driver.stop()
        self.agent.stop()
        self.rig.stop()


def _hardware_dir(db: Path) -> Path:
    """Beside the store: where the receiver's device link lives, kept across power cuts."""
    path = db.with_name(db.name + ".hw")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _latlon(value: str) -> tuple[float, float]:
    lat, _, lon = value.partition(",")
    try:
        return float(lat), float(lon)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LAT,LON, got {value!r}") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="firmware_sim.gateway", description=__doc__.splitlines()[0])
    p.add_argument("--id", required=True)
    p.add_argument("--broker", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--http", required=True)
    p.add_argument("--period", type=float, default=1.0, help="seconds between samples")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    p.add_argument("--sim-start", type=float, help="simulated epoch at start (default: now)")
    p.add_argument("--start", type=_latlon, help="LAT,LON where the van is parked")
    p.add_argument("--coverage", type=Path, help="JSON list of dead zones")
    p.add_argument("--clock-offset", type=float, default=0.0, help="agent clock offset, s")
    p.add_argument("--clock-skew-ppm", type=float, default=0.0, help="agent clock skew, ppm")
    p.add_argument("--cruise-kmh", type=float, default=30.0)
    p.add_argument("--ev", action="store_true", help="battery van: charge instead of fuel")
    p.add_argument("--garbage-every", type=int, default=0, help="a bad NMEA line every N")
    p.add_argument(
        "--gnss-via", choices=("pty", "tcp", "gpsd"), default="pty", help="how GNSS is served"
    )
    p.add_argument(
        "--can-profile", choices=("fms", "obd2"), default="fms", help="what the bus carries"
    )
    p.add_argument("--fast-sync", action="store_true", help="short sync timers (tests, demo)")
    p.add_argument("--pairing-code", help="the code that pairs the tablet (default: made once)")
    a = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        clock = SimClock(a.sim_start if a.sim_start is not None else time.time(), a.speed)
        coverage = load_coverage(a.coverage) if a.coverage else None
        start = a.start or DEFAULT_START
        van = VanModel(
            *start,
            clock=clock,
            cruise_kmh=a.cruise_kmh,
            fuel_pct=None if a.ev else 80.0,
            charge_pct=90.0 if a.ev else None,
        )
        sync = FAST_SYNC if a.fast_sync else SyncSettings()
        settings = VehicleSettings(
            vehicle_id=a.id,
            db_path=Path(a.db),
            broker=parse_broker_url(a.broker),
            sync=sync,
            pairing_code=a.pairing_code,
        )
        gateway = SimulatedGateway(
            settings,
            van=van,
            clock=clock,
            http=parse_hostport(a.http),
            period_s=a.period,
            coverage=coverage,
            clock_offset_s=a.clock_offset,
            clock_skew_ppm=a.clock_skew_ppm,
            garbage_every=a.garbage_every,
            gnss_via=a.gnss_via,
            can_profile=a.can_profile,
            workdir=_hardware_dir(Path(a.db)),
        )
    except (OSError, ValueError, EdgeError, SimHardwareError) as exc:  # settings, bad options
        print(f"firmware_sim.gateway: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    gateway.start()
    try:
        stop.wait()
    finally:
        gateway.stop()
    return 0


FAST_SYNC = SyncSettings(
    ack_timeout_s=0.5,
    ack_timeout_max_s=2.0,
    tick_s=0.02,
    resend_interval_s=0.3,
    reconnect_min_s=0.1,
    reconnect_max_s=1.0,
)


if __name__ == "__main__":
    sys.exit(main())
