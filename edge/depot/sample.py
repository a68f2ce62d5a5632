"""A synthetic depot morning: route plans for several vans around one depot.

Used by the tests and the benchmark; reproducible from a seed. Barcodes read
``WL{vehicle:02d}{stop:03d}{parcel}``, parcels weigh 0.5-12 kg and measure 2-40 l.
"""

from __future__ import annotations

import random

from protocol import Location, Parcel, PlannedStop, RoutePlan

__all__ = ["DEPOT", "OTHER_DEPOT", "morning", "route_plan"]

DEPOT = Location(lat=52.3702, lon=4.8952, address="Wayline depot Amsterdam-West")
OTHER_DEPOT = Location(lat=51.9244, lon=4.4777, address="Wayline depot Rotterdam-Zuid")
_DAY = "2026-11-24"
_START = 1_795_500_000


def route_plan(
    vehicle_no: int,
    stops: int,
    *,
    version: int = 1,
    seed: int = 1,
    depot: Location = DEPOT,
    parcels_per_stop: tuple[int, int] = (1, 2),
    skip: frozenset[int] = frozenset(),
    order: list[int] | None = None,
    prefix: str = "WL",
) -> RoutePlan:
    """One van's plan: stops 1..``stops`` (minus ``skip``), in ``order`` when given."""
    rng = random.Random(seed * 1000 + vehicle_no)
    built: dict[int, PlannedStop] = {}
    for s in range(1, stops + 1):
        n = rng.randint(*parcels_per_stop)
        parcels = tuple(
            Parcel(
                parcel_id=f"P{vehicle_no:02d}-{s:03d}-{k}",
                barcode=f"{prefix}{vehicle_no:02d}{s:03d}{k}",
                weight_kg=round(rng.uniform(0.5, 12.0), 2),
                volume_l=round(rng.uniform(2.0, 40.0), 1),
            )
            for k in range(1, n + 1)
        )
        built[s] = PlannedStop(
            stop_id=f"S{vehicle_no:02d}-{s:03d}",
            order_id=f"O{vehicle_no:02d}-{s:03d}",
            location=Location(
                lat=depot.lat + rng.uniform(-0.05, 0.05), lon=depot.lon + rng.uniform(-0.05, 0.05)
            ),
            service_s=120,
            parcels=parcels,
        )
    sequence = order if order is not None else list(range(1, stops + 1))
    return RoutePlan(
        route_id=f"R{vehicle_no:02d}-{_DAY}",
        vehicle_id=f"VAN-{vehicle_no:02d}",
        version=version,
        day=_DAY,
        depot=depot,
        start_at=_START,
        stops=tuple(built[s] for s in sequence if s not in skip),
    )


def morning(vehicles: int, stops: int, *, seed: int = 1) -> list[RoutePlan]:
    """Plans for ``vehicles`` vans of ``stops`` stops each, leaving :data:`DEPOT`."""
    return [route_plan(v, stops, seed=seed) for v in range(1, vehicles + 1)]
