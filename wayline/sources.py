"""Where an agent's settings come from, and the one line that says what is wrong with one.

Each setting is looked up in this order, and the first place that has it wins:

1. its command-line flag (``--rebalance-every 10``);
2. its environment variable, ``WAYLINE_`` and the setting's name in capitals
   (``WAYLINE_REBALANCE_EVERY=10``): how a systemd unit's ``EnvironmentFile`` or a
   container's ``--env-file`` reaches it, and the place for secrets;
3. the TOML file named by ``--config`` or ``WAYLINE_CONFIG`` (``rebalance_every = 10``);
4. its default.

pydantic-settings does the looking up (``AgentConfig.settings_customise_sources`` in
:mod:`wayline.settings`); :func:`load` names the file, and turns the first problem (a key the
file should not have, a value of the wrong type, a required setting given nowhere) into a
:class:`ConfigError`: one line naming the setting and where its value came from
(:class:`Origins`), never showing a secret.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import SettingsError as SourceError

from wayline.errors import ConfigError
from wayline.parser import AGENT_FLAGS, TOP_FLAGS

if TYPE_CHECKING:
    from wayline.settings import AgentConfig

__all__ = ["CONFIG_VAR", "ENV_PREFIX", "ConfigError", "Origins", "env_var", "load", "toml_file"]

ENV_PREFIX = "WAYLINE_"
#: The environment variable naming the TOML file when ``--config`` is not given.
CONFIG_VAR = "WAYLINE_CONFIG"

_TOML_FILE: ContextVar[Path | None] = ContextVar("wayline_toml_file", default=None)

C = TypeVar("C", bound="AgentConfig")


def toml_file() -> Path | None:
    """The TOML file of the load in progress (None: no file)."""
    return _TOML_FILE.get()


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
