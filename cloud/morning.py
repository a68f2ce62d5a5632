"""The morning plan runs by itself: each depot's day is planned at its cut-off, in its zone.

Every depot has an IANA time zone and a cut-off, a local ``HH:MM`` (its own, or the
coordinator's defaults, :class:`MorningSettings`). A worker thread looks every ``tick_s``
seconds, on the coordinator's clock (simulated in the demo), at each depot's local day: once
the cut-off of that day has come, the depot's day is planned (:meth:`Dispatcher.plan_day`)
with the orders it has. It looks at start too, so a coordinator that was down at a cut-off
plans that day when it comes back the same local day (catch-up).

Once per depot and local day: the ``plan`` decision of the region ``depot/day`` is the record
that it happened, whoever made it (the schedule, or ``POST /v1/plan`` before the cut-off), and
asking again answers with it. A decision made by the schedule says so in its trigger
(``by: schedule``, the zone, the cut-off and the instant it fell due); its approver is
``policy:schedule``. A depot with no open orders for its day has nothing to plan: it is
planned at the first look after an order arrives that day.

Clock changes: a cut-off in the hour skipped when clocks go forward falls due at the first
instant that exists (the change itself); one in the hour that repeats when clocks go back
falls due at its first occurrence, and the second occurrence finds the day planned
(:func:`cloud.local_days.local_instant`).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cloud.local_days import UTC_ZONE, check_cutoff, check_zone, day_of, local_instant

if TYPE_CHECKING:
    from cloud.coordinator import Coordinator

__all__ = ["APPROVER", "Due", "MorningSchedule", "MorningSettings"]

log = logging.getLogger(__name__)

APPROVER = "policy:schedule"
"""Who approves a morning plan the schedule makes."""


@dataclass(frozen=True, slots=True)
class MorningSettings:
    """When depots' days are planned by themselves, and in which zone a depot plans.

    ``default_timezone`` and ``default_cutoff`` apply to a depot that has none of its own.
    ``tick_s``: how often (machine seconds) the schedule looks for a cut-off that has come;
    None runs no schedule (the morning plan is then made only on request).
    """

    default_timezone: str = UTC_ZONE
    default_cutoff: str = "06:00"
    tick_s: float | None = None

    def __post_init__(self) -> None:
        try:
            check_zone(self.default_timezone)
        except ValueError as exc:
            raise ValueError(f"morning default_timezone: {exc}") from None
        try:
            check_cutoff(self.default_cutoff)
        except ValueError as exc:
            raise ValueError(f"morning default_cutoff: {exc}") from None
        if self.tick_s is not None and not 0 < self.tick_s <= 3600:
            raise ValueError(f"morning tick_s must be in (0, 3600] seconds, got {self.tick_s}")


@dataclass(frozen=True, slots=True)
class Due:
    """A depot's local day whose cut-off has come and that has no morning plan yet."""

    depot_id: str
    day: str
    timezone: str
    cutoff: str
    at_s: int
    """Epoch seconds at which the cut-off fell due."""

    def why(self) -> dict[str, Any]:
        """What the decision's trigger records about the schedule."""
        return {
            "by": "schedule",
            "timezone": self.timezone,
            "cutoff": self.cutoff,
            "cutoff_at_ms": self.at_s * 1000,
        }


class MorningSchedule:
    """Plans each depot's day at its cut-off; a worker thread when ``tick_s`` is set."""

    def __init__(self, coordinator: Coordinator, settings: MorningSettings) -> None:
        self.c = coordinator
        self.db = coordinator.db
        self.settings = settings
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._refused: set[str] = set()

    def start(self) -> None:
        if self.settings.tick_s is None or self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="cloud-morning", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
            self._thread = None

    def _loop(self) -> None:
        interval = self.settings.tick_s or 60.0
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("morning plan failed; it is tried again at the next look")
            if self._stopping.wait(interval):
                return

    # -- what is due, and planning it --------------------------------------------------------

    def due(self, now_s: float | None = None) -> list[Due]:
        """The depots whose local day's cut-off has come, unplanned, with orders to plan."""
        now = self.c.clock() if now_s is None else now_s
        out: list[Due] = []
        for depot in self.db.depots():
            depot_id, zone_name, cutoff = depot["depot_id"], depot["timezone"], depot["cutoff"]
            try:
                day = day_of(now, zone_name)
                at = local_instant(day, check_cutoff(cutoff), zone_name)
            except ValueError as exc:
                if depot_id not in self._refused:  # said once, not at every look
                    self._refused.add(depot_id)
                    log.warning("depot %s is not scheduled: %s", depot_id, exc)
                continue
            if now < at or self.db.morning_plan(f"{depot_id}/{day}") is not None:
                continue
            if not self.db.region_orders(depot_id, day):
                continue  # nothing to plan yet
            out.append(Due(depot_id, day, zone_name, cutoff, at))
        return out

    def tick(self, now_s: float | None = None) -> list[dict[str, Any]]:
        """Plan every depot-day that is due; return the plans made (one per region)."""
        by_day: dict[str, list[Due]] = defaultdict(list)
        for d in self.due(now_s):
            by_day[d.day].append(d)
        made: list[dict[str, Any]] = []
        for day, dues in sorted(by_day.items()):
            why = {d.depot_id: d.why() for d in dues}
            results = self.c.dispatch.plan_day(day, [d.depot_id for d in dues], APPROVER, why=why)
            for r in results:
                if r["already_planned"]:
                    continue
                made.append(r)
                log.info(
                    "morning plan of %s at its cut-off: %s, %d orders, %d unplanned (%s)",
                    r["region"], r["status"], r["orders"], r["unplanned"], r["decision_id"],
                )  # fmt: skip
        return made
