"""The three agents as ``wayline`` runs them: the library's settings built from a command's
config (:mod:`wayline.settings`, :mod:`wayline.sources`), the agent, its web app, until SIGTERM.

Each ``*_settings`` function imports only its own side: ``wayline vehicle`` and ``wayline
depot`` load the edge and the sync layer, never the coordinator. A value the library refuses
(a device id that cannot be a topic, secrets too weak for production, a policy file that
does not parse) becomes a :class:`ConfigError` naming the setting, before anything starts.

A setting the command's config leaves at its default is not passed on where the library has
a default of its own: the library's stays in force (the tests check the two agree).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, ValidationError

from wayline.errors import ConfigError
from wayline.serve import run_until_signal
from wayline.settings import AgentConfig, CloudConfig, DepotConfig, VehicleConfig

if TYPE_CHECKING:
    from cloud import CloudSettings
    from edge.depot import DepotSettings
    from edge.vehicle import VehicleSettings
    from sync import BrokerAddress, SyncSettings

__all__ = [
    "HARDWARE",
    "cloud_settings",
    "depot_settings",
    "run_cloud",
    "run_depot",
    "run_vehicle",
    "vehicle_settings",
]

log = logging.getLogger("wayline")


@contextmanager
def _refused_as(config: AgentConfig, name: str | None, *errors: type[Exception]) -> Iterator[None]:
    """A library error raised inside becomes a ConfigError in one line, naming where setting
    ``name`` came from (None: the library's message names the setting itself)."""
    try:
        yield
    except errors as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors(include_url=False)[0]
            what = str(first["msg"]).removeprefix("Value error, ")
        else:
            what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{config.origins.of(name)}: {what}" if name else what) from None


def _given(config: AgentConfig, **names: str) -> dict[str, Any]:
    """``{library field: value}`` of the settings given somewhere (flag, environment, file),
    for library fields named ``names`` (setting → field); the rest keep the library default."""
    unknown = set(names) - set(type(config).model_fields)
    assert not unknown, f"{type(config).__name__} has no settings {sorted(unknown)}"
    return {
        field: getattr(config, name)
        for name, field in names.items()
        if name in config.model_fields_set
    }


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def broker_address(config: AgentConfig, login: str) -> BrokerAddress:
    """The broker: its URL, with the login and certificate files the settings add. With a
    password and no user name, the user name is ``login``: the device id (deploy/acl)."""
    from sync import BrokerUrlError, parse_broker_url

    username = config.broker_username
    if username is None and config.broker_password is not None:
        username = login
    extra: dict[str, Any] = {
        "username": username,
        "password": config.broker_password.get_secret_value() if config.broker_password else None,
        "ca_file": str(config.broker_ca) if config.broker_ca else None,
        "cert_file": str(config.broker_cert) if config.broker_cert else None,
        "key_file": str(config.broker_key) if config.broker_key else None,
    }
    with _refused_as(config, "broker", BrokerUrlError):
        return parse_broker_url(config.broker, **{k: v for k, v in extra.items() if v})


def sync_settings(config: AgentConfig) -> SyncSettings:
    from sync import SyncSettings

    return SyncSettings(**_given(config, max_payload="max_payload"))


# --- cloud --------------------------------------------------------------------------------


def cloud_settings(config: CloudConfig) -> CloudSettings:
    """``CloudSettings`` (dispatch, operations, morning plan) from ``wayline cloud``'s config."""
    from cloud import HUB_ID, CloudSettings
    from cloud.dispatch import DispatchSettings
    from cloud.morning import MorningSettings
    from cloud.operations import OperationsSettings
    from cloud.ops import (
        DashboardUser,
        EtaSettings,
        OpsSettings,
        PolicyError,
        Role,
        SettingsError,
        SmtpChannel,
        WebhookChannel,
        load_policy,
    )

    secret = {
        "WAYLINE_ENV": config.env,
        "WAYLINE_SESSION_SECRET": config.session_secret.get_secret_value(),
        "WAYLINE_TOKEN_PEPPER": config.token_pepper.get_secret_value(),
        "WAYLINE_WEBHOOK_SECRET": config.webhook_secret.get_secret_value(),
        "WAYLINE_SESSION_MAX_AGE_S": str(config.session_max_age_s),
        "WAYLINE_HTTP_MAX_BODY_BYTES": str(config.http_max_body_bytes),
        "WAYLINE_LOGIN_MAX_FAILURES": str(config.login_max_failures),
        "WAYLINE_LOGIN_LOCKOUT_S": str(config.login_lockout_s),
        "WAYLINE_TRUSTED_ORIGINS": ",".join(config.trusted_origins),
    }
    with _refused_as(config, None, SettingsError):
        ops = OpsSettings.from_env(secret)
    if config.policy is not None:
        with _refused_as(config, "policy", PolicyError):
            load_policy(config.policy)
    channels: list[Any] = []
    if config.smtp_host:
        assert config.smtp_sender is not None  # the config's own check
        channels.append(
            SmtpChannel(
                config.smtp_host,
                config.smtp_port,
                config.smtp_sender,
                starttls=config.smtp_starttls,
                username=config.smtp_username,
                password=config.smtp_password.get_secret_value() if config.smtp_password else None,
            )
        )
    if config.notify_webhook_url:
        channels.append(
            WebhookChannel(
                ops.webhook_secret,
                url=config.notify_webhook_url,
                **_given(config, webhook_timeout_s="timeout_s"),
            )
        )
    users = tuple(
        DashboardUser(u.name, u.password_hash, tuple(Role(r) for r in u.roles), u.carrier_id)
        for u in config.dashboard_users
    )
    with _refused_as(config, "timezone", ValueError):
        eta = EtaSettings(
            **_given(
                config,
                timezone="timezone",
                eta_threshold_min="threshold_min",
                quiet_start_hour="quiet_start_hour",
                quiet_end_hour="quiet_end_hour",
            )
        )
    with _refused_as(config, None, SettingsError):
        operations = OperationsSettings(
            ops=ops,
            policy_path=config.policy,
            eta=eta,
            channels=tuple(channels),
            dashboard_users=users,
            **_given(
                config,
                lateness_threshold_s="lateness_threshold_s",
                offline_threshold_min="offline_threshold_min",
                webhook_timeout_s="webhook_timeout_s",
                webhook_max_attempts="webhook_max_attempts",
                webhook_backoff_base_s="webhook_backoff_base_s",
                webhook_backoff_max_s="webhook_backoff_max_s",
                webhook_workers="webhook_workers",
                webhook_allow_private="webhook_allow_private",
            ),
        )
    with _refused_as(config, "cutoff", ValueError):
        morning = MorningSettings(
            tick_s=config.morning_every or None,
            **_given(config, timezone="default_timezone", cutoff="default_cutoff"),
        )
    return CloudSettings(
        db_path=config.db,
        broker=broker_address(config, HUB_ID),
        sync=sync_settings(config),
        dispatch=DispatchSettings(
            **_given(
                config,
                plan_time_limit="time_limit_s",
                plan_iterations="iterations",
                plan_seed="seed",
                plan_workers="workers",
            )
        ),
        rebalance_interval_s=config.rebalance_every or None,
        operations=operations,
        morning=morning,
        device_policy=config.device_policy
        or ("open" if config.env == "development" else "registered"),
    )


def run_cloud(config: CloudConfig, clock: Callable[[], float] = time.time) -> int:
    """The coordinator, and its API when ``http`` is set, until SIGTERM."""
    settings = cloud_settings(config)
    from cloud import Coordinator, create_api

    coordinator = Coordinator(settings, clock=clock)
    log.info("cloud coordinator: store %s, broker %s", config.db, settings.broker.url)  # type: ignore[union-attr]
    return run_until_signal(
        coordinator.start, coordinator.stop, lambda: create_api(coordinator), config.http
    )


# --- vehicle ------------------------------------------------------------------------------

#: ``wayline vehicle``'s settings of the gateway's hardware → ``HardwareSettings`` fields.
HARDWARE = {
    "gnss": "gnss",
    "can": "can",
    "can_dbc": "can_dbc",
    "can_profile": "can_profile",
    "telemetry_interval_s": "telemetry_interval_s",
    "hardware_reconnect_min_s": "reconnect_min_s",
    "hardware_reconnect_max_s": "reconnect_max_s",
}


def vehicle_settings(config: VehicleConfig) -> VehicleSettings:
    """``VehicleSettings`` (and its ``HardwareSettings``) from ``wayline vehicle``'s config."""
    from edge.errors import SettingsError
    from edge.hardware.settings import HardwareSettings
    from edge.vehicle import VehicleSettings

    try:
        hardware = HardwareSettings(**_given(config, **HARDWARE))
    except SettingsError as exc:
        field, _, what = str(exc).removeprefix("hardware.").partition(":")
        name = {v: k for k, v in HARDWARE.items()}.get(field.split()[0])
        raise ConfigError(
            f"{config.origins.of(name)}: {what.strip()}" if name else str(exc)
        ) from None
    broker = broker_address(config, config.id)
    with _refused_as(config, "id", SettingsError):
        return VehicleSettings(
            vehicle_id=config.id,
            db_path=config.db,
            broker=broker,
            sync=sync_settings(config),
            hardware=hardware,
            pairing_code=_secret(config.pairing_code),
            **_given(
                config,
                resequence_budget_s="resequence_budget_s",
                delay_threshold_s="delay_threshold_s",
                http_max_body_bytes="http_max_body_bytes",
            ),
        )


def run_vehicle(config: VehicleConfig) -> int:
    """A van's agent, and the driver's tablet when ``http`` is set, until SIGTERM."""
    settings = vehicle_settings(config)
    from edge.vehicle import VehicleAgent

    agent = VehicleAgent(settings)
    log.info("vehicle %s: store %s, broker %s", config.id, config.db, settings.broker.url)  # type: ignore[union-attr]
    return run_until_signal(agent.start, agent.stop, lambda: _tablet(agent), config.http)


def _tablet(agent: Any) -> Any:
    """The driver's tablet app (FastAPI loads only when it is served)."""
    from edge.tablet_api import create_tablet_app

    return create_tablet_app(agent)


# --- depot --------------------------------------------------------------------------------


def depot_settings(config: DepotConfig) -> DepotSettings:
    """``DepotSettings`` from ``wayline depot``'s config."""
    from edge.depot import DepotSettings
    from edge.errors import SettingsError

    broker = broker_address(config, config.id)
    with _refused_as(config, "id", SettingsError):
        return DepotSettings(
            depot_id=config.id,
            db_path=config.db,
            broker=broker,
            sync=sync_settings(config),
            location=config.at,
            pairing_code=_secret(config.pairing_code),
            **_given(
                config, same_depot_m="same_depot_m", http_max_body_bytes="http_max_body_bytes"
            ),
        )


def run_depot(config: DepotConfig) -> int:
    """A depot's agent, and the sorter's terminal when ``http`` is set, until SIGTERM."""
    settings = depot_settings(config)
    from edge.depot import DepotAgent

    agent = DepotAgent(settings)
    log.info("depot %s: store %s, broker %s", config.id, config.db, settings.broker.url)  # type: ignore[union-attr]
    return run_until_signal(agent.start, agent.stop, lambda: _terminal(agent), config.http)


def _terminal(agent: Any) -> Any:
    """The sorter's terminal app (FastAPI loads only when it is served)."""
    from edge.depot.web import create_terminal_app

    return create_terminal_app(agent)
