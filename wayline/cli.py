"""The ``wayline`` command: parse arguments, build settings once, run, and turn our errors
into one line and a non-zero exit. Each subcommand's real work lives in its package."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from wayline.serve import HttpServer, parse_hostport

__all__ = ["main"]

log = logging.getLogger("wayline")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line instead of usage plus error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("uvicorn").setLevel(logging.WARNING)


def _hostport(value: str) -> tuple[str, int]:
    try:
        return parse_hostport(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def _run_service(
    start: Callable[[], None], stop: Callable[[], None], app: object, http: tuple[str, int] | None
) -> int:
    start()
    server = None
    try:
        if http is not None:
            server = HttpServer(app, *http)
            server.start()
            log.info("serving on %s", server.url)
        _wait_for_signal()
    finally:
        if server is not None:
            server.stop()
        stop()
    return 0


def _cmd_cloud(args: argparse.Namespace) -> int:
    from cloud import CloudSettings, Coordinator, create_api
    from cloud.dispatch import DispatchSettings
    from sync import parse_broker_url

    settings = CloudSettings(
        db_path=Path(args.db),
        broker=parse_broker_url(args.broker),
        rebalance_interval_s=args.rebalance_every or None,
        dispatch=DispatchSettings(
            time_limit_s=args.plan_time_limit, iterations=args.plan_iterations
        ),
    )
    clock: Callable[[], float] = time.time
    if args.sim_start is not None:
        from firmware_sim.world.clock import SimClock

        clock = SimClock(args.sim_start, args.speed, real_start=args.sim_anchor)
    coordinator = Coordinator(settings, clock=clock)
    log.info("cloud coordinator: store %s, broker %s", args.db, settings.broker.url)  # type: ignore[union-attr]
    app = create_api(coordinator) if args.http else None
    return _run_service(coordinator.start, coordinator.stop, app, args.http)


def _cmd_vehicle(args: argparse.Namespace) -> int:
    from edge.tablet_api import create_tablet_app
    from edge.vehicle import VehicleAgent, VehicleSettings
    from sync import parse_broker_url

    settings = VehicleSettings(
        vehicle_id=args.id, db_path=Path(args.db), broker=parse_broker_url(args.broker)
    )
    agent = VehicleAgent(settings)
    log.info("vehicle %s: store %s, broker %s", args.id, args.db, settings.broker.url)  # type: ignore[union-attr]
    app = create_tablet_app(agent) if args.http else None
    return _run_service(agent.start, agent.stop, app, args.http)


def _cmd_depot(args: argparse.Namespace) -> int:
    from edge.depot import DepotAgent, DepotSettings
    from edge.depot.web import create_terminal_app
    from sync import parse_broker_url

    settings = DepotSettings(
        depot_id=args.id,
        db_path=Path(args.db),
        broker=parse_broker_url(args.broker),
        location=args.at,
    )
    agent = DepotAgent(settings)
    log.info("depot %s: store %s, broker %s", args.id, args.db, settings.broker.url)  # type: ignore[union-attr]
    app = create_terminal_app(agent) if args.http else None
    return _run_service(agent.start, agent.stop, app, args.http)


def _latlon(value: str) -> tuple[float, float]:
    try:
        lat, lon = (float(x) for x in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LAT,LON such as 52.37,4.89, got {value!r}"
        ) from None
    return lat, lon


def _cmd_resequence(args: argparse.Namespace) -> int:
    from edge import resequence_cli

    return resequence_cli.run(args)


def _cmd_plan(args: argparse.Namespace) -> int:
    from cloud import plan_cli

    return plan_cli.run(args)


def _cmd_audit(args: argparse.Namespace) -> int:
    from cloud import audit_cli

    return audit_cli.run(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from firmware_sim import demo

    return demo.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="wayline",
        description="Wayline: edge-plus-cloud software for last-mile delivery fleets.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("cloud", help="run the cloud coordinator")
    p.add_argument("--broker", required=True, help="MQTT broker, e.g. mqtt://127.0.0.1:1883")
    p.add_argument("--db", required=True, help="SQLite store of the coordinator")
    p.add_argument("--http", type=_hostport, help="serve the API on HOST:PORT")
    p.add_argument(
        "--rebalance-every",
        type=float,
        default=30.0,
        metavar="S",
        help="work through queued rebalancing triggers every S seconds (0: only on request)",
    )
    p.add_argument("--plan-iterations", type=int, default=1000, help="planner iterations per solve")
    p.add_argument(
        "--plan-time-limit", type=float, default=60.0, help="planner time limit per solve, s"
    )
    p.add_argument(
        "--sim-start",
        type=float,
        metavar="EPOCH",
        help="simulated time: the coordinator's clock reads EPOCH at --sim-anchor (demo)",
    )
    p.add_argument(
        "--sim-anchor",
        type=float,
        metavar="EPOCH",
        help="machine time at which the clock reads --sim-start (default: now)",
    )
    p.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per second (with --sim-start)"
    )
    p.set_defaults(func=_cmd_cloud)

    p = sub.add_parser("vehicle", help="run a vehicle gateway's agent")
    p.add_argument("--id", required=True, help="vehicle id (letters, digits, _ . -)")
    p.add_argument("--broker", required=True, help="MQTT broker, e.g. mqtt://127.0.0.1:1883")
    p.add_argument("--db", required=True, help="SQLite store of this vehicle")
    p.add_argument("--http", type=_hostport, help="serve the driver's tablet on HOST:PORT")
    p.set_defaults(func=_cmd_vehicle)

    p = sub.add_parser("depot", help="run a depot sorter's agent and its terminal")
    p.add_argument("--id", required=True, help="depot id (letters, digits, _ . -)")
    p.add_argument("--broker", required=True, help="MQTT broker, e.g. mqtt://127.0.0.1:1883")
    p.add_argument("--db", required=True, help="SQLite store of this depot")
    p.add_argument("--http", type=_hostport, help="serve the sorter's terminal on HOST:PORT")
    p.add_argument(
        "--at", type=_latlon, help="depot location LAT,LON (default: the first plan's depot)"
    )
    p.set_defaults(func=_cmd_depot)

    from edge import resequence_cli

    p = sub.add_parser("resequence", help="re-sequence one vehicle's stops from a Solomon file")
    resequence_cli.configure(p)
    p.set_defaults(func=_cmd_resequence)

    from cloud import plan_cli

    p = sub.add_parser("plan", help="plan a Solomon/Homberger instance with the cloud planner")
    plan_cli.configure(p)
    p.set_defaults(func=_cmd_plan)

    from cloud import audit_cli

    p = sub.add_parser("audit", help="the coordinator's decision record: replay, show, list")
    audit_cli.configure(p)
    p.set_defaults(func=_cmd_audit)

    from firmware_sim import demo

    p = sub.add_parser("demo", help="run a delivery day on this machine and report it")
    demo.configure(p)
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from cloud.errors import CloudError
    from cloud.ops import OpsError
    from edge.errors import EdgeError
    from sync import SyncError

    parser = build_parser()
    args = parser.parse_args(argv)
    _logging(args.verbose)
    try:
        return int(args.func(args))
    except (SyncError, EdgeError, CloudError, OpsError, OSError, ValueError) as exc:
        print(f"wayline {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
