"""The ``wayline`` command: parse arguments, build settings once, run, and turn our errors
into one line and a non-zero exit.

Exit status: 0 done; 1 an error of ours while running (a store from a newer Wayline, an
address in use); 2 bad usage or a setting that cannot be used, before anything started;
130 interrupted. Each subcommand's real work lives in its package, imported only when that
subcommand runs (:mod:`wayline.parser`): the errors are recognised by the name of their
base class, so that catching them imports nothing either.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

from wayline.errors import ConfigError
from wayline.logs import LogFormat, configure_logging
from wayline.parser import AGENT_FLAGS, AGENTS
from wayline.parser import build_parser as _build_parser

__all__ = ["build_parser", "main"]

#: Base classes of the errors our packages raise to say something went wrong, by module.
OUR_ERRORS = frozenset(
    {
        "sync.errors.SyncError",
        "edge.errors.EdgeError",
        "cloud.errors.CloudError",
        "cloud.ops.errors.OpsError",
        "protocol.errors.ProtocolError",
    }
)
LOG_FORMAT_VAR = "WAYLINE_LOG_FORMAT"


def build_parser() -> argparse.ArgumentParser:
    """The ``wayline`` parser (imports no Wayline package)."""
    return _build_parser(_run_agent)


def _run_agent(args: argparse.Namespace) -> int:
    """cloud, vehicle, depot: settings from flags, environment and file, then the agent."""
    from wayline.settings import MODELS
    from wayline.sources import load

    flags = {f.dest: getattr(args, f.dest) for f in AGENT_FLAGS[args.command] if f.setting}
    flags["log_format"] = args.log_format
    config = load(MODELS[args.command], flags, args.config)
    configure_logging(args.verbose, config.log_format)

    from wayline import agents

    if args.command == "vehicle":
        return agents.run_vehicle(config)  # type: ignore[arg-type]
    if args.command == "depot":
        return agents.run_depot(config)  # type: ignore[arg-type]
    return agents.run_cloud(config, _clock(args))  # type: ignore[arg-type]


def _clock(args: argparse.Namespace) -> Callable[[], float]:
    """The coordinator's clock: the machine's, or the demo's simulated one."""
    if args.sim_start is None:
        return time.time
    from firmware_sim.world.clock import SimClock

    speed = 1.0 if args.speed is None else args.speed
    return SimClock(args.sim_start, speed, real_start=args.sim_anchor)


def _log_format(args: argparse.Namespace) -> LogFormat:
    value = args.log_format or os.environ.get(LOG_FORMAT_VAR) or "text"
    if value not in ("text", "json"):
        raise ConfigError(f"{LOG_FORMAT_VAR}: expected text or json, got {value!r}")
    return value  # type: ignore[return-value]


def is_ours(exc: BaseException) -> bool:
    """Whether ``exc`` is an error our code raises to report a problem in one line."""
    if isinstance(exc, OSError | ValueError | ConfigError):
        return True
    return any(f"{c.__module__}.{c.__qualname__}" in OUR_ERRORS for c in type(exc).__mro__)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command not in AGENTS:
            configure_logging(args.verbose, _log_format(args))
        return int(args.func(args))
    except ConfigError as exc:
        print(f"wayline {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not is_ours(exc):
            raise
        print(f"wayline {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
