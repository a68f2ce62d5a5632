"""docs/operations.md keeps up with cloud/ops: classes, roles, events, notification reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.ops import Action, ExceptionClass, Role, default_policy
from cloud.ops.webhooks import EVENT_TYPES

DOC = (Path(__file__).resolve().parent.parent / "docs" / "operations.md").read_text("utf-8")
ETA_REASONS = [
    "first_window",
    "unchanged",
    "below_threshold",
    "shift",
    "hysteresis",
    "narrowed",
    "rate_limited",
    "quiet_hours",
]


@pytest.mark.parametrize(
    "name",
    [c.value for c in ExceptionClass]
    + [a.value for a in Action]
    + [r.value for r in Role]
    + list(EVENT_TYPES)
    + ETA_REASONS,
)
def test_documented(name: str) -> None:
    assert f"`{name}`" in DOC, f"docs/operations.md does not mention `{name}`"


def test_the_default_table_in_the_docs_matches_the_shipped_file() -> None:
    policy = default_policy()
    for cls, rule in policy.classes.items():
        row = next(line for line in DOC.splitlines() if line.startswith(f"| `{cls.value}` |"))
        if rule.recommended:
            assert f"`{rule.recommended}`" in row
        if rule.auto_option:
            assert f"(auto: `{rule.auto_option}`)" in row
        if rule.measure:
            assert f"`{rule.measure}` < {rule.auto_below:g}" in row
            assert f"≥ {rule.escalate_at:g}" in row
