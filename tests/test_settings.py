"""The agents' settings: flags over ``WAYLINE_*`` variables over the TOML file over defaults,
one line for a bad setting, the library's dataclasses built from them, and the one table of
``docs/configuration.md`` that documents them all."""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from wayline.agents import HARDWARE, cloud_settings, depot_settings, vehicle_settings
from wayline.errors import ConfigError
from wayline.parser import AGENT_FLAGS, TOP_FLAGS
from wayline.settings import (
    MODELS,
    CloudConfig,
    DashboardUserConfig,
    DepotConfig,
    VehicleConfig,
)
from wayline.sources import env_var, load

ROOT = Path(__file__).resolve().parents[1]
HASH = "scrypt$" + "ab" * 16 + "$" + "cd" * 32
SECRET = "x" * 40


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``WAYLINE_*`` variable of the test run leaks into a load."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("WAYLINE_"):
            monkeypatch.delenv(name)


def toml(tmp_path: Path, text: str, name: str = "settings.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def vehicle(tmp_path: Path, **flags: Any) -> VehicleConfig:
    base = {"id": "van-1", "broker": "mqtt://127.0.0.1:1883", "db": str(tmp_path / "v.db")}
    return load(VehicleConfig, base | flags)


# --- precedence -----------------------------------------------------------------------------


def test_a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = toml(
        tmp_path,
        'broker = "mqtt://file:1883"\ndb = "file.db"\nrebalance_every = 1.0\n'
        "plan_iterations = 11\nplan_time_limit = 12.0\n",
    )
    monkeypatch.setenv("WAYLINE_REBALANCE_EVERY", "2")
    monkeypatch.setenv("WAYLINE_PLAN_ITERATIONS", "22")
    c = load(CloudConfig, {"rebalance_every": "3", "plan_iterations": None}, path)
    assert c.rebalance_every == 3.0  # flag
    assert c.plan_iterations == 22  # environment (the flag was not given)
    assert c.plan_time_limit == 12.0  # file
    assert c.plan_seed == 7  # default
    assert c.broker == "mqtt://file:1883" and c.db == Path("file.db")
    assert c.origins.of("rebalance_every") == "--rebalance-every"
    assert c.origins.of("plan_iterations") == "WAYLINE_PLAN_ITERATIONS"
    assert c.origins.of("plan_time_limit") == f"plan_time_limit in {path}"


def test_wayline_config_names_the_file_and_config_beats_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = toml(tmp_path, 'id = "from-a"\nbroker = "mqtt://a"\ndb = "a.db"\n', "a.toml")
    b = toml(tmp_path, 'id = "from-b"\nbroker = "mqtt://b"\ndb = "b.db"\n', "b.toml")
    monkeypatch.setenv("WAYLINE_CONFIG", str(a))
    assert load(VehicleConfig, {}).id == "from-a"
    assert load(VehicleConfig, {}, b).id == "from-b"


def test_an_empty_variable_counts_as_not_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYLINE_HTTP", "")
    monkeypatch.setenv("WAYLINE_BROKER_PASSWORD", "")
    v = vehicle(tmp_path)
    assert v.http is None and v.broker_password is None


def test_the_log_format_comes_from_the_flag_before_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYLINE_LOG_FORMAT", "json")
    assert vehicle(tmp_path).log_format == "json"
    assert vehicle(tmp_path, log_format="text").log_format == "text"
    with pytest.raises(ConfigError, match=r"^--log-format: "):
        vehicle(tmp_path, log_format="xml")


# --- bad input: one line naming the setting and where it came from -------------------------


def test_an_unknown_key_in_the_file_is_named_with_the_file(tmp_path: Path) -> None:
    path = toml(tmp_path, 'broker = "mqtt://x"\ndb = "c.db"\nrebalance_evry = 5\n')
    with pytest.raises(ConfigError) as err:
        load(CloudConfig, {}, path)
    assert str(err.value) == (
        f"{path}: unknown setting rebalance_evry (did you mean rebalance_every?)"
    )


def test_a_key_of_another_command_is_unknown(tmp_path: Path) -> None:
    path = toml(tmp_path, 'id = "van-1"\nbroker = "mqtt://x"\ndb = "v.db"\npolicy = "p.toml"\n')
    with pytest.raises(ConfigError, match=r"unknown setting policy"):
        load(VehicleConfig, {}, path)


def test_a_wrong_type_in_the_file_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = toml(tmp_path, 'broker = "mqtt://x"\ndb = "c.db"\nrebalance_every = "soon"\n')
    with pytest.raises(ConfigError) as err:
        load(CloudConfig, {}, path)
    message = str(err.value)
    assert message.startswith(f"rebalance_every in {path}: ")
    assert "valid number" in message and "'soon'" in message and "\n" not in message


def test_a_wrong_type_in_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYLINE_TELEMETRY_INTERVAL_S", "often")
    with pytest.raises(ConfigError, match=r"^WAYLINE_TELEMETRY_INTERVAL_S: .*'often'"):
        vehicle(tmp_path)


def test_a_value_out_of_range_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--max-payload: .*greater than or equal to 1024"):
        vehicle(tmp_path, max_payload="10")


def test_a_missing_required_setting_says_every_way_to_give_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = toml(tmp_path, 'broker = "mqtt://x"\ndb = "v.db"\n')
    with pytest.raises(ConfigError) as err:
        load(VehicleConfig, {}, path)
    assert str(err.value) == f"missing setting id: give --id, WAYLINE_ID or id in {path}"
    monkeypatch.setenv("WAYLINE_ID", "van-7")
    assert load(VehicleConfig, {}, path).id == "van-7"


def test_several_missing_settings_are_named_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(DepotConfig, {})
    message = str(err.value)
    assert message.startswith("missing settings id (--id, WAYLINE_ID), broker (--broker, ")
    assert "db (--db, WAYLINE_DB)" in message and "\n" not in message


def test_a_file_that_is_not_toml_or_not_there_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = toml(tmp_path, "broker = mqtt://x\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: not valid TOML: .*line 1"):
        load(CloudConfig, {}, path)
    with pytest.raises(ConfigError, match=r"^--config /nowhere.toml: no such file$"):
        load(CloudConfig, {}, "/nowhere.toml")
    monkeypatch.setenv("WAYLINE_CONFIG", "/nowhere.toml")
    with pytest.raises(ConfigError, match=r"^WAYLINE_CONFIG=/nowhere.toml: no such file$"):
        load(CloudConfig, {})


def test_a_bad_secret_is_named_but_never_shown(tmp_path: Path) -> None:
    path = toml(tmp_path, 'broker = "mqtt://x"\ndb = "c.db"\nsession_secret = 123456789\n')
    with pytest.raises(ConfigError) as err:
        load(CloudConfig, {}, path)
    assert str(err.value).startswith(f"session_secret in {path}: ")
    assert "123456789" not in str(err.value)


def test_http_and_at_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"^--http: .*HOST:PORT"):
        vehicle(tmp_path, http="8080")
    depot = {"id": "d-1", "broker": "mqtt://x", "db": "d.db"}
    assert load(DepotConfig, depot | {"at": "52.37, 4.89"}).at == (52.37, 4.89)
    with pytest.raises(ConfigError, match=r"^--at: .*LAT,LON"):
        load(DepotConfig, depot | {"at": "52.37"})
    with pytest.raises(ConfigError, match=r"^--at: .*latitude"):
        load(DepotConfig, depot | {"at": "95,4"})
    path = toml(tmp_path, 'id = "d-1"\nbroker = "mqtt://x"\ndb = "d.db"\nat = [52.0, 5.0]\n')
    assert load(DepotConfig, {}, path).at == (52.0, 5.0)
    monkeypatch.setenv("WAYLINE_AT", "51.5,-0.12")
    assert load(DepotConfig, {}, path).at == (51.5, -0.12)


def test_a_file_setting_must_name_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--can-dbc: .*file"):
        vehicle(tmp_path, can_dbc=str(tmp_path / "none.dbc"))


# --- the coordinator's settings --------------------------------------------------------------

CLOUD_TOML = f"""
broker = "mqtt://127.0.0.1:1883"
db = "cloud.db"
env = "production"
session_secret = "{SECRET}a"
token_pepper = "{SECRET}b"
webhook_secret = "{SECRET}c"
rebalance_every = 0
plan_iterations = 50
plan_time_limit = 5.0
plan_workers = 2
max_payload = 32768
timezone = "Europe/Amsterdam"
cutoff = "05:30"
morning_every = 30
quiet_start_hour = 22
lateness_threshold_s = 600
smtp_host = "smtp.example.com"
smtp_port = 2525
smtp_sender = "deliveries@example.com"
smtp_username = "deliveries"
smtp_password = "smtp-password"
notify_webhook_url = "https://hooks.example.com/wayline"
webhook_max_attempts = 3

[[dashboard_users]]
name = "ops-lead"
password_hash = "{HASH}"
roles = ["ops"]

[[dashboard_users]]
name = "carrier-x"
password_hash = "{HASH}"
roles = ["carrier"]
carrier_id = "cx"
"""


def test_the_cloud_config_becomes_cloud_settings(tmp_path: Path) -> None:
    from cloud import CloudSettings
    from cloud.ops import Role, SmtpChannel, WebhookChannel

    policy = tmp_path / "policy.toml"
    policy.write_text((ROOT / "cloud" / "ops" / "default_policy.toml").read_text())
    config = load(CloudConfig, {"policy": str(policy)}, toml(tmp_path, CLOUD_TOML))
    s = cloud_settings(config)
    assert isinstance(s, CloudSettings)
    assert s.rebalance_interval_s is None  # 0: on request only
    assert (s.dispatch.iterations, s.dispatch.time_limit_s, s.dispatch.workers) == (50, 5.0, 2)
    assert s.dispatch.seed == 7
    assert s.sync.max_payload == 32768
    assert s.broker is not None and (s.broker.host, s.broker.port) == ("127.0.0.1", 1883)
    ops = s.operations
    assert ops.policy_path == policy
    assert ops.ops is not None and ops.ops.env == "production"
    assert ops.ops.session_secret == SECRET + "a"
    assert ops.eta is not None
    assert (ops.eta.timezone, ops.eta.quiet_start_hour, ops.eta.quiet_end_hour) == (
        "Europe/Amsterdam",
        22,
        7,
    )
    assert ops.lateness_threshold_s == 600 and ops.webhook_max_attempts == 3
    assert (s.morning.default_timezone, s.morning.default_cutoff, s.morning.tick_s) == (
        "Europe/Amsterdam",
        "05:30",
        30.0,
    )
    smtp = next(c for c in ops.channels if isinstance(c, SmtpChannel))
    assert (smtp.host, smtp.port, smtp.sender, smtp.username, smtp.password) == (
        "smtp.example.com",
        2525,
        "deliveries@example.com",
        "deliveries",
        "smtp-password",
    )
    hook = next(c for c in ops.channels if isinstance(c, WebhookChannel))
    assert hook.url == "https://hooks.example.com/wayline" and hook.secret == SECRET + "c"
    users = {u.name: u for u in ops.dashboard_users}
    assert users["ops-lead"].roles == (Role.OPS,) and users["ops-lead"].password_hash == HASH
    assert users["carrier-x"].carrier_id == "cx"


def test_the_cloud_defaults_keep_the_librarys(tmp_path: Path) -> None:
    from cloud.dispatch import DispatchSettings
    from cloud.morning import MorningSettings
    from cloud.operations import OperationsSettings

    s = cloud_settings(
        load(CloudConfig, {"broker": "mqtt://x", "db": "c.db", "env": "development"})
    )
    assert s.dispatch == DispatchSettings()
    assert s.rebalance_interval_s == 30.0  # the command's own default: triggers are worked
    # and so is the morning plan: a coordinator plans each depot's day by itself
    assert s.morning == MorningSettings(tick_s=60.0)
    library = OperationsSettings()
    for name in ("lateness_threshold_s", "webhook_max_attempts", "webhook_backoff_max_s"):
        assert getattr(s.operations, name) == getattr(library, name)
    assert s.operations.channels == () and s.operations.dashboard_users == ()


def test_production_without_secrets_names_the_variable(tmp_path: Path) -> None:
    config = load(CloudConfig, {"broker": "mqtt://x", "db": "c.db"})
    with pytest.raises(ConfigError) as err:
        cloud_settings(config)
    assert str(err.value).startswith("unsafe or invalid settings: WAYLINE_SESSION_SECRET is empty")


def test_dashboard_users_from_the_environment_and_their_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = {"broker": "mqtt://x", "db": "c.db"}
    users = [{"name": "ops", "password_hash": HASH, "roles": ["ops", "viewer"]}]
    monkeypatch.setenv("WAYLINE_DASHBOARD_USERS", json.dumps(users))
    assert load(CloudConfig, base).dashboard_users[0].roles == ("ops", "viewer")
    monkeypatch.setenv("WAYLINE_DASHBOARD_USERS", "[{not json")
    with pytest.raises(ConfigError, match=r"^WAYLINE_DASHBOARD_USERS: cannot parse"):
        load(CloudConfig, base)
    monkeypatch.delenv("WAYLINE_DASHBOARD_USERS")
    plain = toml(tmp_path, '[[dashboard_users]]\nname = "ops"\npassword_hash = "hunter2"\n')
    with pytest.raises(ConfigError) as err:
        load(CloudConfig, base, plain)
    assert str(err.value) == (
        f"dashboard_users in {plain} (0.password_hash): must be the scrypt hash "
        "`wayline admin hash-password` prints, never a password"
    )
    twice = toml(
        tmp_path,
        "".join(f'[[dashboard_users]]\nname = "a"\npassword_hash = "{HASH}"\n' for _ in "12"),
    )
    with pytest.raises(ConfigError, match=r"dashboard user 'a' is listed twice"):
        load(CloudConfig, base, twice)


def test_a_hash_from_wayline_admin_is_a_dashboard_users_hash() -> None:
    from cloud.ops import hash_password

    user = DashboardUserConfig(name="ops", password_hash=hash_password("a long passphrase"))
    assert user.roles == ("viewer",)


def test_smtp_needs_a_sender_and_a_zone_must_exist(tmp_path: Path) -> None:
    base = {"broker": "mqtt://x", "db": "c.db"}
    with pytest.raises(ConfigError, match=r"smtp_host needs smtp_sender"):
        load(CloudConfig, base | {"smtp_host": "mail"})
    with pytest.raises(ConfigError, match=r"^--timezone: unknown IANA time zone 'Mars/Base'"):
        load(CloudConfig, base | {"timezone": "Mars/Base"})
    with pytest.raises(ConfigError, match=r"^--cutoff: "):
        load(CloudConfig, base | {"cutoff": "25:00"})


def test_a_policy_that_does_not_parse_stops_the_start(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[[rules]\n")
    config = load(
        CloudConfig, {"broker": "mqtt://x", "db": "c.db", "env": "development", "policy": policy}
    )
    with pytest.raises(ConfigError, match=r"^--policy: "):
        cloud_settings(config)


# --- the edge agents' settings ---------------------------------------------------------------


def test_the_vehicle_config_becomes_vehicle_settings_with_its_hardware(tmp_path: Path) -> None:
    dbc = tmp_path / "fms.dbc"
    dbc.write_text('VERSION ""\n')
    path = toml(
        tmp_path,
        f'id = "van-9"\nbroker = "mqtt://127.0.0.1:1883"\ndb = "{tmp_path / "v.db"}"\n'
        f'gnss = "gpsd://127.0.0.1:2947"\ncan = "socketcan:can0"\ncan_dbc = "{dbc}"\n'
        'can_profile = "obd2"\ntelemetry_interval_s = 2.5\nmax_payload = 4096\n'
        "resequence_budget_s = 0.5\n",
    )
    s = vehicle_settings(load(VehicleConfig, {}, path))
    assert s.vehicle_id == "van-9" and s.db_path == tmp_path / "v.db"
    assert s.hardware.gnss == "gpsd://127.0.0.1:2947" and s.hardware.can == "socketcan:can0"
    assert s.hardware.can_dbc == dbc and s.hardware.can_profile == "obd2"
    assert s.hardware.telemetry_interval_s == 2.5
    assert s.sync.max_payload == 4096 and s.resequence_budget_s == 0.5


def test_every_hardware_setting_is_reachable() -> None:
    from edge.hardware.settings import HardwareSettings

    missing = {f.name for f in dataclasses.fields(HardwareSettings)} - set(HARDWARE.values())
    assert not missing, f"HardwareSettings fields without a setting: {sorted(missing)}"
    assert set(HARDWARE) <= set(VehicleConfig.model_fields)


def test_the_edge_defaults_keep_the_librarys(tmp_path: Path) -> None:
    from edge.hardware.settings import HardwareSettings
    from sync import SyncSettings

    s = vehicle_settings(vehicle(tmp_path))
    assert s.hardware == HardwareSettings()
    assert s.sync == SyncSettings()
    for name in ("resequence_budget_s", "delay_threshold_s"):
        assert VehicleConfig.model_fields[name].default == getattr(s, name)
    for name, field in HARDWARE.items():
        assert VehicleConfig.model_fields[name].default == getattr(HardwareSettings(), field)
    assert VehicleConfig.model_fields["max_payload"].default == SyncSettings().max_payload


def test_a_bad_device_id_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--id: .*'van/1'"):
        vehicle_settings(vehicle(tmp_path, id="van/1"))


def test_a_bad_hardware_source_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"^--gnss: \S"):
        vehicle_settings(vehicle(tmp_path, gnss="carrier-pigeon://x"))
    monkeypatch.setenv("WAYLINE_CAN", "no-channel")
    with pytest.raises(ConfigError, match=r"^WAYLINE_CAN: \S"):
        vehicle_settings(vehicle(tmp_path))


def test_a_device_with_a_password_logs_in_as_its_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYLINE_BROKER_PASSWORD", "pw-of-the-van")
    s = depot_settings(
        load(DepotConfig, {"id": "depot-3", "broker": "mqtt://127.0.0.1", "db": "d.db"})
    )
    assert s.broker is not None
    assert (s.broker.username, s.broker.password) == ("depot-3", "pw-of-the-van")
    monkeypatch.setenv("WAYLINE_BROKER_USERNAME", "someone")
    s = vehicle_settings(vehicle(tmp_path))
    assert s.broker is not None and s.broker.username == "someone"


def test_a_bad_broker_url_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYLINE_BROKER", "http://x")
    config = load(VehicleConfig, {"id": "van-1", "db": "v.db"})
    with pytest.raises(ConfigError, match=r"^WAYLINE_BROKER: broker URL must look like"):
        vehicle_settings(config)


def test_the_library_literals_are_the_settings(tmp_path: Path) -> None:
    from cloud.ops import OpsSettings, Role
    from edge.hardware.settings import HardwareSettings

    assert typing.get_args(CloudConfig.model_fields["env"].annotation) == typing.get_args(
        OpsSettings.model_fields["env"].annotation
    )
    roles = typing.get_args(
        typing.get_args(DashboardUserConfig.model_fields["roles"].annotation)[0]
    )
    assert set(roles) == {r.value for r in Role}
    profile = typing.get_type_hints(HardwareSettings)["can_profile"]
    assert typing.get_args(VehicleConfig.model_fields["can_profile"].annotation) == (
        typing.get_args(profile)
    )


# --- docs/configuration.md ---------------------------------------------------------------------


def table() -> dict[str, list[str]]:
    """Rows of the settings table by their first cell's key (without backticks)."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            key = cells[0].strip("`")
            assert key not in rows, f"{key} is in the table twice"
            rows[key] = cells
    return rows


def documented_settings() -> list[tuple[str, str, str | None, set[str]]]:
    """(key, environment variable, flag, commands) of every setting, nested ones included."""
    letters = {"cloud": "c", "vehicle": "v", "depot": "d"}
    found: dict[str, tuple[str, str, str | None, set[str]]] = {}
    for command, model in MODELS.items():
        flags = {f.dest: f.option for f in AGENT_FLAGS[command] if f.setting} | TOP_FLAGS
        for name, field in model.model_fields.items():
            key, env, flag, commands = found.get(
                name, (name, env_var(name), flags.get(name), set())
            )
            found[name] = (key, env, flag, commands | {letters[command]})
            inner = typing.get_args(field.annotation)
            nested = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
            for sub in nested:
                for part in sub.model_fields:
                    found[f"{name}[].{part}"] = (f"{name}[].{part}", "—", None, {letters[command]})
    return sorted(found.values())


@pytest.mark.parametrize(
    ("key", "env", "flag", "commands"),
    [pytest.param(*row, id=row[0]) for row in documented_settings()],
)
def test_every_setting_is_in_the_table(
    key: str, env: str, flag: str | None, commands: set[str]
) -> None:
    rows = table()
    assert key in rows, f"docs/configuration.md has no row for `{key}`"
    _, flag_cell, env_cell, command_cell, _type, default, meaning = rows[key]
    assert flag_cell == (f"`{flag}`" if flag else "—"), f"{key}: flag column"
    assert env_cell == (f"`{env}`" if env != "—" else "—"), f"{key}: variable column"
    assert set(command_cell.split()) == commands, f"{key}: commands column"
    assert default and meaning, f"{key}: default and meaning"


def test_the_table_has_no_setting_that_does_not_exist() -> None:
    known = {key for key, *_ in documented_settings()}
    stale = sorted(set(table()) - known)
    assert not stale, f"docs/configuration.md documents settings that do not exist: {stale}"


@pytest.mark.parametrize("command", sorted(MODELS))
def test_the_documented_defaults_are_the_models(command: str) -> None:
    rows = table()
    for name, field in MODELS[command].model_fields.items():
        default = field.default
        cell = rows[name][5]
        if field.is_required():
            assert cell == "required", name
        elif default is None:
            assert cell == "none", name
        elif isinstance(default, bool):
            assert cell == f"`{str(default).lower()}`", name
        elif isinstance(default, str):
            assert cell == f'`"{default}"`', name
        elif isinstance(default, int | float):
            assert cell == f"`{default}`", name
