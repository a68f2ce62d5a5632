"""The settings models of the agents (``wayline cloud``, ``vehicle``, ``depot``).

One pydantic-settings model per agent (:class:`CloudConfig`, :class:`VehicleConfig`,
:class:`DepotConfig`), validated whole before anything starts. Each setting comes from its
flag, else its ``WAYLINE_*`` environment variable, else the TOML file of ``--config``, else
its default: :func:`wayline.sources.load` reads them and turns a problem into one line.
:mod:`wayline.agents` converts a model into the library's settings dataclasses.
``docs/configuration.md`` documents every field in one table; a test keeps it complete.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from protocol.codec import DEFAULT_MAX_BYTES
from wayline.serve import parse_hostport
from wayline.sources import ENV_PREFIX, Origins, toml_file

__all__ = [
    "MODELS",
    "AgentConfig",
    "CloudConfig",
    "DashboardUserConfig",
    "DepotConfig",
    "VehicleConfig",
]

#: The largest payload a setting may allow: the broker's ``max_packet_size`` in deploy/.
MAX_PAYLOAD_CEILING = 1024 * 1024
#: What ``cloud.ops.hash_password`` makes: ``scrypt$<salt hex>$<digest hex>``.
_SCRYPT_HASH = re.compile(r"scrypt\$[0-9a-f]{32}\$[0-9a-f]{64}")


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
    http_max_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="largest HTTP request body, bytes (413 beyond)"
    )

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
        toml = toml_file()
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
    morning_every: float = Field(60.0, ge=0, le=3600, description="look for cut-offs every S s")
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
    webhook_workers: int = Field(4, ge=1, le=64, description="threads sending webhooks")
    dashboard_users: tuple[DashboardUserConfig, ...] = Field((), description="dashboard logins")
    login_max_failures: int = Field(5, ge=1, description="failed logins that lock a user name")
    login_lockout_s: int = Field(15 * 60, gt=0, description="failed-login window and lockout")
    trusted_origins: tuple[str, ...] = Field((), description="origins taken as the API's own")
    webhook_allow_private: bool = Field(False, description="webhooks to http and any address")
    device_policy: Literal["registered", "open"] | None = Field(
        None, description="registered: declared devices only; open: any; none: by env"
    )

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
    pairing_code: SecretStr | None = Field(None, description="code that pairs the tablet")


class DepotConfig(AgentConfig):
    """``wayline depot``: a depot sorter."""

    command: ClassVar[str] = "depot"

    id: str = Field(min_length=1, description="depot id, also its broker login")
    at: tuple[float, float] | None = Field(None, description="depot location LAT,LON")
    same_depot_m: float = Field(1000.0, gt=0, description="a plan's depot this close is ours")
    pairing_code: SecretStr | None = Field(None, description="code that pairs the terminal")

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


#: The settings model of each agent command.
MODELS: dict[str, type[AgentConfig]] = {
    "cloud": CloudConfig,
    "vehicle": VehicleConfig,
    "depot": DepotConfig,
}
