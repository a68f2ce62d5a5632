"""Triage: classify a stream of exceptions, group repeats, count what needs no person.

:class:`Triage` is what the coordinator feeds every exception into. Each one is classified
(:func:`~cloud.ops.classifier.classify`); repeats of the same cause — same class and reason
on the same vehicle, carrier or depot within the class's group window — join one
:class:`ExceptionGroup` with a count instead of showing one by one. :meth:`Triage.queue` is
what ops staff see: the open groups that need a person. :class:`AutomationStats` counts the
share resolved without anyone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from cloud.ops.classifier import Context, Decision, classify
from cloud.ops.exceptions import Incident
from cloud.ops.policy import Action, PolicyTable
from protocol import ExceptionReport

__all__ = ["AutomationStats", "ExceptionGroup", "Triage", "TriageResult"]

_RANK = {Action.AUTO: 0, Action.AUTO_WITH_APPROVAL: 1, Action.ESCALATE: 2}


@dataclass
class ExceptionGroup:
    """Repeats of one cause: shown once, with a count. ``decision`` is the gravest one."""

    group_id: str
    key: tuple[str, ...]
    decision: Decision
    first_at_ms: int
    last_at_ms: int
    incident_ids: list[str] = field(default_factory=list)
    closed: bool = False

    @property
    def count(self) -> int:
        return len(self.incident_ids)

    @property
    def action(self) -> Action:
        return self.decision.action

    def as_dict(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "key": list(self.key),
            "count": self.count,
            "first_at_ms": self.first_at_ms,
            "last_at_ms": self.last_at_ms,
            "incident_ids": list(self.incident_ids),
            "closed": self.closed,
            "decision": self.decision.as_dict(),
        }


@dataclass
class AutomationStats:
    """How many exceptions were resolved without a person, with approval, or escalated."""

    auto: int = 0
    auto_with_approval: int = 0
    escalate: int = 0

    @property
    def total(self) -> int:
        return self.auto + self.auto_with_approval + self.escalate

    @property
    def share_without_person(self) -> float:
        """Share of exceptions the policy resolved with no one involved (1.0 when none)."""
        return self.auto / self.total if self.total else 1.0

    def count(self, action: Action) -> None:
        setattr(self, action.value, getattr(self, action.value) + 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "auto": self.auto,
            "auto_with_approval": self.auto_with_approval,
            "escalate": self.escalate,
            "share_without_person": round(self.share_without_person, 4),
        }


@dataclass(frozen=True)
class TriageResult:
    """What happened to one incident: its decision and the group it joined or opened."""

    decision: Decision
    group: ExceptionGroup
    new_group: bool


class Triage:
    """Classifies, groups and counts exceptions; thread-safe."""

    def __init__(self, policy: PolicyTable):
        self.policy = policy
        self.stats = AutomationStats()
        self._groups: dict[str, ExceptionGroup] = {}
        self._latest: dict[tuple[str, ...], ExceptionGroup] = {}
        self._lock = threading.Lock()

    def ingest(
        self, incident: Incident | ExceptionReport, context: Context | None = None
    ) -> TriageResult:
        """Classify ``incident`` (or a device's report), count it and put it in its group."""
        if isinstance(incident, ExceptionReport):
            incident = Incident.from_report(incident)
        decision = classify(self.policy, incident, context)
        key = (incident.cls.value, incident.reason or "", *incident.scope)
        window = self.policy.group_window_ms(incident.cls)
        with self._lock:
            self.stats.count(decision.action)
            group = self._latest.get(key)
            if (
                group is not None
                and not group.closed
                and 0 <= incident.at_ms - group.last_at_ms <= window
            ):
                group.incident_ids.append(incident.incident_id)
                group.last_at_ms = incident.at_ms
                if _RANK[decision.action] > _RANK[group.decision.action]:
                    group.decision = decision
                return TriageResult(decision, group, new_group=False)
            group = ExceptionGroup(
                group_id=f"g-{incident.incident_id}",
                key=key,
                decision=decision,
                first_at_ms=incident.at_ms,
                last_at_ms=incident.at_ms,
                incident_ids=[incident.incident_id],
            )
            self._groups[group.group_id] = group
            self._latest[key] = group
            return TriageResult(decision, group, new_group=True)

    def queue(self) -> list[ExceptionGroup]:
        """Open groups that need a person, gravest first, then oldest first."""
        with self._lock:
            waiting = [g for g in self._groups.values() if g.decision.needs_person and not g.closed]
        return sorted(waiting, key=lambda g: (-_RANK[g.action], g.first_at_ms))

    def group(self, group_id: str) -> ExceptionGroup | None:
        with self._lock:
            return self._groups.get(group_id)

    def close(self, group_id: str) -> None:
        """Take a group off the queue (decided); a later repeat opens a new one."""
        with self._lock:
            group = self._groups.get(group_id)
            if group is not None:
                group.closed = True
