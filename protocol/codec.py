"""The only way between bytes and models: ``encode`` and ``decode``.

``decode`` either returns a valid envelope or raises a :class:`~protocol.errors.ProtocolError`
subclass whose ``reason`` says why; no other exception escapes it, whatever the bytes.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import msgpack
from pydantic import BaseModel, ValidationError

from protocol.envelope import Envelope, envelope_class
from protocol.errors import (
    MalformedError,
    OversizeError,
    SchemaError,
    UnknownKindError,
)
from protocol.version import MINOR, SCHEMA_VERSION, parse_version

__all__ = ["DEFAULT_MAX_BYTES", "decode", "encode"]

DEFAULT_MAX_BYTES = 64 * 1024
"""Payloads above this are refused unless the receiver sets its own limit."""

_ENVELOPE_KEYS = frozenset({"v", "id", "src", "seq", "lc", "ts", "kind", "body"})


def encode(envelope: BaseModel) -> bytes:
    """Serialise an envelope to msgpack. Field order is the models' order, so bytes are stable.

    Raises ``SchemaError`` for a value msgpack cannot carry (an integer outside 64 bits).
    """
    try:
        packed: bytes = msgpack.packb(envelope.model_dump(mode="python"), use_bin_type=True)
    except (OverflowError, ValueError, TypeError) as exc:
        raise SchemaError(f"cannot encode {type(envelope).__name__}: {exc!s:.80}") from None
    return packed


def decode(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Envelope:
    """Parse and validate one envelope. Raises ``ProtocolError`` and nothing else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedError(f"payload must be bytes, not {type(data).__name__}")
    if len(data) > max_bytes:
        raise OversizeError(f"payload of {len(data)} bytes is over the {max_bytes}-byte limit")
    try:
        raw = msgpack.unpackb(data, raw=False, use_list=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises a zoo of types for garbage; all mean one thing
        raise MalformedError(f"not msgpack: {type(exc).__name__}: {exc!s:.80}") from None
    if not isinstance(raw, dict):
        raise MalformedError(f"envelope must be a map, got {type(raw).__name__}")
    v = raw.get("v")
    minor = MINOR if v == SCHEMA_VERSION else parse_version(v)[1]
    kind = raw.get("kind")
    cls = envelope_class(kind) if isinstance(kind, str) else None
    if cls is None:
        raise UnknownKindError(f"unknown message kind {kind!r:.40}")
    if minor > MINOR:
        raw = _prune(cls, raw)
    try:
        # The kind is known: validate against its class, not the whole union (a third faster).
        envelope: Envelope = cls.__pydantic_validator__.validate_python(raw)
        return envelope
    except ValidationError as exc:
        raise SchemaError(f"{kind}: {_summary(exc)}") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise SchemaError(f"{kind}: {exc!s:.120}") from None


def _summary(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "envelope"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _prune(model: type[BaseModel], raw: dict[Any, Any]) -> dict[Any, Any]:
    """Drop fields a newer minor version added, recursively, keeping what this version knows."""
    out: dict[Any, Any] = {}
    for name, field in model.model_fields.items():
        if name not in raw:
            continue
        out[name] = _prune_value(field.annotation, raw[name])
    return out


def _prune_value(annotation: Any, value: Any) -> Any:
    for model in _models_in(annotation):
        if isinstance(value, dict):
            return _prune(model, value)
        if isinstance(value, tuple):
            return tuple(_prune(model, v) if isinstance(v, dict) else v for v in value)
    return value


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, tuple):
        found: list[type[BaseModel]] = []
        for arg in typing.get_args(annotation):
            found.extend(_models_in(arg))
        return found
    return []
