"""The docs keep up with the code: a test fails when something users rely on is undocumented.

Each check is a small parametrized test over what the code declares (message kinds, body
fields, topic directions, …) against a section of a checked-in Markdown file. To add a check
for another document, use :func:`doc` to read it and :func:`section` to cut out the part
under a heading, then assert on mentions with :func:`mentions`.
"""

from __future__ import annotations

import re
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import protocol

DOCS = Path(__file__).resolve().parent.parent / "docs"


@cache
def doc(name: str) -> str:
    """The text of ``docs/<name>``."""
    return (DOCS / name).read_text(encoding="utf-8")


def section(text: str, heading: str) -> str | None:
    """The text under the Markdown heading whose title is exactly ``heading`` (any level),
    up to the next heading of the same or a higher level; None when there is no such heading.
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(#{1,6})\s+(.*?)\s*$", line)
        if m and m.group(2) == heading:
            level = len(m.group(1))
            body = []
            for following in lines[i + 1 :]:
                n = re.match(r"^(#{1,6})\s", following)
                if n and len(n.group(1)) <= level:
                    break
                body.append(following)
            return "\n".join(body)
    return None


def mentions(text: str, name: str) -> bool:
    """``name`` appears as inline code (```name```) in ``text``."""
    return f"`{name}`" in text


# --------------------------------------------------------------------------- protocol.md

PROTOCOL = "protocol.md"


def _body_model(kind: str) -> type[BaseModel]:
    cls = protocol.envelope_class(kind)
    assert cls is not None
    body = cls.model_fields["body"].annotation
    assert isinstance(body, type) and issubclass(body, BaseModel)
    return body


def _nested_models(annotation: Any) -> set[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found = {annotation}
        for field in annotation.model_fields.values():
            found |= _nested_models(field.annotation)
        return found
    origin = typing.get_origin(annotation)
    if origin in (typing.Annotated, typing.Union, types.UnionType, tuple, dict):
        found = set()
        for arg in typing.get_args(annotation):
            found |= _nested_models(arg)
        return found
    return set()


SHARED_TYPES = sorted(
    {m for k in protocol.KINDS for m in _nested_models(_body_model(k))}
    - {_body_model(k) for k in protocol.KINDS},
    key=lambda m: m.__name__,
)


def test_protocol_doc_exists() -> None:
    assert doc(PROTOCOL).startswith("# ")


@pytest.mark.parametrize("kind", protocol.KINDS)
def test_every_kind_has_a_section(kind: str) -> None:
    assert section(doc(PROTOCOL), f"`{kind}`") is not None, (
        f"docs/protocol.md has no '### `{kind}`' section"
    )


@pytest.mark.parametrize(
    ("kind", "field"),
    [(k, f) for k in protocol.KINDS for f in _body_model(k).model_fields],
)
def test_every_body_field_is_in_its_kind_section(kind: str, field: str) -> None:
    text = section(doc(PROTOCOL), f"`{kind}`") or ""
    assert mentions(text, field), f"field `{field}` of `{kind}` is not in its section"


@pytest.mark.parametrize(
    ("model", "field"),
    [(m.__name__, f) for m in SHARED_TYPES for f in m.model_fields],
)
def test_every_shared_type_field_is_documented(model: str, field: str) -> None:
    text = section(doc(PROTOCOL), f"`{model}`")
    assert text is not None, f"docs/protocol.md has no '#### `{model}`' section"
    assert mentions(text, field), f"field `{field}` of `{model}` is not in its section"


@pytest.mark.parametrize("field", list(protocol.AckEnvelope.model_fields))
def test_every_envelope_field_is_documented(field: str) -> None:
    assert mentions(section(doc(PROTOCOL), "Envelope") or "", field)


@pytest.mark.parametrize("direction", typing.get_args(protocol.topics.Direction))
def test_every_topic_direction_is_described(direction: str) -> None:
    text = section(doc(PROTOCOL), "Topics") or ""
    assert f"{protocol.PREFIX}/{{device_id}}/{direction}" in text
    assert f"**{direction}**" in text, f"the {direction} direction is not described"


@pytest.mark.parametrize(
    "heading", ["Versioning", "Size limit", "Errors", "Reliability on the wire"]
)
def test_rules_have_sections(heading: str) -> None:
    assert section(doc(PROTOCOL), heading), f"docs/protocol.md lacks '## {heading}'"


def test_the_size_limit_in_the_doc_is_the_codes() -> None:
    assert str(protocol.DEFAULT_MAX_BYTES) in (section(doc(PROTOCOL), "Size limit") or "")


def test_the_documented_version_is_the_codes() -> None:
    assert f"**{protocol.SCHEMA_VERSION}**" in doc(PROTOCOL)


@pytest.mark.parametrize("error", [n for n in protocol.errors.__all__ if n != "ProtocolError"])
def test_every_error_and_its_reason_is_documented(error: str) -> None:
    text = section(doc(PROTOCOL), "Errors") or ""
    assert mentions(text, error)
    assert mentions(text, getattr(protocol, error).reason)
