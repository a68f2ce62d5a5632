"""Settings of the operations building blocks, from ``WAYLINE_*`` environment variables.

Secrets (session, token pepper, webhook signing) must be set, long and not a known default
outside development: :class:`OpsSettings` refuses them with a :class:`SettingsError` that
names the variable. ``WAYLINE_ENV=development`` alone allows empty secrets, which then get
a fixed development value that every other environment refuses.

Build it once in the entry point (``OpsSettings.from_env()``) and pass it down.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
        ``WAYLINE_WEBHOOK_SECRET``, ``WAYLINE_SESSION_MAX_AGE_S``."""
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
