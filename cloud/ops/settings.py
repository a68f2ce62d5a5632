"""Settings of the operations building blocks, from ``WAYLINE_*`` environment variables.

Secrets (session, token pepper, webhook signing) must be set, long and not a known default
outside development: :class:`OpsSettings` refuses them with a :class:`SettingsError` that
names the variable. ``WAYLINE_ENV=development`` alone allows empty secrets, which then get
a fixed development value that every other environment refuses.

Build it once in the entry point (``OpsSettings.from_env()``) and pass it down.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cloud.ops.errors import SettingsError

__all__ = ["DEVELOPMENT_SECRET", "OpsSettings"]

#: What empty secrets become in development; refused everywhere else.
DEVELOPMENT_SECRET = "wayline-development-only-not-a-secret"
#: Values a secret must never have outside development.
KNOWN_DEFAULTS = frozenset(
    {
        DEVELOPMENT_SECRET,
        "changeme",
        "change-me",
        "changethis",
        "secret",
        "password",
        "admin",
        "default",
        "dev",
        "development",
        "test",
        "wayline",
        "example",
    }
)
MIN_SECRET_LENGTH = 32
SECRETS = ("session_secret", "token_pepper", "webhook_secret")
PREFIX = "WAYLINE_"


class OpsSettings(BaseModel):
    """Environment and secrets; validated so that production never runs on a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: Literal["development", "test", "staging", "production"] = "production"
    session_secret: str = ""
    token_pepper: str = ""
    webhook_secret: str = ""
    session_max_age_s: int = Field(default=12 * 3600, gt=0)
    http_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """The largest request body the API takes; a larger one is refused (413) unread."""
    login_max_failures: int = Field(default=5, ge=1)
    """Failed dashboard logins of one user name within ``login_lockout_s`` that lock the
    name for ``login_lockout_s``; four times as many from one client address lock that
    address."""
    login_lockout_s: int = Field(default=15 * 60, gt=0)
    """The window failed logins are counted in, and how long a lockout lasts."""
    trusted_origins: tuple[str, ...] = ()
    """Origins (``https://ops.example.com``) whose dashboard writes are taken as the API's
    own although the ``Host`` header differs (a proxy that does not pass it on)."""

    @field_validator("trusted_origins", mode="before")
    @classmethod
    def _origins_from_text(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(o.strip() for o in value.split(",") if o.strip())
        return value

    @field_validator("trusted_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"{origin!r} is not an origin such as https://ops.example.com")
        return value

    @model_validator(mode="before")
    @classmethod
    def _development_fills_blanks(cls, values: object) -> object:
        if isinstance(values, dict) and values.get("env") == "development":
            return {k: values.get(k) or DEVELOPMENT_SECRET for k in SECRETS} | {
                k: v for k, v in values.items() if k not in SECRETS
            }
        return values

    @model_validator(mode="after")
    def _no_default_secrets(self) -> OpsSettings:
        if self.env == "development":
            return self
        for name in SECRETS:
            value = getattr(self, name)
            var = PREFIX + name.upper()
            if not value.strip():
                raise ValueError(
                    f"{var} is empty; set a random value of at least {MIN_SECRET_LENGTH} "
                    f"characters (only {PREFIX}ENV=development may leave it empty)"
                )
            if value.strip().lower() in KNOWN_DEFAULTS:
                raise ValueError(f"{var} is a default value; set a random secret")
            if len(value) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"{var} is {len(value)} characters; at least {MIN_SECRET_LENGTH} needed"
                )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OpsSettings:
        """Read ``WAYLINE_ENV``, ``WAYLINE_SESSION_SECRET``, ``WAYLINE_TOKEN_PEPPER``,
        ``WAYLINE_WEBHOOK_SECRET``, ``WAYLINE_SESSION_MAX_AGE_S`` and the rest of the fields
        (``WAYLINE_LOGIN_MAX_FAILURES``...; ``WAYLINE_TRUSTED_ORIGINS`` comma-separated)."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in cls.model_fields:
            var = PREFIX + field.upper()
            if var in environ:
                values[field] = environ[var]
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            prefix = f"{PREFIX}{where.upper()}: " if where else ""
            raise SettingsError(f"unsafe or invalid settings: {prefix}{message}") from None
