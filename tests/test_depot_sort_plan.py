"""The depot's sort plan: reverse delivery order, capacities, overflow, re-sort diffs."""

from __future__ import annotations

import time

import pytest

from edge.depot.barcode import container_label, normalise, parse_container_label
from edge.depot.sample import morning, route_plan
from edge.depot.sort_plan import OVERFLOW, ContainerSpec, Slot, assign, diff, sort_depot
from edge.errors import BarcodeError
from protocol import Location, Parcel, PlannedStop, RoutePlan

BIG = (
    ContainerSpec("BAG-1", "bag", 100.0, 30.0),
    ContainerSpec("SHELF-A", "shelf", 300.0, 100.0),
    ContainerSpec("CAGE-1", "cage", 1000.0, 400.0),
)


def plan_of(parcels: list[list[tuple[float, float]]], version: int = 1) -> RoutePlan:
    """A plan whose stop i (from 1) carries parcels of (volume_l, weight_kg)."""
    here = Location(lat=52.0, lon=4.0)
    stops = tuple(
        PlannedStop(
            stop_id=f"S{i}",
            order_id=f"O{i}",
            location=here,
            parcels=tuple(
                Parcel(parcel_id=f"P{i}-{k}", barcode=f"B{i}X{k}", volume_l=v, weight_kg=w)
                for k, (v, w) in enumerate(sizes, start=1)
            ),
        )
        for i, sizes in enumerate(parcels, start=1)
    )
    return RoutePlan(
        route_id="R1",
        vehicle_id="VAN-1",
        version=version,
        day="2026-11-24",
        depot=here,
        start_at=0,
        stops=stops,
    )


def test_first_delivery_nearest_the_door_last_deepest() -> None:
    plan = route_plan(1, 30)
    sort = assign(plan, BIG)
    by_stop = sorted(sort.assignments, key=lambda a: (a.stop_index, a.parcel_id))
    depths = [a.load_position for a in by_stop]
    assert depths == sorted(depths), "depth must grow with delivery order"
    assert depths[0] == 1 and depths[-1] == len(by_stop)
    # containers are filled from the door inwards, positions restart in each
    containers = [a.container for a in by_stop]
    order = [c.container_id for c in BIG]
    assert [order.index(c) for c in containers] == sorted(order.index(c) for c in containers)
    for c in order:
        positions = [a.position for a in by_stop if a.container == c]
        assert positions == list(range(1, len(positions) + 1))
    # loading order (deepest first) is the exact reverse of the delivery order
    loading = sorted(sort.assignments, key=lambda a: -a.load_position)
    assert [a.stop_index for a in loading] == sorted((a.stop_index for a in loading), reverse=True)


def test_capacities_hold_and_a_stop_stays_together() -> None:
    specs = (ContainerSpec("A", "bag", 50.0, 1000.0), ContainerSpec("B", "cage", 50.0, 1000.0))
    plan = plan_of([[(20, 1)], [(20, 1), (20, 1)], [(10, 1)]])
    sort = assign(plan, specs)
    where = {a.parcel_id: a.container for a in sort.assignments}
    # stop 2 does not fit in what is left of A (10 l): both its parcels move on to B together
    assert where == {"P1-1": "A", "P2-1": "B", "P2-2": "B", "P3-1": "B"}
    for load in sort.loads:
        assert load.volume_l <= load.max_volume_l and load.weight_kg <= load.max_weight_kg
    assert not sort.overflow


def test_weight_limit_counts_as_much_as_volume() -> None:
    specs = (ContainerSpec("A", "bag", 1000.0, 10.0), ContainerSpec("B", "cage", 1000.0, 10.0))
    sort = assign(plan_of([[(1, 6)], [(1, 6)], [(1, 6)]]), specs)
    assert [a.container for a in sort.assignments] == ["A", "B", OVERFLOW]


def test_overflow_is_reported_and_takes_the_tail_of_the_route() -> None:
    specs = (ContainerSpec("A", "bag", 30.0, 100.0),)
    sort = assign(plan_of([[(10, 1)], [(10, 1)], [(10, 1)], [(10, 1)], [(50, 1)]]), specs)
    assert [a.parcel_id for a in sort.overflow] == ["P4-1", "P5-1"]
    assert all(a.container == OVERFLOW for a in sort.overflow)
    assert max(a.load_position for a in sort.assignments) == 5
    assert sort.loads[0].volume_l == 30.0


def test_an_oversize_parcel_goes_to_overflow_alone() -> None:
    specs = (ContainerSpec("A", "bag", 30.0, 100.0), ContainerSpec("B", "cage", 60.0, 100.0))
    sort = assign(plan_of([[(10, 1)], [(500, 1)], [(10, 1)]]), specs)
    assert [a.parcel_id for a in sort.overflow] == ["P2-1"]
    assert {a.parcel_id: a.container for a in sort.assignments}["P3-1"] == "A"


def test_resort_after_a_late_change_touches_only_the_affected_parcels() -> None:
    old_plan = route_plan(1, 40)
    old = assign(old_plan, BIG)
    placed = old.slots()  # everything is already on the floor
    # v2: stop 7 cancelled, a new stop 41 appended, stops 20 and 21 swapped
    order = [*range(1, 20), 21, 20, *range(22, 42)]
    new_plan = route_plan(1, 41, version=2, skip=frozenset({7}), order=order)
    pinned = {pid: s.container for pid, s in placed.items()}
    new = assign(new_plan, BIG, pinned)
    change = diff(placed, new.slots())
    moved = {m.parcel_id: m.kind for m in change.moves}
    stop7 = {a.parcel_id for a in old.assignments if a.stop_id == "S01-007"}
    swapped = {a.parcel_id for a in old.assignments if a.stop_id in ("S01-020", "S01-021")}
    assert {p for p, k in moved.items() if k == "pull"} == stop7
    reorders = {p for p, k in moved.items() if k == "reorder"}
    assert reorders and reorders <= swapped, "only one side of the swap needs moving"
    assert len(reorders) < len(swapped)
    assert not [k for k in moved.values() if k == "move"], "pinned parcels keep their container"
    # everyone else stays where it is; some merely take a new number
    untouched = set(placed) - set(moved)
    assert len(untouched) >= len(placed) - len(stop7) - len(swapped)
    for pid in untouched:
        assert new.by_parcel[pid].container == placed[pid].container
    assert change.renumbered, "cancelling stop 7 shifts the numbers after it"


def test_diff_of_a_parcel_moved_to_another_vehicle() -> None:
    placed = {"P": Slot("VAN-1", "BAG-1", 3), "Q": Slot("VAN-1", "BAG-1", 4)}
    target = {"P": Slot("VAN-2", "CAGE-1", 1), "Q": Slot("VAN-1", "BAG-1", 3)}
    change = diff(placed, target)
    assert [(m.parcel_id, m.kind, m.target) for m in change.moves] == [
        ("P", "move", Slot("VAN-2", "CAGE-1", 1))
    ]
    assert change.renumbered == {"Q": Slot("VAN-1", "BAG-1", 3)}


def test_diff_unchanged_is_empty() -> None:
    slots = assign(route_plan(2, 25), BIG).slots()
    change = diff(slots, slots)
    assert change.moves == () and change.renumbered == {}


def test_sorting_5000_parcels_is_fast() -> None:
    plans = morning(25, 130)
    assert sum(len(s.parcels) for p in plans for s in p.stops) > 4000
    t0 = time.perf_counter()
    sorts = sort_depot(plans, lambda _v: BIG)
    elapsed = time.perf_counter() - t0
    assert len(sorts) == 25
    assert elapsed < 2.0, f"sorting took {elapsed:.2f}s"


def test_container_spec_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        ContainerSpec("OVERFLOW", "bag", 1, 1)
    with pytest.raises(ValueError):
        ContainerSpec("A", "box", 1, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ContainerSpec("A", "bag", 0, 1)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("WL010011", "WL010011"),
        ("  WL010011\r\n", "WL010011"),
        ("\x02WL010011\x03", "WL010011"),
        ("WL01\x1d0011\t", "WL010011"),
        ("\ufeffWL010011", "WL010011"),
    ],
)
def test_stray_characters_are_stripped(raw: str, code: str) -> None:
    assert normalise(raw) == code


@pytest.mark.parametrize("raw", ["", "  \r\n", "WL01?0011", "ÄÖÜ", "x" * 65, "<script>"])
def test_junk_is_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(BarcodeError) as err:
        normalise(raw)
    assert "barcode" in str(err.value) or "empty" in str(err.value)


def test_container_labels_round_trip() -> None:
    assert parse_container_label(container_label("VAN-01", "CAGE-1")) == ("VAN-01", "CAGE-1")
    assert parse_container_label("WL010011") is None
