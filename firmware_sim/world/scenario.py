"""Scenario files: a seeded delivery day in TOML, loaded and validated with clear errors.

A scenario names the city, the depots, the order book, the travel model, the three fleets
and a timeline of disruptions. Every key is checked: an unknown key, a missing one or a
wrong type is a :class:`ScenarioError` that names the file, the table and the key. Times of
day are ``"HH:MM"`` strings; the loader turns them into seconds after midnight. See
``firmware_sim/scenarios/calm.toml`` for every key with a comment.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from firmware_sim.world.errors import ScenarioError

__all__ = [
    "EVENT_KINDS",
    "FLEET_KINDS",
    "SCENARIO_DIR",
    "Depot",
    "Event",
    "Fleet",
    "Scenario",
    "load_scenario",
    "parse_scenario",
]

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
FLEET_KINDS = ("own", "3pl", "gig")
DISRUPTIVE = ("carrier_outage", "breakdown", "jam")
"""Event kinds whose periods are kept out of learned baselines."""
_EVENT_KEYS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "carrier_outage": {"fleet": str},
    "breakdown": {"vehicle": str},
    "dead_zone": {"district": int, "lat": float, "lon": float, "radius_km": float},
    "jam": {"district": int, "lat": float, "lon": float, "radius_km": float, "factor": float},
    "order_spike": {"extra_share": float},
}
EVENT_KINDS = tuple(_EVENT_KEYS)
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Depot:
    depot_id: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Fleet:
    fleet_id: str
    kind: str
    vehicles: int
    capacity: int
    cost_per_km: float
    cost_per_hour: float
    cost_per_stop: float
    cruise_kmh: float
    depot: str
    districts: tuple[int, ...]
    """Districts this fleet serves under fixed zone allocation (empty: all)."""


@dataclass(frozen=True, slots=True)
class Event:
    """A disruption on the timeline: from ``at`` to ``until`` (seconds after midnight)."""

    kind: str
    at: int
    until: int
    params: dict[str, Any]

    @property
    def disruptive(self) -> bool:
        return self.kind in DISRUPTIVE

    def active(self, t_of_day: float) -> bool:
        return self.at <= t_of_day < self.until


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    seed: int
    day: dt.date
    start: int
    end: int
    description: str
    center: tuple[float, float]
    radius_km: float
    districts: int
    customers: int
    depots: tuple[Depot, ...]
    orders: dict[str, Any]
    travel: dict[str, Any]
    fleets: tuple[Fleet, ...]
    events: tuple[Event, ...]
    source: str

    @property
    def day_start_epoch(self) -> int:
        """Midnight of the scenario's day (UTC), in epoch seconds."""
        return int(dt.datetime.combine(self.day, dt.time(), tzinfo=dt.UTC).timestamp())

    def epoch(self, t_of_day: float) -> float:
        return self.day_start_epoch + t_of_day

    def with_seed(self, seed: int) -> Scenario:
        return replace(self, seed=seed)


class _Table:
    """One TOML table being read: each key taken once, the rest reported as unknown."""

    def __init__(self, data: Any, where: str, source: str) -> None:
        if not isinstance(data, dict):
            raise ScenarioError(f"{source}: {where} must be a table")
        self.data, self.where, self.source = dict(data), where, source

    def take(self, key: str, typ: type | tuple[type, ...], default: Any = _MISSING) -> Any:
        if key not in self.data:
            if default is _MISSING:
                raise ScenarioError(f"{self.source}: missing key {key!r} in {self.where}")
            return default
        value = self.data.pop(key)
        types = typ if isinstance(typ, tuple) else (typ,)
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            names = "/".join(t.__name__ for t in types)
            raise ScenarioError(
                f"{self.source}: key {key!r} in {self.where} must be {names}, "
                f"got {type(value).__name__}"
            )
        return value

    def number(self, key: str, default: Any = _MISSING, *, lo: float = 0.0) -> float:
        value = self.take(key, float, default)
        if value < lo:
            raise ScenarioError(f"{self.source}: key {key!r} in {self.where} must be ≥ {lo}")
        return float(value)

    def clock(self, key: str, default: Any = _MISSING) -> Any:
        value = self.take(key, str, default)
        if value is None:
            return None
        try:
            h, m = value.split(":")
            seconds = int(h) * 3600 + int(m) * 60
        except ValueError:
            seconds = -1
        if not 0 <= seconds <= 48 * 3600:
            raise ScenarioError(
                f"{self.source}: key {key!r} in {self.where} must be HH:MM, got {value!r}"
            )
        return seconds

    def done(self) -> None:
        if self.data:
            key = sorted(self.data)[0]
            raise ScenarioError(f"{self.source}: unknown key {key!r} in {self.where}")


def load_scenario(name_or_path: str | Path, *, seed: int | None = None) -> Scenario:
    """A scenario by name (``calm``, ``disrupted``) or path; ``seed`` overrides its seed."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = SCENARIO_DIR / f"{name_or_path}.toml"
    try:
        text = path.read_text()
    except OSError as exc:
        known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.toml")))
        raise ScenarioError(
            f"no scenario {name_or_path!r} ({exc.strerror}); known: {known}"
        ) from None
    scenario = parse_scenario(text, source=str(path))
    return scenario if seed is None else scenario.with_seed(seed)


def parse_scenario(text: str, *, source: str = "<scenario>") -> Scenario:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    root = _Table(raw, "the file", source)
    head = _Table(root.take("scenario", dict), "[scenario]", source)
    city = _Table(root.take("city", dict), "[city]", source)
    orders = _Table(root.take("orders", dict), "[orders]", source)
    travel = _Table(root.take("travel", dict), "[travel]", source)
    depots = [_depot(d, i, source) for i, d in enumerate(root.take("depots", list))]
    fleets = [_fleet(f, i, source) for i, f in enumerate(root.take("fleets", list))]
    events_raw = root.take("events", list, [])
    root.done()

    try:
        day = dt.date.fromisoformat(head.take("day", str))
    except ValueError as exc:
        raise ScenarioError(f"{source}: key 'day' in [scenario]: {exc}") from None
    center = tuple(city.take("center", list))
    if len(center) != 2 or not all(isinstance(c, int | float) for c in center):
        raise ScenarioError(f"{source}: key 'center' in [city] must be [lat, lon]")
    scenario = Scenario(
        name=head.take("name", str),
        seed=head.take("seed", int),
        day=day,
        start=head.clock("start"),
        end=head.clock("end"),
        description=head.take("description", str, ""),
        center=(float(center[0]), float(center[1])),
        radius_km=city.number("radius_km"),
        districts=int(city.take("districts", int)),
        customers=int(city.take("customers", int)),
        depots=tuple(depots),
        orders=_orders(orders),
        travel=_travel(travel),
        fleets=tuple(fleets),
        events=(),
        source=source,
    )
    for table in (head, city, orders, travel):
        table.done()
    if scenario.end <= scenario.start:
        raise ScenarioError(f"{source}: the day ends before it starts")
    if not 1 <= scenario.districts <= 50 or scenario.customers < 1:
        raise ScenarioError(f"{source}: [city] needs 1..50 districts and some customers")
    if not depots or not fleets:
        raise ScenarioError(f"{source}: a scenario needs at least one depot and one fleet")
    depot_ids = {d.depot_id for d in depots}
    for f in fleets:
        if f.depot not in depot_ids:
            raise ScenarioError(f"{source}: fleet {f.fleet_id!r} names unknown depot {f.depot!r}")
    events = tuple(_event(e, i, source, scenario) for i, e in enumerate(events_raw))
    return replace(scenario, events=events)


def _depot(data: Any, i: int, source: str) -> Depot:
    t = _Table(data, f"[[depots]] #{i + 1}", source)
    depot = Depot(t.take("id", str), t.take("lat", float), t.take("lon", float))
    t.done()
    return depot


def _fleet(data: Any, i: int, source: str) -> Fleet:
    t = _Table(data, f"[[fleets]] #{i + 1}", source)
    fleet = Fleet(
        fleet_id=t.take("id", str),
        kind=t.take("kind", str),
        vehicles=t.take("vehicles", int),
        capacity=t.take("capacity", int),
        cost_per_km=t.number("cost_per_km"),
        cost_per_hour=t.number("cost_per_hour"),
        cost_per_stop=t.number("cost_per_stop", 0.0),
        cruise_kmh=t.number("cruise_kmh", 28.0, lo=1.0),
        depot=t.take("depot", str),
        districts=tuple(t.take("districts", list, [])),
    )
    t.done()
    if fleet.kind not in FLEET_KINDS:
        raise ScenarioError(
            f"{source}: fleet {fleet.fleet_id!r}: kind must be one of {FLEET_KINDS}"
        )
    if fleet.vehicles < 1 or fleet.capacity < 1:
        raise ScenarioError(f"{source}: fleet {fleet.fleet_id!r} needs vehicles and capacity")
    return fleet


def _orders(t: _Table) -> dict[str, Any]:
    out = {
        "count": t.take("count", int),
        "pickup_share": t.number("pickup_share", 0.0),
        "midday_share": t.number("midday_share", 0.0),
        "reschedule_share": t.number("reschedule_share", 0.0),
        "window_minutes": t.take("window_minutes", list, [120]),
        "service_median_s": t.number("service_median_s", 150.0),
        "service_sigma": t.number("service_sigma", 0.4),
        "fail_rate": t.number("fail_rate", 0.05),
    }
    for key in ("pickup_share", "midday_share", "reschedule_share", "fail_rate"):
        if out[key] > 1:
            raise ScenarioError(f"{t.source}: key {key!r} in [orders] must be a share in 0..1")
    if out["count"] < 1 or not out["window_minutes"]:
        raise ScenarioError(f"{t.source}: [orders] needs a count and window_minutes")
    return out


def _travel(t: _Table) -> dict[str, Any]:
    traffic = t.take("traffic_by_hour", list)
    if len(traffic) != 24 or not all(isinstance(x, int | float) and x > 0 for x in traffic):
        raise ScenarioError(
            f"{t.source}: key 'traffic_by_hour' in [travel] must be 24 positive numbers"
        )
    return {
        "base_kmh": t.number("base_kmh", 30.0, lo=1.0),
        "detour": t.number("detour", 1.3, lo=1.0),
        "noise_sigma": t.number("noise_sigma", 0.15),
        "traffic_by_hour": [float(x) for x in traffic],
    }


def _event(data: Any, i: int, source: str, scenario: Scenario) -> Event:
    t = _Table(data, f"[[events]] #{i + 1}", source)
    kind = t.take("kind", str)
    if kind not in _EVENT_KEYS:
        raise ScenarioError(
            f"{source}: [[events]] #{i + 1}: unknown kind {kind!r}; known: {EVENT_KINDS}"
        )
    t.where = f"[[events]] #{i + 1} ({kind})"
    at = t.clock("at")
    until = t.clock("until", None)
    params = {k: t.take(k, typ) for k, typ in _EVENT_KEYS[kind].items() if k in t.data}
    t.done()
    until = scenario.end if until is None else until
    if until <= at:
        raise ScenarioError(f"{source}: {t.where} ends before it starts")
    fleets = {f.fleet_id for f in scenario.fleets}
    if kind == "carrier_outage" and params.get("fleet") not in fleets:
        raise ScenarioError(f"{source}: {t.where} names unknown fleet {params.get('fleet')!r}")
    if kind == "breakdown" and "vehicle" not in params:
        raise ScenarioError(f"{source}: missing key 'vehicle' in {t.where}")
    if kind in ("dead_zone", "jam") and "district" not in params and "radius_km" not in params:
        raise ScenarioError(f"{source}: {t.where} needs a district or lat, lon and radius_km")
    if "district" in params and not 0 <= params["district"] < scenario.districts:
        raise ScenarioError(f"{source}: {t.where}: no district {params['district']}")
    return Event(kind=kind, at=at, until=until, params=params)
