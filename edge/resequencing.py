"""From the route book to the re-sequencer and back: the agent's view of sequencing.

Builds a :class:`~edge.sequencer.SequencingProblem` from what the van knows now (where it
is, the time, its remaining stops with windows, service times, load and parcel depth, the
driver's break and any stop the driver committed to), runs the sequencer within its budget,
and turns the answer into epoch-second ETAs. Times inside the problem are seconds from now,
so a window that already closed is simply late from the first second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from edge.route_book import RouteBook, StopRow
from edge.sequencer import (
    Break,
    SequencerParams,
    SequencingProblem,
    Stop,
    build_result,
)
from edge.sequencer.base import Sequencer
from edge.traveltime import GreatCircleTravelTimes, TravelTimes
from sync.metrics import Histogram

__all__ = ["DEPTH_COST_M", "SOLVE_BUCKETS_S", "Resequencer", "SequenceOutcome"]

DEPTH_COST_M = 300.0
"""What reaching the deepest parcel of the load first costs, in metre-equivalents."""

SOLVE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Upper bounds of the solve-time histogram (``wayline_resequence_seconds``), in seconds."""


@dataclass(frozen=True, slots=True)
class SequenceOutcome:
    """An order of remaining stops with ETAs (epoch s), lateness per stop, and its origin."""

    etas: tuple[tuple[str, int], ...]
    late_s: tuple[int, ...]
    solver: str
    seconds: float
    distance_m: int = 0


class _Book(Protocol):
    def parcels(self, stop_id: str) -> list[dict[str, Any]]: ...


class Resequencer:
    """The agent's sequencing service: solve within a budget, or evaluate a kept order."""

    def __init__(
        self,
        *,
        budget_s: float,
        seed: int,
        travel_times: TravelTimes | None = None,
        sequencer: Sequencer | None = None,
    ) -> None:
        self.params = SequencerParams(time_limit_s=budget_s, seed=seed)
        self.travel_times = travel_times or GreatCircleTravelTimes()
        self._sequencer = sequencer
        self.solve_times = Histogram(SOLVE_BUCKETS_S)
        """How long each search took (not the kept orders, which search nothing)."""

    @property
    def sequencer(self) -> Sequencer:
        """The sequencer given, or the default, made (and its search loaded) at first use."""
        if self._sequencer is None:
            from edge.sequencer.portfolio import make_sequencer

            self._sequencer = make_sequencer()
        return self._sequencer

    def resequence(self, ctx: dict[str, Any], book: RouteBook | _Book) -> SequenceOutcome:
        """The best order the budget allows; never worse than the current order."""
        built = self._problem(ctx, book)
        if built is None:
            return SequenceOutcome((), (), "none", 0.0)
        problem, now = built
        t0 = time.perf_counter()
        result = self.sequencer.solve(problem, self.params)
        seconds = time.perf_counter() - t0
        self.solve_times.observe(seconds)
        return self._outcome(problem, result.order, now, result.solver, seconds)

    def keep(self, order: Sequence[str], ctx: dict[str, Any]) -> SequenceOutcome:
        """ETAs for an order the driver set (or the current one), without searching."""
        built = self._problem({**ctx, "stops": _ordered(ctx["stops"], order)}, None)
        if built is None:
            return SequenceOutcome((), (), "kept", 0.0)
        problem, now = built
        return self._outcome(problem, problem.current_order, now, "kept", 0.0)

    def _outcome(
        self, problem: SequencingProblem, order: Sequence[str], now: int, solver: str, secs: float
    ) -> SequenceOutcome:
        res = build_result(problem, self.params, order, solver, secs)
        late = []
        for sid, start in zip(res.order, res.starts, strict=True):
            due = problem.stops[problem.index[sid]].due
            late.append(max(0, start - due))
        return SequenceOutcome(
            etas=tuple((sid, now + a) for sid, a in zip(res.order, res.arrivals, strict=True)),
            late_s=tuple(late),
            solver=solver,
            seconds=secs,
            distance_m=int(res.distance),
        )

    def _problem(
        self, ctx: dict[str, Any], book: RouteBook | _Book | None
    ) -> tuple[SequencingProblem, int] | None:
        stops: list[StopRow] = list(ctx["stops"])
        route = ctx["route"]
        if not stops or route is None:
            return None
        now = int(ctx["now"])
        pos = ctx.get("position")
        here = (pos["lat"], pos["lon"]) if pos else (route["depot_lat"], route["depot_lon"])
        depot = (route["depot_lat"], route["depot_lon"])
        points = [here, depot, *((s.lat, s.lon) for s in stops)]
        m = self.travel_times.matrix(points, datetime.fromtimestamp(now))
        depth = _depths(stops, book) if book is not None else {}
        items = []
        for i, s in enumerate(stops):
            due = max(0, s.window_end - now) if s.window_end is not None else 2**40
            ready = min(max(0, (s.window_start or now) - now), due)
            items.append(
                Stop(
                    id=s.stop_id,
                    node=i + 2,
                    ready=ready,
                    due=due,
                    service=s.service_s,
                    depth=depth.get(s.stop_id, 0.0),
                )
            )
        brk = None
        if route.get("break_duration_s") and route.get("break_taken_at") is None:
            latest = max(0, route["break_latest"] - now)
            brk = Break(
                min(max(0, route["break_earliest"] - now), latest),
                latest,
                route["break_duration_s"],
            )
        end = route.get("end_at")
        committed = next((s.stop_id for s in stops if s.committed_next), None)
        problem = SequencingProblem(
            travel_time=m.seconds,
            distance=m.metres,
            start_node=0,
            start_time=0,
            stops=tuple(items),
            end_node=1,
            shift_end=max(0, end - now) if end else None,
            break_=brk,
            committed_next=committed,
            current_order=tuple(s.stop_id for s in stops),
            coordinates=tuple(points),
        )
        return problem, now


def _ordered(stops: Sequence[StopRow], order: Sequence[str]) -> list[StopRow]:
    by_id = {s.stop_id: s for s in stops}
    return [by_id[sid] for sid in order if sid in by_id]


def _depths(stops: Sequence[StopRow], book: RouteBook | _Book) -> dict[str, float]:
    """Cost of reaching each stop's parcels early: deeper in the load costs more."""
    deepest: dict[str, int] = {}
    for s in stops:
        positions = [p["load_position"] for p in book.parcels(s.stop_id) if p["load_position"]]
        if positions:
            deepest[s.stop_id] = max(positions)
    if not deepest:
        return {}
    top = max(deepest.values())
    return {sid: DEPTH_COST_M * math.sqrt(pos / top) for sid, pos in deepest.items()}
