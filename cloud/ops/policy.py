"""The exception policy table: which classes resolve by themselves and which need a person.

The table is a TOML file (``default_policy.toml`` ships with Wayline; ``docs/operations.md``
describes the format). It is validated on load: an unknown class, an unknown setting, or a
threshold of the wrong type is refused with a :class:`PolicyError` naming the line at fault.

Per class the policy gives a base action — by the incident's ``reason`` (``reasons``), by a
measure against two thresholds (``auto_below`` / ``escalate_at``: below the first resolves
automatically, at or past the second escalates, in between resolves with approval), or a
plain ``action`` — and an automatic resolution still asks for approval when its cost impact
or the customer's tier passes the thresholds in ``[defaults]`` (or the class's own).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cloud.ops.errors import PolicyError
from cloud.ops.exceptions import ExceptionClass, Incident

__all__ = [
    "Action",
    "ClassPolicy",
    "PolicyDefaults",
    "PolicyTable",
    "PolicyVerdict",
    "default_policy",
    "load_policy",
    "parse_policy",
]

Number = Annotated[float, Field(strict=True, ge=0)]
#: Reasons a failed delivery may carry (``protocol.FailReason``).
FAIL_REASONS = ("absent", "address_problem", "refused", "damaged", "no_access", "other")


class Action(StrEnum):
    """What the policy does with an exception."""

    AUTO = "auto"
    AUTO_WITH_APPROVAL = "auto_with_approval"
    ESCALATE = "escalate"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicyDefaults(_Strict):
    """Settings every class inherits unless it sets its own."""

    action: Action = Action.ESCALATE
    approval_cost_above: Number = 150.0
    approval_tiers: tuple[Annotated[str, Field(strict=True)], ...] = ("premium",)
    group_window_min: Number = 60.0


class ClassPolicy(_Strict):
    """The rule for one exception class."""

    description: Annotated[str, Field(strict=True)] = ""
    action: Action | None = None
    measure: Annotated[str, Field(strict=True)] | None = None
    auto_below: Number | None = None
    escalate_at: Number | None = None
    reasons: dict[Annotated[str, Field(strict=True)], Action] = Field(default_factory=dict)
    recommended: Annotated[str, Field(strict=True)] | None = None
    auto_option: Annotated[str, Field(strict=True)] | None = None
    """The option carried out when the policy resolves it alone (default: ``recommended``)."""
    approval_cost_above: Number | None = None
    approval_tiers: tuple[Annotated[str, Field(strict=True)], ...] | None = None
    group_window_min: Number | None = None

    @model_validator(mode="after")
    def _thresholds_hold_together(self) -> ClassPolicy:
        has_threshold = self.auto_below is not None or self.escalate_at is not None
        if has_threshold and not self.measure:
            raise ValueError("auto_below/escalate_at need a measure to compare")
        if (
            self.auto_below is not None
            and self.escalate_at is not None
            and self.auto_below > self.escalate_at
        ):
            raise ValueError("auto_below must not be above escalate_at")
        return self


@dataclass(frozen=True)
class PolicyVerdict:
    """The policy's answer for one incident before context: action and why."""

    action: Action
    why: str


class PolicyTable(_Strict):
    """A whole policy file."""

    defaults: PolicyDefaults = Field(default_factory=PolicyDefaults)
    classes: dict[ExceptionClass, ClassPolicy] = Field(default_factory=dict)

    def rule(self, cls: ExceptionClass) -> ClassPolicy:
        """The class's rule; an empty one (defaults only) when the file does not list it."""
        return self.classes.get(cls) or ClassPolicy()

    def verdict(
        self, incident: Incident, *, cost_impact: float = 0.0, customer_tier: str | None = None
    ) -> PolicyVerdict:
        """The action for ``incident`` given its cost impact and the customer's tier."""
        rule = self.rule(incident.cls)
        base = _base_verdict(rule, incident, self.defaults.action)
        if base.action is not Action.AUTO:
            return base
        cost_limit = (
            rule.approval_cost_above
            if rule.approval_cost_above is not None
            else self.defaults.approval_cost_above
        )
        tiers = (
            rule.approval_tiers
            if rule.approval_tiers is not None
            else (self.defaults.approval_tiers)
        )
        if cost_impact > cost_limit:
            return PolicyVerdict(
                Action.AUTO_WITH_APPROVAL,
                f"{base.why}; cost impact {cost_impact:.2f} above {cost_limit:.2f}",
            )
        if customer_tier is not None and customer_tier in tiers:
            return PolicyVerdict(
                Action.AUTO_WITH_APPROVAL, f"{base.why}; customer tier {customer_tier}"
            )
        return base

    def group_window_ms(self, cls: ExceptionClass) -> int:
        """How long after the last one a repeat of the same cause joins its group."""
        rule = self.rule(cls)
        minutes = rule.group_window_min
        if minutes is None:
            minutes = self.defaults.group_window_min
        return int(minutes * 60_000)


def _base_verdict(rule: ClassPolicy, incident: Incident, fallback: Action) -> PolicyVerdict:
    if incident.reason is not None and incident.reason in rule.reasons:
        return PolicyVerdict(rule.reasons[incident.reason], f"reason {incident.reason}")
    if rule.measure and rule.measure in incident.measures:
        value = incident.measures[rule.measure]
        if rule.escalate_at is not None and value >= rule.escalate_at:
            return PolicyVerdict(
                Action.ESCALATE, f"{rule.measure} {value:g} at or past {rule.escalate_at:g}"
            )
        if rule.auto_below is not None and value < rule.auto_below:
            return PolicyVerdict(Action.AUTO, f"{rule.measure} {value:g} below {rule.auto_below:g}")
        if rule.auto_below is not None or rule.escalate_at is not None:
            return PolicyVerdict(
                Action.AUTO_WITH_APPROVAL, f"{rule.measure} {value:g} between the thresholds"
            )
    action = rule.action or fallback
    return PolicyVerdict(action, f"{incident.cls.value}: {action.value} by policy")


# --- loading ------------------------------------------------------------------------------


def default_policy() -> PolicyTable:
    """The policy table that ships with Wayline."""
    text = resources.files("cloud.ops").joinpath("default_policy.toml").read_text("utf-8")
    return parse_policy(text, path="default_policy.toml")


def load_policy(path: str | Path) -> PolicyTable:
    """Read and validate a policy file; :class:`PolicyError` with the line at fault."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read the policy file: {exc.strerror}", path=str(path)) from exc
    return parse_policy(text, path=str(path))


def parse_policy(text: str, *, path: str = "<policy>") -> PolicyTable:
    """Validate a policy table given as TOML text."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = int(found.group(1)) if found else None
        raise PolicyError(f"not valid TOML: {exc}", path=path, line=line) from exc
    try:
        table = PolicyTable.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(str(part) for part in error["loc"])
        raise PolicyError(_describe(error, loc), path=path, line=line_of(text, loc)) from exc
    _check_reasons(table, text, path)
    return table


def _check_reasons(table: PolicyTable, text: str, path: str) -> None:
    rule = table.classes.get(ExceptionClass.FAILED_DELIVERY)
    for reason in rule.reasons if rule else ():
        if reason not in FAIL_REASONS:
            loc = ("classes", "failed_delivery", "reasons", reason)
            raise PolicyError(
                f"unknown failure reason {reason!r}; known: {', '.join(FAIL_REASONS)}",
                path=path,
                line=line_of(text, loc),
            )


def _describe(error: Any, loc: tuple[str, ...]) -> str:
    where = ".".join(p for p in loc if not p.startswith("["))
    if len(loc) >= 3 and loc[0] == "classes" and loc[-1] == "[key]" and error["type"] == "enum":
        known = ", ".join(c.value for c in ExceptionClass)
        return f"unknown exception class {loc[1]!r}; known: {known}"
    if error["type"] == "extra_forbidden":
        return f"unknown setting {where!r}"
    got = error.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict) else ""
    return f"{where or 'policy'}: {error['msg']}{shown}"


# --- finding the line at fault ------------------------------------------------------------

_BARE_OR_QUOTED = r'(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')'
_HEADER = re.compile(
    r"^\s*\[\s*(" + _BARE_OR_QUOTED + r"(?:\s*\.\s*" + _BARE_OR_QUOTED + r")*)\s*\]"
)
_KEY = re.compile(r"^\s*(" + _BARE_OR_QUOTED + r"(?:\s*\.\s*" + _BARE_OR_QUOTED + r")*)\s*=")
_PART = re.compile(r'"([^"]*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)')


def _dotted(key: str) -> tuple[str, ...]:
    return tuple(next(g for g in m.groups() if g is not None) for m in _PART.finditer(key))


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Where each table header and key of a TOML text is first written (1-based lines)."""
    lines: dict[tuple[str, ...], int] = {}
    current: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = _dotted(header.group(1))
            lines.setdefault(current, number)
            continue
        key = _KEY.match(line)
        if key:
            lines.setdefault((*current, *_dotted(key.group(1))), number)
    return lines


def line_of(text: str, loc: tuple[str, ...]) -> int | None:
    """The line of the deepest key or table of ``loc`` written in ``text``."""
    lines = key_lines(text)
    path = tuple(p for p in loc if not p.startswith("["))
    for n in range(len(path), 0, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None
