"""Human-in-the-loop: a person approves, rejects or overrides what the policy recommends.

An :class:`Approval` starts ``pending`` for a decision that needs a person (an escalation,
or an automatic resolution waiting for approval) and is decided exactly once::

    pending ──approve──▶ approved     (the recommended option is carried out)
            ──reject───▶ rejected     (nothing is carried out; the reason says why)
            ──override─▶ overridden   (another offered option is carried out)

Deciding twice raises :class:`AlreadyDecidedError` naming who decided first and how.
:meth:`Approval.record` is the entry for the decision record: who, when, why, on which
inputs, and what was chosen.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cloud.ops.classifier import Decision, Option
from cloud.ops.errors import AlreadyDecidedError, ApprovalError, UnknownOptionError

__all__ = ["Approval", "ApprovalState"]


class ApprovalState(StrEnum):
    """Where an approval stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    OVERRIDDEN = "overridden"


@dataclass(frozen=True)
class _Verdict:
    state: ApprovalState
    by: str
    why: str
    at_ms: int
    option: Option | None


class Approval:
    """One escalation or approval request and the person's decision on it."""

    def __init__(self, approval_id: str, decision: Decision, *, created_ms: int | None = None):
        if not decision.needs_person:
            raise ApprovalError(
                f"incident {decision.incident.incident_id} was resolved by policy; "
                "there is nothing to approve"
            )
        self.approval_id = approval_id
        self.decision = decision
        self.created_ms = created_ms if created_ms is not None else _now_ms()
        self._verdict: _Verdict | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> ApprovalState:
        return self._verdict.state if self._verdict else ApprovalState.PENDING

    @property
    def chosen(self) -> Option | None:
        """The option carried out: the recommended one, an override, or None (rejected)."""
        return self._verdict.option if self._verdict else None

    def approve(self, by: str, why: str = "", *, at_ms: int | None = None) -> dict[str, Any]:
        """Carry out the recommended option; returns the record entry."""
        return self._decide(ApprovalState.APPROVED, by, why, self.decision.recommended, at_ms)

    def reject(self, by: str, why: str, *, at_ms: int | None = None) -> dict[str, Any]:
        """Carry out nothing; a reason is required. Returns the record entry."""
        if not why.strip():
            raise ApprovalError("a rejection needs a reason")
        return self._decide(ApprovalState.REJECTED, by, why, None, at_ms)

    def override(
        self, by: str, option_key: str, why: str, *, at_ms: int | None = None
    ) -> dict[str, Any]:
        """Carry out another offered option instead; a reason is required."""
        option = self.decision.option(option_key)
        if option is None:
            offered = ", ".join(o.key for o in self.decision.options)
            raise UnknownOptionError(
                f"option {option_key!r} is not offered for {self.approval_id}; offered: {offered}"
            )
        if not why.strip():
            raise ApprovalError("an override needs a reason")
        return self._decide(ApprovalState.OVERRIDDEN, by, why, option, at_ms)

    def _decide(
        self,
        state: ApprovalState,
        by: str,
        why: str,
        option: Option | None,
        at_ms: int | None,
    ) -> dict[str, Any]:
        if not by.strip():
            raise ApprovalError("a decision needs the name of who takes it")
        with self._lock:
            if self._verdict is not None:
                first = self._verdict
                raise AlreadyDecidedError(
                    f"{self.approval_id} was already {first.state.value} by {first.by} "
                    f"at {first.at_ms}; it cannot be {state.value} now"
                )
            self._verdict = _Verdict(
                state, by.strip(), why.strip(), at_ms if at_ms is not None else _now_ms(), option
            )
        return self.record()

    def record(self) -> dict[str, Any]:
        """The entry for the decision record (JSON-ready)."""
        verdict = self._verdict
        return {
            "kind": "exception_approval",
            "approval_id": self.approval_id,
            "state": self.state.value,
            "created_ms": self.created_ms,
            "decided_ms": verdict.at_ms if verdict else None,
            "decided_by": verdict.by if verdict else None,
            "why": verdict.why if verdict else None,
            "chosen": verdict.option.as_dict() if verdict and verdict.option else None,
            "followed_recommendation": bool(
                verdict and verdict.option and verdict.option == self.decision.recommended
            ),
            "inputs": self.decision.as_dict(),
        }


def _now_ms() -> int:
    return int(time.time() * 1000)
