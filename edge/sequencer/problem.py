"""What the vehicle re-sequencer is asked and what it answers.

A :class:`SequencingProblem` is one vehicle at a node of a caller-supplied matrix at a given
time, with its remaining stops; a :class:`SequenceResult` is an order of those stops with
their ETAs and costs. Times are integer seconds on the caller's clock (e.g. seconds since
the shift's midnight), distances integer metres. Windows are soft: a stop served after its
``due`` costs ``SequencerParams.lateness_weight`` per second, it is never refused.

Errors::

    SequencerError            (Exception) anything the sequencer refuses or cannot do
    └── InvalidProblemError   a problem or parameters that do not hold together
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Break",
    "InvalidProblemError",
    "SequenceResult",
    "SequencerError",
    "SequencerParams",
    "SequencingProblem",
    "Status",
    "Stop",
]

Matrix = tuple[tuple[int, ...], ...]
UNBOUNDED_DUE = 2**40  # a stop's due time when it has no window


class SequencerError(Exception):
    """Anything the re-sequencer refuses or cannot do."""


class InvalidProblemError(SequencerError):
    """A problem or parameter set that does not hold together."""


@dataclass(frozen=True, slots=True)
class Stop:
    """One remaining stop: a node of the matrices, a soft window and what changes hands.

    ``delivery`` is on board already and leaves the van here; ``pickup`` (a pickup or a
    return) is loaded here. ``depth`` is the cost of reaching this stop's parcels while the
    van is still full: paid in full when the stop is served first, not at all when last.
    """

    id: str
    node: int
    ready: int = 0
    due: int = UNBOUNDED_DUE
    service: int = 0
    delivery: int = 0
    pickup: int = 0
    depth: float = 0.0

    def __post_init__(self) -> None:
        if self.ready > self.due:
            raise InvalidProblemError(f"stop {self.id}: ready {self.ready} after due {self.due}")
        if min(self.service, self.delivery, self.pickup) < 0 or self.depth < 0:
            raise InvalidProblemError(f"stop {self.id}: negative service, load or depth")


@dataclass(frozen=True, slots=True)
class Break:
    """The driver's break: starts within ``[earliest, latest]`` and lasts ``duration``."""

    earliest: int
    latest: int
    duration: int

    def __post_init__(self) -> None:
        if self.earliest > self.latest or self.duration < 0:
            raise InvalidProblemError(f"bad break {self}")


def _matrix(rows: Sequence[Sequence[int]], name: str) -> tuple[Matrix, Any]:
    """The matrix as tuples of ints (what solvers index in Python) and as a NumPy ``int64``
    array (what they vectorise over), checked square, non-empty and non-negative."""
    import numpy as np

    try:
        arr = np.array(rows, dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidProblemError(f"{name} matrix is not a square table of numbers") from exc
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[0] != arr.shape[1]:
        raise InvalidProblemError(f"{name} matrix must be square and non-empty")
    if int(arr.min()) < 0:
        raise InvalidProblemError(f"{name} matrix has a negative entry")
    arr.setflags(write=False)
    return tuple(map(tuple, arr.tolist())), arr


@dataclass(frozen=True)
class SequencingProblem:
    """One vehicle's remaining stops, from where it is now to where it ends.

    ``current_order`` is the sequence the driver is following (the warm start and the
    answer of last resort); it defaults to the order of ``stops``. ``committed_next`` is a
    stop the driver has committed to: every answer serves it first. ``capacity`` ``None``
    ignores load; otherwise the van starts with every remaining delivery plus
    ``extra_load`` on board.
    """

    travel_time: Matrix
    distance: Matrix
    start_node: int
    start_time: int
    stops: tuple[Stop, ...]
    end_node: int
    shift_end: int | None = None
    capacity: int | None = None
    extra_load: int = 0
    break_: Break | None = None
    committed_next: str | None = None
    current_order: tuple[str, ...] = ()
    coordinates: tuple[tuple[float, float], ...] | None = None
    index: dict[str, int] = field(init=False, repr=False, compare=False)
    _arrays: tuple[Any, Any] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        tt, tt_arr = _matrix(self.travel_time, "travel-time")
        dm, dm_arr = _matrix(self.distance, "distance")
        if len(tt) != len(dm):
            raise InvalidProblemError("travel-time and distance matrices differ in size")
        object.__setattr__(self, "travel_time", tt)
        object.__setattr__(self, "distance", dm)
        object.__setattr__(self, "_arrays", (tt_arr, dm_arr))
        object.__setattr__(self, "stops", tuple(self.stops))
        n = len(tt)
        nodes = [self.start_node, self.end_node, *(s.node for s in self.stops)]
        if any(not 0 <= v < n for v in nodes):
            raise InvalidProblemError(f"a node is outside the {n}x{n} matrices")
        index = {s.id: i for i, s in enumerate(self.stops)}
        if len(index) != len(self.stops):
            raise InvalidProblemError("stop ids are not unique")
        object.__setattr__(self, "index", index)
        order = tuple(self.current_order) or tuple(s.id for s in self.stops)
        if sorted(order) != sorted(index):
            raise InvalidProblemError("current_order is not a permutation of the stops")
        if self.committed_next is not None:
            if self.committed_next not in index:
                raise InvalidProblemError(f"committed stop {self.committed_next} is not a stop")
            order = (self.committed_next, *(s for s in order if s != self.committed_next))
        object.__setattr__(self, "current_order", order)
        if self.coordinates is not None and len(self.coordinates) != n:
            raise InvalidProblemError("coordinates must list one point per matrix node")
        if self.capacity is not None and self.capacity < 0:
            raise InvalidProblemError("negative capacity")

    def arrays(self) -> tuple[Any, Any]:
        """The travel-time and distance matrices as read-only NumPy ``int64`` arrays, shared
        by every solver (and every :meth:`reordered` copy) of this problem."""
        assert self._arrays is not None
        return self._arrays

    @property
    def day_end(self) -> int:
        """When the day ends: the shift end, else the latest due time of a windowed stop,
        else the start time."""
        if self.shift_end is not None:
            return self.shift_end
        dues = [s.due for s in self.stops if s.due < UNBOUNDED_DUE]
        return max(dues, default=self.start_time)

    @property
    def initial_load(self) -> int:
        """Load on board now: every remaining delivery plus ``extra_load``."""
        return self.extra_load + sum(s.delivery for s in self.stops)

    def reordered(self, order: Sequence[str]) -> SequencingProblem:
        """The same problem with ``order`` as the current order (a solver's warm start),
        without checking the matrices again."""
        order = tuple(order)
        if not self.is_valid_order(order):
            raise InvalidProblemError("order is not a permutation with the committed stop first")
        new = copy.copy(self)
        object.__setattr__(new, "current_order", order)
        return new

    def is_valid_order(self, order: Sequence[str]) -> bool:
        """A permutation of the stops that keeps the committed stop first."""
        if len(order) != len(self.stops) or set(order) != set(self.index):
            return False
        return self.committed_next is None or order[0] == self.committed_next


@dataclass(frozen=True, slots=True)
class SequencerParams:
    """How hard and how long to search, and what a second late or a metre costs.

    Costs are in metre-equivalents: a metre driven costs 1, a second late at a stop (or
    past the shift end, or a break started past its latest start) ``lateness_weight``, a
    unit of load over capacity at a stop ``overload_weight``, a stop's depth ``depth_weight``
    times its :attr:`Stop.depth`.
    """

    time_limit_s: float = 0.2
    seed: int = 0
    lateness_weight: float = 100.0
    overload_weight: float = 10_000.0
    depth_weight: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.time_limit_s <= 3600:
            raise InvalidProblemError(f"time_limit_s must be in (0, 3600]: {self.time_limit_s}")
        if self.seed < 0:
            raise InvalidProblemError("seed must be non-negative")
        for name in ("lateness_weight", "overload_weight", "depth_weight"):
            if getattr(self, name) < 0:
                raise InvalidProblemError(f"{name} must be non-negative")


class Status(enum.StrEnum):
    """How an answer came about."""

    SOLVED = "solved"  # the solver's own route
    FALLBACK = "fallback"  # the solver failed or ran out of time; the greedy route stands
    CURRENT = "current"  # nothing beat the driver's current order; it stands


@dataclass(frozen=True, slots=True)
class SequenceResult:
    """An order of the remaining stops with its schedule and costs.

    ``arrivals`` and ``starts`` (service start, after any wait and break) are per stop in
    ``order``; ``end_time`` is the arrival at the end node.
    """

    order: tuple[str, ...]
    arrivals: tuple[int, ...]
    starts: tuple[int, ...]
    distance: int
    lateness: int
    cost: float
    break_start: int | None
    end_time: int
    solver: str
    seconds: float
    status: Status

    @property
    def etas(self) -> dict[str, int]:
        """Service start per stop id."""
        return dict(zip(self.order, self.starts, strict=True))
