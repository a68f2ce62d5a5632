"""The ``wayline`` argument parser, built from the standard library alone.

Building it imports no Wayline package: ``wayline --help`` and the parse of any command
stay fast, and a gateway that runs ``wayline vehicle`` never loads the coordinator.

- The agents (``cloud``, ``vehicle``, ``depot``) declare their flags here, in
  :data:`AGENT_FLAGS`. A flag's destination is the name of a setting in
  :mod:`wayline.settings`; every flag defaults to None so that a flag left out yields to the
  environment and the config file.
- The other commands keep their arguments in their own package (``configure(parser)`` and
  ``run(args)``: :data:`DELEGATED`). Their subparser is configured only when the command is
  the one being parsed, so its package is imported only then.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

__all__ = [
    "AGENTS",
    "AGENT_FLAGS",
    "DELEGATED",
    "TOP_FLAGS",
    "Delegated",
    "Flag",
    "build_parser",
]

#: The long-running commands whose settings come from flags, environment and config file.
AGENTS = ("cloud", "vehicle", "depot")
#: Settings whose flag goes before the command (``wayline --log-format json vehicle``).
TOP_FLAGS = {"log_format": "--log-format"}


@dataclass(frozen=True)
class Flag:
    """One command-line flag of an agent; ``dest`` names its setting (None: not a setting)."""

    option: str
    dest: str
    help: str
    metavar: str | None = None
    setting: bool = True
    """False for flags that are not settings: the config file itself, and the simulated
    clock only the demo passes."""
    type: Callable[[str], Any] = str
    """How argparse converts the flag: only flags that are not settings convert (settings
    are validated by :mod:`wayline.settings`, which names the flag in its message)."""


_COMMON = (
    Flag("--config", "config", "TOML settings file (default: $WAYLINE_CONFIG)", "FILE", False),
    Flag("--broker", "broker", "MQTT broker URL, e.g. mqtt://127.0.0.1:1883", "URL"),
    Flag("--db", "db", "SQLite store", "PATH"),
    Flag("--max-payload", "max_payload", "largest message accepted or sent, bytes", "BYTES"),
)

#: Flags of each agent, in the order ``--help`` lists them.
AGENT_FLAGS: dict[str, tuple[Flag, ...]] = {
    "cloud": (
        *_COMMON,
        Flag("--http", "http", "serve the API and dashboard on HOST:PORT", "HOST:PORT"),
        Flag(
            "--rebalance-every",
            "rebalance_every",
            "work through queued rebalancing triggers every S seconds (0: only on request)",
            "S",
        ),
        Flag("--plan-iterations", "plan_iterations", "planner iterations per solve", "N"),
        Flag("--plan-time-limit", "plan_time_limit", "planner time limit per solve, s", "S"),
        Flag("--policy", "policy", "exception policy file (default: the shipped one)", "FILE"),
        Flag(
            "--timezone",
            "timezone",
            "IANA time zone of depots without their own, and of customer quiet hours",
            "ZONE",
        ),
        Flag("--cutoff", "cutoff", "local time a depot's day is planned at, HH:MM", "HH:MM"),
        Flag(
            "--morning-every",
            "morning_every",
            "look for depots whose cut-off has come every S seconds (0: plan only on request)",
            "S",
        ),
        Flag(
            "--sim-start",
            "sim_start",
            "simulated time: the coordinator's clock reads EPOCH at --sim-anchor (demo)",
            "EPOCH",
            False,
            float,
        ),
        Flag(
            "--sim-anchor",
            "sim_anchor",
            "machine time at which the clock reads --sim-start (default: now)",
            "EPOCH",
            False,
            float,
        ),
        Flag(
            "--speed", "speed", "simulated seconds per second (with --sim-start)", "X", False, float
        ),
    ),
    "vehicle": (
        Flag("--id", "id", "vehicle id (letters, digits, _ . -)", "ID"),
        *_COMMON,
        Flag("--http", "http", "serve the driver's tablet on HOST:PORT", "HOST:PORT"),
        Flag("--gnss", "gnss", "NMEA source: serial:///dev/ttyACM0, tcp://H:P, gpsd://H:P", "SRC"),
        Flag("--can", "can", "CAN bus as INTERFACE:CHANNEL, e.g. socketcan:can0", "BUS"),
        Flag("--can-dbc", "can_dbc", "DBC file the CAN frames decode with", "FILE"),
        Flag("--can-profile", "can_profile", "fms (J1939 trucks) or obd2 (vans)", "NAME"),
        Flag(
            "--telemetry-interval",
            "telemetry_interval_s",
            "seconds between telemetry samples",
            "S",
        ),
    ),
    "depot": (
        Flag("--id", "id", "depot id (letters, digits, _ . -)", "ID"),
        *_COMMON,
        Flag("--http", "http", "serve the sorter's terminal on HOST:PORT", "HOST:PORT"),
        Flag("--at", "at", "depot location (default: the first plan's depot)", "LAT,LON"),
    ),
}

_AGENT_HELP = {
    "cloud": "run the cloud coordinator",
    "vehicle": "run a vehicle gateway's agent",
    "depot": "run a depot sorter's agent and its terminal",
}


@dataclass(frozen=True)
class Delegated:
    """A command whose arguments and work live in ``module`` (``configure`` and ``run``)."""

    module: str
    help: str
    role: str
    """The install that brings the module (``pip install wayline[ROLE]``)."""

    def __call__(self, args: argparse.Namespace) -> int:
        return int(importlib.import_module(self.module).run(args))


#: Commands delegated to their package, imported only when they are the one being run.
DELEGATED: dict[str, Delegated] = {
    "resequence": Delegated(
        "edge.resequence_cli", "re-sequence one vehicle's stops from a Solomon file", "edge"
    ),
    "plan": Delegated(
        "cloud.plan_cli", "plan a Solomon/Homberger instance with the cloud planner", "cloud"
    ),
    "audit": Delegated(
        "cloud.audit_cli", "the coordinator's decision record: replay, show, list", "cloud"
    ),
    "admin": Delegated(
        "cloud.admin_cli", "create the coordinator's users, API tokens and device logins", "cloud"
    ),
    "demo": Delegated(
        "firmware_sim.demo", "run a delivery day on this machine and report it", "demo"
    ),
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line instead of usage plus error.

    A subparser given ``delegated`` lets that command's module declare its arguments, the
    first time the subparser parses or prints help: only then is the module imported.
    """

    def __init__(self, *args: Any, delegated: Delegated | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delegated = delegated
        self.configured = delegated is None

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def configure(self) -> None:
        """Import the delegated command's module and let it add its arguments (once)."""
        if self.configured or self.delegated is None:
            return
        try:
            module = importlib.import_module(self.delegated.module)
        except ModuleNotFoundError as exc:
            self.exit(
                2,
                f"{self.prog}: error: this installation lacks {exc.name} "
                f"(the command needs wayline[{self.delegated.role}])\n",
            )
        module.configure(self)
        self.configured = True

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self.configure()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self.configure()
        return super().format_help()

    def format_usage(self) -> str:
        self.configure()
        return super().format_usage()


class _Version(argparse.Action):
    """``--version``: the installed distribution's version, looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print Wayline's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("wayline")
        except PackageNotFoundError:
            text = "unknown (not installed as a distribution)"
        parser._print_message(f"wayline {text}\n", sys.stdout)
        parser.exit()


def _env_name(dest: str) -> str:
    return "WAYLINE_" + dest.upper()


def _add_agent(
    sub: Any, name: str, run: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        name,
        help=_AGENT_HELP[name],
        description=(
            f"{_AGENT_HELP[name].capitalize()}. Each setting comes from its flag, else its "
            "WAYLINE_* environment variable, else the TOML file of --config, else its default "
            "(docs/configuration.md)."
        ),
    )
    for flag in AGENT_FLAGS[name]:
        hint = f" [{_env_name(flag.dest)}]" if flag.setting else ""
        p.add_argument(
            flag.option, dest=flag.dest, metavar=flag.metavar, type=flag.type, help=flag.help + hint
        )
    p.set_defaults(func=run)
    return p


def build_parser(
    run_agent: Callable[[argparse.Namespace], int] | None = None,
) -> argparse.ArgumentParser:
    """The whole ``wayline`` parser; ``run_agent`` runs cloud, vehicle and depot."""
    parser = _Parser(
        prog="wayline",
        description="Wayline: edge-plus-cloud software for last-mile delivery fleets.",
    )
    parser.add_argument("--version", action=_Version)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="log lines as text or as JSON objects, one per line [WAYLINE_LOG_FORMAT]",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in AGENTS:
        _add_agent(sub, name, run_agent or _no_runner)
    for name, delegated in DELEGATED.items():
        p = sub.add_parser(name, help=delegated.help, delegated=delegated)
        p.set_defaults(func=delegated)
    return parser


def _no_runner(args: argparse.Namespace) -> int:
    raise RuntimeError(f"no runner for wayline {args.command}")
