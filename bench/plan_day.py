"""A synthetic delivery day for the cloud planner: 1,000 orders, 50 vehicles, three fleets.

A 30 x 30 km city (metres, seconds, cents), depot in the middle, 30 km/h. Orders: 60 % with a
two-hour window, 5 % returns (pickups), 3 % refrigerated, 10 % optional with a postponement
cost. Fleet: 40 own vans (10 refrigerated), 2 3PL carriers, 8 gig couriers starting where
they are. Planning happens at 07:00; one carrier's cut-off is already past.
"""

from __future__ import annotations

import numpy as np

from cloud.planning import (
    Carrier,
    GigCourier,
    Order,
    OrderKind,
    OwnVan,
    PlanningProblem,
)

__all__ = ["synthetic_day"]

HOUR = 3600
SPEED_M_PER_S = 30_000 / HOUR


def synthetic_day(
    orders: int = 1000, vans: int = 40, carriers: int = 2, gigs: int = 8, seed: int = 7
) -> PlanningProblem:
    rng = np.random.default_rng(seed)
    n_loc = 1 + orders + gigs
    xy = rng.uniform(0, 30_000, size=(n_loc, 2))
    xy[0] = (15_000, 15_000)
    diff = xy[:, None, :] - xy[None, :, :]
    dist = np.rint(np.hypot(diff[..., 0], diff[..., 1])).astype(np.int64)
    dur = np.ceil(dist / SPEED_M_PER_S).astype(np.int64)

    out: list[Order] = []
    for k in range(orders):
        windowed = rng.random() < 0.6
        start = int(rng.integers(8, 18)) * HOUR
        out.append(
            Order(
                id=f"o{k}",
                location=1 + k,
                demand=int(rng.integers(1, 6)),
                kind=OrderKind.PICKUP if rng.random() < 0.05 else OrderKind.DELIVERY,
                ready=start if windowed else 8 * HOUR,
                due=start + 2 * HOUR if windowed else 20 * HOUR,
                service=180,
                optional=bool(rng.random() < 0.1),
                postponement_cost=2_000,
                skills=frozenset({"refrigerated"}) if rng.random() < 0.03 else frozenset(),
            )
        )
    fleet: list[OwnVan | Carrier | GigCourier] = [
        OwnVan(
            id=f"van{k}",
            depot=0,
            capacity=120,
            shift_start=8 * HOUR,
            shift_end=20 * HOUR,
            fixed_cost=5_000,
            cost_per_km=30,
            cost_per_hour=2_000,
            skills=frozenset({"refrigerated"}) if k < 10 else frozenset(),
        )
        for k in range(vans)
    ]
    fleet += [
        Carrier(
            id=f"3pl{k}", depot=0, price_per_stop=450, daily_stops=150, cutoff=(6 + 4 * k) * HOUR
        )
        for k in range(carriers)
    ]
    fleet += [
        GigCourier(
            id=f"gig{k}",
            start=1 + orders + k,
            capacity=20,
            available_from=10 * HOUR,
            available_until=16 * HOUR,
            price_per_drop=500,
        )
        for k in range(gigs)
    ]
    coords = [(float(x), float(y)) for x, y in xy]
    return PlanningProblem(
        durations=dur,
        distances=dist,
        orders=tuple(out),
        vehicles=tuple(fleet),
        now=7 * HOUR,
        coordinates=coords,
    )
