"""The customer-facing ETA window, kept apart from the operational ETA.

The operational ETA moves with every event; the customer hears about it only when the
window shifts meaningfully. The window narrows as the van approaches
(:data:`DEFAULT_STAGES`): 2 hours while the van is more than 5 stops away (and the evening
before), 1 hour from 5 stops away, 30 minutes from 2 stops away. Windows start on a
15-minute grid around the operational ETA.

:class:`CustomerEtaRule` is a pure rule, one per tenant's :class:`EtaSettings`. From the
window last notified, the new operational ETA and the time, it decides whether to notify:

- the first window is always sent (``first_window``);
- a shift of the ETA under ``threshold_min`` since the notified one is not (``below_threshold``);
- a shift at or past it is (``shift``), except that a shift back against the last notified
  one needs ``threshold_min + hysteresis_min`` (``hysteresis``), so an ETA wavering around
  the threshold never sends the same shift twice;
- a narrower stage is sent even without a shift (``narrowed``);
- nothing is sent within ``min_interval_min`` of the last message (``rate_limited``) or in
  the tenant's quiet hours (``quiet_hours``); the change stays due and goes out later.

Every :class:`EtaDecision` carries the :class:`EtaChange` that caused it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DEFAULT_STAGES",
    "CustomerEtaRule",
    "CustomerWindow",
    "EtaChange",
    "EtaDecision",
    "EtaSettings",
    "WindowStage",
]

_MIN = 60_000


@dataclass(frozen=True)
class WindowStage:
    """A window width that applies from ``min_stops_away`` stops away (inclusive) upwards."""

    min_stops_away: int
    width_min: int


#: 2 h until the van is 5 stops away, then 1 h, then 30 min from 2 stops away.
DEFAULT_STAGES: tuple[WindowStage, ...] = (
    WindowStage(6, 120),
    WindowStage(3, 60),
    WindowStage(0, 30),
)

Minutes = Annotated[float, Field(strict=True, ge=0)]
Hour = Annotated[int, Field(strict=True, ge=0, le=23)]


class EtaSettings(BaseModel):
    """One tenant's notification settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold_min: Annotated[float, Field(strict=True, gt=0)] = 15.0
    hysteresis_min: Minutes = 5.0
    min_interval_min: Minutes = 30.0
    quiet_start_hour: Hour | None = 21
    quiet_end_hour: Hour | None = 7
    timezone: str = "UTC"
    grid_min: Annotated[int, Field(strict=True, ge=1, le=60)] = 15
    stages: tuple[WindowStage, ...] = DEFAULT_STAGES

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("stages")
    @classmethod
    def _stages_cover_zero(cls, value: tuple[WindowStage, ...]) -> tuple[WindowStage, ...]:
        ordered = tuple(sorted(value, key=lambda s: -s.min_stops_away))
        if not ordered or ordered[-1].min_stops_away != 0:
            raise ValueError("stages must include one that starts at 0 stops away")
        return ordered


@dataclass(frozen=True)
class CustomerWindow:
    """A window a customer was told (or is about to be told)."""

    start_ms: int
    end_ms: int
    eta_ms: int
    width_min: int
    notified_ms: int
    shift_min: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "eta_ms": self.eta_ms,
            "width_min": self.width_min,
            "notified_ms": self.notified_ms,
            "shift_min": self.shift_min,
        }


@dataclass(frozen=True)
class EtaChange:
    """The ETA change a decision is about."""

    previous_eta_ms: int | None
    new_eta_ms: int
    shift_min: float | None
    stops_away: int | None
    previous_window: CustomerWindow | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "previous_eta_ms": self.previous_eta_ms,
            "new_eta_ms": self.new_eta_ms,
            "shift_min": None if self.shift_min is None else round(self.shift_min, 1),
            "stops_away": self.stops_away,
            "previous_window": self.previous_window.as_dict() if self.previous_window else None,
        }


@dataclass(frozen=True)
class EtaDecision:
    """Whether to notify, why, the window to send (and then keep), and the change behind it."""

    notify: bool
    reason: str
    window: CustomerWindow
    change: EtaChange
    due: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "notify": self.notify,
            "reason": self.reason,
            "due": self.due,
            "window": self.window.as_dict(),
            "change": self.change.as_dict(),
        }


class CustomerEtaRule:
    """Decides when a customer hears about their window (see the module docstring)."""

    def __init__(self, settings: EtaSettings | None = None):
        self.settings = settings or EtaSettings()
        self._zone = ZoneInfo(self.settings.timezone)

    def width_for(self, stops_away: int | None) -> int:
        """The window width for a van this many stops away (None: not started yet)."""
        stages = self.settings.stages
        if stops_away is None:
            return stages[0].width_min
        return next(s.width_min for s in stages if stops_away >= s.min_stops_away)

    def window_for(self, eta_ms: int, stops_away: int | None, now_ms: int) -> CustomerWindow:
        """The window around ``eta_ms``, starting on the grid."""
        width = self.width_for(stops_away)
        grid = self.settings.grid_min * _MIN
        start = math.floor((eta_ms - width * _MIN / 2) / grid) * grid
        return CustomerWindow(int(start), int(start + width * _MIN), eta_ms, width, now_ms)

    def decide(
        self,
        previous: CustomerWindow | None,
        eta_ms: int,
        now_ms: int,
        stops_away: int | None = None,
    ) -> EtaDecision:
        """Whether the new operational ETA ``eta_ms`` warrants a message now."""
        s = self.settings
        candidate = self.window_for(eta_ms, stops_away, now_ms)
        if previous is None:
            change = EtaChange(None, eta_ms, None, stops_away, None)
            return self._gate(None, candidate, change, "first_window", now_ms)
        shift = (eta_ms - previous.eta_ms) / _MIN
        change = EtaChange(previous.eta_ms, eta_ms, shift, stops_away, previous)
        candidate = CustomerWindow(
            candidate.start_ms,
            candidate.end_ms,
            eta_ms,
            candidate.width_min,
            now_ms,
            shift_min=shift,
        )
        wanted: str
        if abs(shift) >= s.threshold_min:
            reverses = previous.shift_min * shift < 0
            if reverses and abs(shift) < s.threshold_min + s.hysteresis_min:
                return EtaDecision(False, "hysteresis", previous, change)
            wanted = "shift"
        elif candidate.width_min < previous.width_min:
            wanted = "narrowed"
            candidate = CustomerWindow(
                candidate.start_ms,
                candidate.end_ms,
                eta_ms,
                candidate.width_min,
                now_ms,
                shift_min=previous.shift_min,
            )
        else:
            reason = "unchanged" if shift == 0 else "below_threshold"
            return EtaDecision(False, reason, previous, change)
        return self._gate(previous, candidate, change, wanted, now_ms)

    def _gate(
        self,
        previous: CustomerWindow | None,
        candidate: CustomerWindow,
        change: EtaChange,
        wanted: str,
        now_ms: int,
    ) -> EtaDecision:
        kept = previous or candidate
        if self._quiet(now_ms):
            return EtaDecision(False, "quiet_hours", kept, change, due=wanted)
        interval = self.settings.min_interval_min * _MIN
        if previous is not None and now_ms - previous.notified_ms < interval:
            return EtaDecision(False, "rate_limited", kept, change, due=wanted)
        return EtaDecision(True, wanted, candidate, change)

    def _quiet(self, now_ms: int) -> bool:
        start, end = self.settings.quiet_start_hour, self.settings.quiet_end_hour
        if start is None or end is None or start == end:
            return False
        hour = datetime.fromtimestamp(now_ms / 1000, tz=UTC).astimezone(self._zone).hour
        return start <= hour < end if start < end else (hour >= start or hour < end)
