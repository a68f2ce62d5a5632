"""The sort plan: which vehicle, container and position each parcel goes to. Pure and fast.

A vehicle's containers (bags, cages, shelves) are listed **from the door inwards**: the
first is the one the driver reaches first. Deliveries are taken in the route's order and
poured into the containers from the door: the first deliveries fill the door container,
later ones the next, the last ones the deepest. Inside a container, position 1 is nearest
the door (the first delivery); loading therefore runs in reverse delivery order, deepest
first. A parcel's ``load_position`` is its depth in the whole vehicle (1 = nearest the
door): containers in door order, positions within each.

Each container has a volume and a weight limit. A stop's parcels stay together when they
fit; a stop that no longer fits moves on to the next container. What fits nowhere goes to
the vehicle's :data:`OVERFLOW` container and is listed in :attr:`VehicleSort.overflow`, so
the caller can report it: overflow lands on the tail of the route, the stops the cloud can
most easily give to another vehicle.

Late changes: :func:`assign` takes ``pinned`` parcels (already in a container on the
floor) and keeps them where they are; only the rest is placed around them. :func:`diff`
compares what is placed with the new assignment and returns the moves a person must make:
a parcel that changed vehicle or container, was cancelled, or is out of order in its
container (the fewest such, by a longest increasing subsequence). A parcel whose position
number only shifted because others arrived around it is renumbered, not moved.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from protocol import RoutePlan

__all__ = [
    "CONTAINER_KINDS",
    "OVERFLOW",
    "Assignment",
    "ContainerLoad",
    "ContainerSpec",
    "Diff",
    "Move",
    "Slot",
    "VehicleSort",
    "assign",
    "diff",
    "sort_depot",
]

OVERFLOW = "OVERFLOW"
"""The container of parcels that fit in none of the vehicle's containers."""
CONTAINER_KINDS = ("bag", "cage", "shelf")
_CONTAINER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """One container of a vehicle: its label, kind and limits."""

    container_id: str
    kind: Literal["bag", "cage", "shelf"]
    max_volume_l: float
    max_weight_kg: float

    def __post_init__(self) -> None:
        if not _CONTAINER_ID.match(self.container_id) or self.container_id == OVERFLOW:
            raise ValueError(
                f"container id {self.container_id!r} must be 1-32 letters, digits, _ . - "
                f"(and not {OVERFLOW})"
            )
        if self.kind not in CONTAINER_KINDS:
            raise ValueError(f"container kind must be one of {CONTAINER_KINDS}")
        if not (self.max_volume_l > 0 and self.max_weight_kg > 0):
            raise ValueError(f"container {self.container_id}: limits must be positive")


@dataclass(frozen=True, slots=True)
class Slot:
    """Where a parcel is or goes: vehicle, container, position in the container (1 = door)."""

    vehicle_id: str
    container: str
    position: int


@dataclass(frozen=True, slots=True)
class Assignment:
    """One parcel's place in the sort plan."""

    parcel_id: str
    barcode: str
    vehicle_id: str
    stop_id: str
    stop_index: int
    """Position of the parcel's stop in the delivery order, from 1."""
    container: str
    position: int
    load_position: int
    """Depth in the whole vehicle: 1 is nearest the door."""
    weight_kg: float
    volume_l: float

    @property
    def slot(self) -> Slot:
        return Slot(self.vehicle_id, self.container, self.position)


@dataclass(frozen=True, slots=True)
class ContainerLoad:
    """How full a container is in a sort."""

    container_id: str
    kind: str
    parcels: int
    volume_l: float
    weight_kg: float
    max_volume_l: float
    max_weight_kg: float


@dataclass(frozen=True, slots=True)
class VehicleSort:
    """The sort of one vehicle's route into its containers."""

    vehicle_id: str
    route_id: str
    version: int
    assignments: tuple[Assignment, ...]
    loads: tuple[ContainerLoad, ...]
    overflow: tuple[Assignment, ...] = ()
    by_parcel: dict[str, Assignment] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.by_parcel.update((a.parcel_id, a) for a in self.assignments)

    def slots(self) -> dict[str, Slot]:
        return {a.parcel_id: a.slot for a in self.assignments}


@dataclass(frozen=True, slots=True)
class Move:
    """A parcel a person must move: from where it is to where it goes (None: cancelled)."""

    parcel_id: str
    source: Slot
    target: Slot | None
    kind: Literal["move", "reorder", "pull"]


@dataclass(frozen=True, slots=True)
class Diff:
    """What a plan change means on the floor: moves to make, positions merely renumbered."""

    moves: tuple[Move, ...]
    renumbered: dict[str, Slot]


def assign(
    plan: RoutePlan,
    containers: Iterable[ContainerSpec],
    pinned: Mapping[str, str] | None = None,
) -> VehicleSort:
    """Sort one vehicle's route into its containers (see the module docstring).

    ``pinned`` maps parcel ids already on the floor to their container; they stay there
    (a pinned parcel whose container is unknown is placed like the others).
    """
    specs = list(containers)
    index = {c.container_id: i for i, c in enumerate(specs)}
    pins = {pid: c for pid, c in (pinned or {}).items() if c in index}
    vol = [0.0] * len(specs)
    kg = [0.0] * len(specs)
    chosen: dict[str, str] = {}
    order: list[tuple[int, int, str, str, str, float, float]] = []
    stops = [s for s in plan.stops if s.kind == "delivery" and s.parcels]
    for stop_no, stop in enumerate(stops, start=1):
        for k, p in enumerate(stop.parcels):
            order.append(
                (stop_no, k, p.parcel_id, p.barcode, stop.stop_id, p.weight_kg, p.volume_l)
            )
            if p.parcel_id in pins:
                i = index[pins[p.parcel_id]]
                vol[i] += p.volume_l
                kg[i] += p.weight_kg
                chosen[p.parcel_id] = pins[p.parcel_id]

    def fits(i: int, v: float, w: float) -> bool:
        c = specs[i]
        return vol[i] + v <= c.max_volume_l + 1e-9 and kg[i] + w <= c.max_weight_kg + 1e-9

    cursor = 0
    by_stop: dict[int, list[tuple[int, int, str, str, str, float, float]]] = {}
    for row in order:
        by_stop.setdefault(row[0], []).append(row)
    for stop_no in sorted(by_stop):
        rows = [r for r in by_stop[stop_no] if r[2] not in chosen]
        if not rows:
            continue
        pinned_here = [index[chosen[r[2]]] for r in by_stop[stop_no] if r[2] in chosen]
        v_all = sum(r[6] for r in rows)
        w_all = sum(r[5] for r in rows)
        # Keep the stop together: with its pinned parcels, else from the cursor onwards.
        candidates = [*pinned_here, *range(cursor, len(specs))]
        whole = next((i for i in candidates if fits(i, v_all, w_all)), None)
        if whole is not None:
            for r in rows:
                vol[whole] += r[6]
                kg[whole] += r[5]
                chosen[r[2]] = specs[whole].container_id
            cursor = max(cursor, whole)
            continue
        for r in rows:  # the stop does not fit in one container: parcel by parcel
            slot = next((j for j in range(cursor, len(specs)) if fits(j, r[6], r[5])), None)
            if slot is None:
                chosen[r[2]] = OVERFLOW
                continue
            vol[slot] += r[6]
            kg[slot] += r[5]
            chosen[r[2]] = specs[slot].container_id
            cursor = slot
    return _number(plan, specs, order, chosen)


def _number(
    plan: RoutePlan,
    specs: list[ContainerSpec],
    order: list[tuple[int, int, str, str, str, float, float]],
    chosen: dict[str, str],
) -> VehicleSort:
    """Positions by delivery order inside each container; depth across the vehicle."""
    names = [c.container_id for c in specs] + [OVERFLOW]
    members: dict[str, list[tuple[int, int, str, str, str, float, float]]] = {n: [] for n in names}
    for row in order:
        members[chosen[row[2]]].append(row)
    out: list[Assignment] = []
    loads: list[ContainerLoad] = []
    depth = 0
    for n, spec in zip(names, [*specs, None], strict=True):
        rows = members[n]
        for pos, (stop_no, _k, pid, code, stop_id, w, v) in enumerate(rows, start=1):
            out.append(
                Assignment(pid, code, plan.vehicle_id, stop_id, stop_no, n, pos, depth + pos, w, v)
            )
        depth += len(rows)
        if spec is not None:
            loads.append(
                ContainerLoad(
                    n,
                    spec.kind,
                    len(rows),
                    round(sum(r[6] for r in rows), 3),
                    round(sum(r[5] for r in rows), 3),
                    spec.max_volume_l,
                    spec.max_weight_kg,
                )
            )
    return VehicleSort(
        vehicle_id=plan.vehicle_id,
        route_id=plan.route_id,
        version=plan.version,
        assignments=tuple(out),
        loads=tuple(loads),
        overflow=tuple(a for a in out if a.container == OVERFLOW),
    )


def sort_depot(
    plans: Iterable[RoutePlan],
    containers_of: Callable[[str], Iterable[ContainerSpec]],
    pinned: Mapping[str, str] | None = None,
) -> dict[str, VehicleSort]:
    """The sort of every vehicle leaving the depot, keyed by vehicle id."""
    return {p.vehicle_id: assign(p, containers_of(p.vehicle_id), pinned) for p in plans}


def diff(placed: Mapping[str, Slot], target: Mapping[str, Slot]) -> Diff:
    """Moves that take parcels from where they are (``placed``) to the new plan (``target``).

    Only parcels in ``placed`` matter: one that is not on the floor yet gets its new place
    when it is scanned. A parcel missing from ``target`` is pulled (cancelled); one whose
    vehicle or container changed is moved; inside one container, the parcels whose order
    disagrees with the new positions are reordered, the fewest possible. The others keep
    their place and only take the new number (``renumbered``).
    """
    moves: list[Move] = []
    renumbered: dict[str, Slot] = {}
    stay: dict[tuple[str, str], list[tuple[int, int, str]]] = {}
    for pid, here in placed.items():
        there = target.get(pid)
        if there is None:
            moves.append(Move(pid, here, None, "pull"))
        elif (here.vehicle_id, here.container) != (there.vehicle_id, there.container):
            moves.append(Move(pid, here, there, "move"))
        else:
            stay.setdefault((here.vehicle_id, here.container), []).append(
                (here.position, there.position, pid)
            )
    for rows in stay.values():
        rows.sort()
        keep = _increasing(rows)
        for _old, _new, pid in rows:
            there = target[pid]
            if pid in keep:
                if there != placed[pid]:
                    renumbered[pid] = there
            else:
                moves.append(Move(pid, placed[pid], there, "reorder"))
    moves.sort(key=lambda m: (m.source.vehicle_id, m.source.container, m.source.position))
    return Diff(tuple(moves), renumbered)


def _increasing(rows: list[tuple[int, int, str]]) -> set[str]:
    """Parcel ids of a longest subsequence whose new positions increase (patience sort)."""
    tails: list[int] = []
    tail_idx: list[int] = []
    prev: list[int] = [-1] * len(rows)
    for i, (_old, new, _pid) in enumerate(rows):
        k = bisect.bisect_left(tails, new)
        if k == len(tails):
            tails.append(new)
            tail_idx.append(i)
        else:
            tails[k] = new
            tail_idx[k] = i
        prev[i] = tail_idx[k - 1] if k else -1
    keep: set[str] = set()
    i = tail_idx[-1] if tail_idx else -1
    while i >= 0:
        keep.add(rows[i][2])
        i = prev[i]
    return keep
