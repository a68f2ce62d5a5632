"""Settings of the agents (``wayline cloud``, ``vehicle``, ``depot``): flags, environment, file.

Each setting is looked up in this order, and the first place that has it wins:

1. its command-line flag (``--rebalance-every 10``);
2. its environment variable, ``WAYLINE_`` and the setting's name in capitals
   (``WAYLINE_REBALANCE_EVERY=10``): how a systemd unit's ``EnvironmentFile`` or a
   container's ``--env-file`` reaches it, and the place for secrets;
3. the TOML file named by ``--config`` or ``WAYLINE_CONFIG`` (``rebalance_every = 10``);
4. its default.

One pydantic-settings model per agent (:class:`CloudConfig`, :class:`VehicleConfig`,
:class:`DepotConfig`) is validated whole before anything starts. :func:`load` turns the first
problem (a key the file should not have, a value of the wrong type, a required setting given
nowhere) into a :class:`ConfigError`: one line naming the setting and where its value came
from. :mod:`wayline.agents` converts a model into the library's settings dataclasses.
``docs/configuration.md`` documents every field in one table; a test keeps it complete.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings import SettingsError as SourceError

from protocol.codec import DEFAULT_MAX_BYTES
from wayline.errors import ConfigError
from wayline.parser import AGENT_FLAGS, TOP_FLAGS
from wayline.serve import parse_hostport

__all__ = [
    "ENV_PREFIX",
    "MODELS",
    "AgentConfig",
    "CloudConfig",
    "ConfigError",
    "DashboardUserConfig",
    "DepotConfig",
    "Origins",
    "VehicleConfig",
    "load",
]

ENV_PREFIX = "WAYLINE_"
#: The environment variable naming the TOML file when ``--config`` is not given.
CONFIG_VAR = "WAYLINE_CONFIG"
#: The largest payload a setting may allow: the broker's ``max_packet_size`` in deploy/.
MAX_PAYLOAD_CEILING = 1024 * 1024

#: What ``cloud.ops.hash_password`` makes: ``scrypt$<salt hex>$<digest hex>``.
_SCRYPT_HASH = re.compile(r"scrypt\$[0-9a-f]{32}\$[0-9a-f]{64}")

_TOML_FILE: ContextVar[Path | None] = ContextVar("wayline_toml_file", default=None)


def env_var(name: str) -> str:
    """The environment variable of setting ``name``."""
    return ENV_PREFIX + name.upper()


class Origins:
    """Where each setting of one load came from: a flag, the environment, or the file."""

    def __init__(
        self,
        command: str,
        flags: Mapping[str, Any] | None = None,
        file: Path | None = None,
        file_keys: frozenset[str] = frozenset(),
    ) -> None:
        self.command = command
        self.flags = dict(flags or {})
        self.file = file
        self.file_keys = file_keys
        self.options = {f.dest: f.option for f in AGENT_FLAGS.get(command, ()) if f.setting}
        self.options.update(TOP_FLAGS)

    def of(self, name: str) -> str:
        """The place the value of setting ``name`` came from, as a user would look for it."""
        if name in self.flags and name in self.options:
            return self.options[name]
        if _in_environment(env_var(name)):
            return env_var(name)
        if self.file is not None and name in self.file_keys:
            return f"{name} in {self.file}"
        return f"{name} (default)"

    def ways(self, name: str, *, with_file: bool = True) -> str:
        """Every way to give setting ``name``, for a message saying it is missing."""
        ways = [self.options[name]] if name in self.options else []
        ways.append(env_var(name))
        if not with_file:
            return ", ".join(ways)
        where = str(self.file) if self.file is not None else "the --config file"
        return ", ".join(ways) + f" or {name} in {where}"


# --- the models -----------------------------------------------------------------------------


class AgentConfig(BaseSettings):
    """Settings every agent has: where the broker is, where the store is, how to log."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
    )
    command: ClassVar[str] = ""
    _origins: Origins | None = PrivateAttr(default=None)

    broker: str = Field(description="MQTT broker URL, mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT]")
    broker_username: str | None = Field(
        None, description="broker login; default with a password: the device id, or cloud"
    )
    broker_password: SecretStr | None = Field(None, description="broker password (a secret)")
    broker_ca: FilePath | None = Field(None, description="PEM of the CA the broker's cert is from")
    broker_cert: FilePath | None = Field(None, description="PEM client certificate")
    broker_key: FilePath | None = Field(None, description="PEM key of the client certificate")
    db: Path = Field(description="the SQLite store")
    http: str | None = Field(None, description="HOST:PORT the web app listens on")
    max_payload: int = Field(
        DEFAULT_MAX_BYTES, ge=1024, le=MAX_PAYLOAD_CEILING, description="largest message, bytes"
    )
    log_format: Literal["text", "json"] = Field("text", description="log lines as text or JSON")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (the init arguments), then the environment, then the TOML file if any."""
        toml = _TOML_FILE.get()
        if toml is None:
            return (init_settings, env_settings)
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml))

    @field_validator("http")
    @classmethod
    def _hostport(cls, value: str | None) -> str | None:
        if value is not None:
            parse_hostport(value)
        return value

    @property
    def origins(self) -> Origins:
        """Where each setting came from (for messages that name it)."""
        return self._origins or Origins(self.command)


class DashboardUserConfig(BaseModel):
    """Someone who logs in to the coordinator's dashboard."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, description="login name")
    password_hash: str = Field(
        description="scrypt hash (`wayline admin hash-password`), never the password"
    )
    roles: tuple[Literal["ops", "viewer", "integration", "carrier"], ...] = Field(
        ("viewer",), min_length=1, description="what the user may do"
    )
    carrier_id: str | None = Field(None, description="the carrier a carrier user sees")

    @field_validator("password_hash")
    @classmethod
    def _a_hash(cls, value: str) -> str:
        if not _SCRYPT_HASH.fullmatch(value):
            raise ValueError(
                "must be the scrypt hash `wayline admin hash-password` prints, never a password"
            )
        return value


class CloudConfig(AgentConfig):
    """``wayline cloud``: the coordinator."""

    command: ClassVar[str] = "cloud"

    rebalance_every: float = Field(30.0, ge=0, description="rebalancing every S s; 0: on request")
    plan_iterations: int = Field(1000, ge=1, description="planner iterations per solve")
    plan_time_limit: float = Field(60.0, gt=0, description="planner time limit per solve, s")
    plan_seed: int = Field(7, ge=0, description="planner seed (decisions replay with it)")
    plan_workers: int = Field(1, ge=1, le=64, description="regions solved at once")
    env: Literal["development", "test", "staging", "production"] = Field(
        "production", description="development alone may run without secrets"
    )
    session_secret: SecretStr = Field(SecretStr(""), description="signs dashboard sessions")
    token_pepper: SecretStr = Field(SecretStr(""), description="peppers API token hashes")
    webhook_secret: SecretStr = Field(SecretStr(""), description="signs webhook deliveries")
    session_max_age_s: int = Field(12 * 3600, gt=0, description="dashboard session lifetime")
    policy: FilePath | None = Field(None, description="exception policy file")
    timezone: str = Field("UTC", description="IANA time zone of depots and notifications")
    cutoff: str = Field(
        "06:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="morning plan cut-off"
    )
    morning_every: float = Field(0.0, ge=0, le=3600, description="look for cut-offs every S s")
    eta_threshold_min: float = Field(15.0, gt=0, description="ETA shift that tells a customer")
    quiet_start_hour: int = Field(21, ge=0, le=23, description="no notifications from this hour")
    quiet_end_hour: int = Field(7, ge=0, le=23, description="... until this hour")
    lateness_threshold_s: int = Field(900, gt=0, description="late by this much: an exception")
    offline_threshold_min: float = Field(30.0, gt=0, description="offline this long: exception")
    smtp_host: str | None = Field(None, description="SMTP server for e-mail notifications")
    smtp_port: int = Field(587, gt=0, lt=65536, description="SMTP port")
    smtp_sender: str | None = Field(None, description="From address of notifications")
    smtp_starttls: bool = Field(True, description="STARTTLS before logging in")
    smtp_username: str | None = Field(None, description="SMTP login")
    smtp_password: SecretStr | None = Field(None, description="SMTP password (a secret)")
    notify_webhook_url: str | None = Field(None, description="webhook for recipients without one")
    webhook_timeout_s: float = Field(5.0, gt=0, description="webhook request timeout")
    webhook_max_attempts: int = Field(18, ge=1, le=100, description="tries per webhook event")
    webhook_backoff_base_s: float = Field(5.0, gt=0, description="wait after a first failure")
    webhook_backoff_max_s: float = Field(6 * 3600.0, gt=0, description="longest wait")
    dashboard_users: tuple[DashboardUserConfig, ...] = Field((), description="dashboard logins")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("notify_webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CloudConfig:
        if self.smtp_host and not self.smtp_sender:
            raise ValueError("smtp_host needs smtp_sender (the From address)")
        if self.smtp_password is not None and not self.smtp_username:
            raise ValueError("smtp_password needs smtp_username")
        names = [u.name for u in self.dashboard_users]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"dashboard user {twice[0]!r} is listed twice")
        return self


class VehicleConfig(AgentConfig):
    """``wayline vehicle``: a van's gateway."""

    command: ClassVar[str] = "vehicle"

    id: str = Field(min_length=1, description="vehicle id, also its broker login")
    gnss: str | None = Field(None, description="NMEA source of position fixes")
    can: str | None = Field(None, description="python-can bus INTERFACE:CHANNEL")
    can_dbc: FilePath | None = Field(None, description="DBC file the CAN frames decode with")
    can_profile: Literal["fms", "obd2"] = Field("fms", description="FMS J1939 or OBD-II PIDs")
    telemetry_interval_s: float = Field(1.0, ge=0.05, le=3600, description="s between samples")
    hardware_reconnect_min_s: float = Field(
        1.0, gt=0, le=3600, description="first wait before reopening GNSS or CAN"
    )
    hardware_reconnect_max_s: float = Field(30.0, gt=0, le=3600, description="longest such wait")
    resequence_budget_s: float = Field(0.2, gt=0, le=30, description="re-sequencer time budget")
    delay_threshold_s: int = Field(300, gt=0, description="re-sequence when this late")


class DepotConfig(AgentConfig):
    """``wayline depot``: a depot sorter."""

    command: ClassVar[str] = "depot"

    id: str = Field(min_length=1, description="depot id, also its broker login")
    at: tuple[float, float] | None = Field(None, description="depot location LAT,LON")
    same_depot_m: float = Field(1000.0, gt=0, description="a plan's depot this close is ours")

    @field_validator("at", mode="before")
    @classmethod
    def _latlon(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = value.split(",")
            if len(parts) != 2:
                raise ValueError(f"expected LAT,LON such as 52.37,4.89, got {value!r}")
            return tuple(p.strip() for p in parts)
        return value

    @field_validator("at")
    @classmethod
    def _on_earth(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not (-90 <= value[0] <= 90 and -180 <= value[1] <= 180):
            raise ValueError(f"latitude must be within ±90 and longitude ±180, got {value}")
        return value


C = TypeVar("C", bound=AgentConfig)

#: The settings model of each agent command.
MODELS: dict[str, type[AgentConfig]] = {
    "cloud": CloudConfig,
    "vehicle": VehicleConfig,
    "depot": DepotConfig,
}


# --- loading ------------------------------------------------------------------------------


def _in_environment(var: str) -> bool:
    return any(k.upper() == var and v != "" for k, v in os.environ.items())


def config_file(given: str | Path | None) -> Path | None:
    """The TOML file: ``--config``, else ``$WAYLINE_CONFIG``, else none."""
    if given is not None:
        path, named = Path(given), f"--config {given}"
    elif os.environ.get(CONFIG_VAR):
        path, named = Path(os.environ[CONFIG_VAR]), f"{CONFIG_VAR}={os.environ[CONFIG_VAR]}"
    else:
        return None
    if not path.is_file():
        raise ConfigError(f"{named}: no such file")
    return path


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


def load(model: type[C], flags: Mapping[str, Any], config: str | Path | None = None) -> C:
    """The settings of one agent from ``flags`` (None: not given), the environment and the
    TOML file ``config`` (or ``$WAYLINE_CONFIG``); raises :class:`ConfigError`."""
    path = config_file(config)
    given = {k: v for k, v in flags.items() if v is not None}
    origins = Origins(
        model.command,
        given,
        path,
        frozenset(_read_toml(path)) if path is not None else frozenset(),
    )
    token = _TOML_FILE.set(path)
    try:
        settings = model(**given)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, model, origins)) from None
    except SourceError as exc:
        raise ConfigError(_describe_source(exc)) from None
    finally:
        _TOML_FILE.reset(token)
    settings._origins = origins
    return settings


def _describe(exc: ValidationError, model: type[AgentConfig], origins: Origins) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    loc = [str(p) for p in first["loc"]]
    message = str(first["msg"]).removeprefix("Value error, ")
    if not loc:  # a check of the whole model: its message names the settings
        return message + more
    name, inner = loc[0], loc[1:]
    missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing" and len(e["loc"]) == 1]
    if len(missing) > 1 and len(missing) == len(errors):
        order = list(origins.options) + sorted(model.model_fields)
        missing.sort(key=order.index)
        where = origins.file if origins.file is not None else "the --config file"
        ways = ", ".join(f"{m} ({origins.ways(m, with_file=False)})" for m in missing)
        return f"missing settings {ways}: give each as a flag, a variable or a key in {where}"
    if first["type"] == "missing" and not inner:
        return f"missing setting {name}: give {origins.ways(name)}{more}"
    if first["type"] == "extra_forbidden" and not inner:
        near = difflib.get_close_matches(name, list(model.model_fields), n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        where = origins.file if origins.file is not None else "the settings"
        return f"{where}: unknown setting {name}{hint}{more}"
    place = origins.of(name)
    if inner:
        place += " (" + ".".join(inner) + ")"
    shown = first.get("input")
    hidden = _is_secret(model, name) or "password_hash" in inner
    if hidden or shown is None or isinstance(shown, dict | list | tuple):
        return f"{place}: {message}{more}"
    return f"{place}: {message} (got {shown!r:.60}){more}"


def _is_secret(model: type[AgentConfig], name: str) -> bool:
    """Whether setting ``name`` holds a secret, whose value no message may show."""
    field = model.model_fields.get(name)
    return field is not None and "SecretStr" in str(field.annotation)


def _describe_source(exc: SourceError) -> str:
    m = re.search(r'field "([^"]+)"', str(exc))
    if m is None:
        return str(exc)
    cause = f": {exc.__cause__}" if exc.__cause__ else ""
    return f"{env_var(m.group(1))}: cannot parse the value as JSON{cause}"
