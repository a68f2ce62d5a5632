"""The depot agent: the composition root of the edge on the sorter's terminal.

It owns the local store, the sync node to the cloud and the sort plan. Everything works with
no network: it sorts from the last plans it has, and the outbox keeps every scan, exception
and release until the cloud has applied it.

**How routes arrive.** The cloud sends the depot a copy of each vehicle's ``route_plan`` on
the depot's downlink (``wayline/v1/{depot}/down``; ``vehicle_id`` is the van's). Per vehicle
the depot keeps one plan: a newer ``version`` of the same route replaces it, a route for a
later (or the same) ``day`` replaces another route; anything older is refused with
``Rejected`` (recorded in ``sync_rejected``, the stream moves on). A plan whose ``depot``
location is more than ``same_depot_m`` from this depot (its ``location`` setting, else the
first plan's depot) is another depot's: its parcels are indexed only to say where they
belong when one is scanned here.

Applying a plan re-sorts that vehicle alone (:mod:`edge.depot.sort_plan`): parcels already
placed are pinned where they are, new ones are placed around them, and the diff between
what is on the floor and the new plan becomes re-sort instructions for the parcels that
must move, nothing else. Parcels dropped from the route become ``cancelled``. Parcels that
fit in none of the vehicle's containers go to ``OVERFLOW`` and an ``ExceptionReport``
``container_overflow`` (warning) goes to the cloud, once per plan version.

**What goes back** (see :mod:`edge.depot.scanning` for the scan flow): a ``parcel_scan``
per scan. Its ``position`` is the parcel's *load position*, its depth in the whole vehicle
(1 = nearest the door), and ``container`` its container, so the vehicle's re-sequencer can
weigh depth. At load release a ``parcel_scan`` with result ``loaded`` per parcel in its
place (the final load positions), an ``exception`` ``missing_parcel`` (warning) per parcel
not sorted, then an ``exception`` ``ready_to_depart`` (info) with the counts in ``data``.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.depot.depot_book import DepotBook
from edge.depot.scanning import Scanner
from edge.depot.sort_plan import OVERFLOW, ContainerSpec, assign, diff
from edge.errors import ReleaseError, SettingsError, UnknownVehicleError
from protocol import (
    DeviceStateEnvelope,
    Envelope,
    ExceptionReport,
    ParcelScan,
    RoutePlan,
    RoutePlanEnvelope,
)
from sync import BrokerAddress, Rejected, SyncNode, SyncSettings, Tx, open_store

__all__ = ["DEFAULT_CONTAINERS", "DepotAgent", "DepotSettings"]

log = logging.getLogger(__name__)

HUB = "cloud"

DEFAULT_CONTAINERS: tuple[ContainerSpec, ...] = (
    ContainerSpec("BAG-1", "bag", 120.0, 40.0),
    ContainerSpec("SHELF-A", "shelf", 400.0, 150.0),
    ContainerSpec("CAGE-1", "cage", 1000.0, 400.0),
)
"""A van's containers from the door inwards, unless its own are configured."""


@dataclass(frozen=True, slots=True)
class DepotSettings:
    """Everything a depot agent needs; built once by the entry point."""

    depot_id: str
    db_path: Path
    broker: BrokerAddress | None
    sync: SyncSettings = field(default_factory=SyncSettings)
    location: tuple[float, float] | None = None
    """This depot's (lat, lon); None: the depot of the first plan received."""
    same_depot_m: float = 1000.0
    containers: tuple[ContainerSpec, ...] = DEFAULT_CONTAINERS
    vehicle_containers: Mapping[str, tuple[ContainerSpec, ...]] = field(default_factory=dict)
    pairing_code: str | None = None
    """The code a terminal gives once to be paired with this depot agent
    (:mod:`edge.pairing`); None: one made at the first start, kept in the store and logged
    when the terminal app starts."""
    http_max_body_bytes: int = 1024 * 1024
    """The largest request body the terminal app takes (413, unread)."""

    def __post_init__(self) -> None:
        from edge.pairing import check_code
        from protocol.topics import up_topic

        try:
            up_topic(self.depot_id)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        if self.pairing_code is not None:
            check_code(self.pairing_code)
        if self.http_max_body_bytes < 1024:
            raise SettingsError("http_max_body_bytes must be at least 1024")
        for specs in (self.containers, *self.vehicle_containers.values()):
            names = [c.container_id for c in specs]
            if not specs or len(set(names)) != len(names):
                raise SettingsError("a vehicle needs at least one container, each id once")

    def containers_of(self, vehicle_id: str) -> tuple[ContainerSpec, ...]:
        return self.vehicle_containers.get(vehicle_id, self.containers)


class DepotAgent:
    """A depot's edge agent. Thread-safe: the terminal and the sync worker share its store."""

    def __init__(self, settings: DepotSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.store = open_store(settings.db_path)
        try:
            self.book = DepotBook(self.store)  # brings the store to this code's schema
        except Exception:
            self.store.close()  # a newer store, or a step that failed: nothing left open
            raise
        self.node = SyncNode(
            node_id=settings.depot_id,
            role="device",
            store=self.store,
            handler=self,
            broker=settings.broker,
            settings=settings.sync,
            hub_id=HUB,
            device_role="depot",
        )
        self.scanner = Scanner(self)
        self.cloud_online: bool | None = None

    @property
    def depot_id(self) -> str:
        return self.settings.depot_id

    def start(self) -> None:
        self.node.start()

    def stop(self) -> None:
        self.node.stop()
        self.store.close()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- from the cloud (sync handler) ---------------------------------------------------

    def apply(self, tx: Tx, peer: str, envelope: Envelope) -> None:
        if not isinstance(envelope, RoutePlanEnvelope):
            raise Rejected(f"a depot does not take {envelope.kind} messages")
        plan = envelope.body
        have = self.book.route(tx.conn, plan.vehicle_id)
        if have is not None:
            same = have["route_id"] == plan.route_id
            if (same and plan.version <= have["version"]) or (not same and plan.day < have["day"]):
                raise Rejected(
                    f"plan {plan.route_id} v{plan.version} for {plan.vehicle_id} is not newer "
                    f"than {have['route_id']} v{have['version']}"
                )
        self.apply_plan(tx, plan)

    def on_state(self, tx: Tx, peer: str, envelope: DeviceStateEnvelope) -> None:
        self.cloud_online = envelope.body.status == "online"

    def apply_plan(self, tx: Tx, plan: RoutePlan) -> None:
        """Take a vehicle's new plan: re-sort it and say what must move on the floor."""
        now = self.now_ms()
        conn = tx.conn
        ours = self._is_ours(tx, plan)
        old_keys = self.book.vehicle_keys(conn, plan.vehicle_id)
        self.book.save_route(conn, plan, ours=ours, now_ms=now)
        if not ours:
            self.book.put_foreign(conn, plan, now)
            new_keys = {p.barcode.upper() for s in plan.stops for p in s.parcels}
            self.book.cancel(conn, old_keys - new_keys, plan.version, now)
            return
        before = self.book.placed_in(conn, plan.vehicle_id)
        pinned = {pid: s.container for pid, s in before.items() if s.vehicle_id == plan.vehicle_id}
        sort = assign(plan, self.settings.containers_of(plan.vehicle_id), pinned)
        self.book.put_assignments(conn, plan, sort.assignments, now)
        gone = old_keys - {a.barcode.upper() for a in sort.assignments}
        self.book.cancel(conn, gone, plan.version, now)
        placed = self.book.placed_in(conn, plan.vehicle_id) | before
        targets = self.book.targets(conn, set(placed))
        change = diff(placed, targets)
        barcodes = {a.parcel_id: a.barcode for a in sort.assignments}
        for pid in placed:
            if pid not in barcodes:
                row = self.book.parcel_by_id(conn, pid)
                barcodes[pid] = row["barcode"] if row else pid
        self.book.replace_resorts(conn, set(placed), change.moves, barcodes, plan.version, now)
        self.book.renumber(conn, change.renumbered)
        if change.moves:
            log.info(
                "plan %s v%d for %s: %d parcels to re-sort",
                plan.route_id,
                plan.version,
                plan.vehicle_id,
                len(change.moves),
            )
        if sort.overflow:
            self._report_overflow(tx, plan, sort.overflow, sort.loads)

    def _is_ours(self, tx: Tx, plan: RoutePlan) -> bool:
        here = self.settings.location
        if here is None:
            stored = self.book.meta("location")
            if stored is None:
                self.book.set_meta(tx.conn, "location", f"{plan.depot.lat},{plan.depot.lon}")
                return True
            lat, lon = (float(x) for x in stored.split(","))
            here = (lat, lon)
        return _metres(here, (plan.depot.lat, plan.depot.lon)) <= self.settings.same_depot_m

    def _report_overflow(self, tx: Tx, plan: RoutePlan, overflow: Any, loads: Any) -> None:
        volume = round(sum(a.volume_l for a in overflow), 1)
        weight = round(sum(a.weight_kg for a in overflow), 1)
        detail = (
            f"{plan.vehicle_id}: {len(overflow)} parcels ({volume} l, {weight} kg) of route "
            f"{plan.route_id} v{plan.version} fit in none of its {len(loads)} containers; "
            f"they go to the {OVERFLOW} shelf"
        )
        action = "Add a container to the van or move its last stops to another vehicle."
        self.emit_exception(
            tx,
            category="container_overflow",
            severity="warning",
            detail=detail,
            action=action,
            vehicle_id=plan.vehicle_id,
            data={
                "route_id": plan.route_id,
                "plan_version": plan.version,
                "parcels": len(overflow),
                "volume_l": volume,
                "weight_kg": weight,
                "first_stop": overflow[0].stop_id,
            },
        )

    # -- what the terminal does -----------------------------------------------------------------

    def scan(self, raw: str) -> dict[str, Any]:
        """One read of the scanner: the destination to show, or what to do instead."""
        return self.scanner.scan(raw)

    def release(self, vehicle_id: str, *, force: bool = False) -> dict[str, Any]:
        """Release a vehicle's load: final load positions, missing parcels, ready to depart."""
        with self.node.transaction() as tx:
            route = self.book.route(tx.conn, vehicle_id)
            if route is None or not route["ours"]:
                raise UnknownVehicleError(f"no route leaves this depot with vehicle {vehicle_id!r}")
            done = self.book.release(tx.conn, vehicle_id, route["version"])
            if done is not None:
                raise ReleaseError(
                    f"{vehicle_id} was already released for route v{route['version']}"
                )
            rows = self.book.checklist(vehicle_id)
            missing = [r for r in rows if r["placed_container"] is None]
            resorts = [r for r in rows if r["placed_container"] is not None and r["resort"]]
            loaded = [r for r in rows if r["placed_container"] is not None and not r["resort"]]
            if (missing or resorts) and not force:
                raise ReleaseError(
                    f"{vehicle_id}: {len(missing)} parcels missing, {len(resorts)} to re-sort; "
                    "find them, or release anyway"
                )
            now = self.now_ms()
            for r in loaded:
                tx.emit(
                    HUB,
                    ParcelScan(
                        scan_id=uuid.uuid4().hex,
                        barcode=r["barcode"],
                        at=now,
                        result="loaded",
                        parcel_id=r["parcel_id"],
                        depot_id=self.depot_id,
                        vehicle_id=vehicle_id,
                        container=r["container"],
                        position=r["load_position"],
                    ),
                )
            for r in missing:
                self.emit_exception(
                    tx,
                    category="missing_parcel",
                    severity="warning",
                    detail=f"{r['barcode']} for {vehicle_id} (stop {r['stop_id']}) was never "
                    "sorted; the vehicle left without it",
                    action="Search the belt and the problem shelf; the cloud re-plans the stop.",
                    vehicle_id=vehicle_id,
                    parcel_id=r["parcel_id"],
                    stop_id=r["stop_id"],
                    data={"route_id": route["route_id"], "plan_version": route["version"]},
                )
            self.emit_exception(
                tx,
                category="ready_to_depart",
                severity="info",
                detail=f"{vehicle_id} loaded: {len(loaded)} of {len(rows)} parcels, "
                f"{len(missing)} missing",
                action="",
                vehicle_id=vehicle_id,
                data={
                    "route_id": route["route_id"],
                    "plan_version": route["version"],
                    "parcels": len(rows),
                    "loaded": len(loaded),
                    "missing": len(missing),
                    "resort_open": len(resorts),
                    "overflow": sum(1 for r in rows if r["container"] == OVERFLOW),
                    "forced": force,
                },
            )
            self.book.record_release(
                tx.conn, vehicle_id, route["version"], now, len(loaded), len(missing), force
            )
        return {
            "vehicle_id": vehicle_id,
            "version": route["version"],
            "loaded": len(loaded),
            "missing": [r["barcode"] for r in missing],
            "resort_open": [r["barcode"] for r in resorts],
            "forced": force,
        }

    def handle_exception(self, exception_id: str) -> dict[str, Any]:
        with self.node.transaction() as tx:
            self.book.handle_exception(tx.conn, exception_id, self.now_ms())
        return self.status()

    def emit_exception(
        self,
        tx: Tx,
        *,
        category: str,
        severity: str,
        detail: str,
        action: str,
        vehicle_id: str | None = None,
        parcel_id: str | None = None,
        stop_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> str:
        """Record an exception locally and report it to the cloud, in the caller's transaction."""
        exception_id = uuid.uuid4().hex
        at = self.now_ms()
        payload = dict(data or {})
        payload["depot_id"] = self.depot_id
        if action:
            payload["action"] = action[:200]
        tx.emit(
            HUB,
            ExceptionReport(
                exception_id=exception_id,
                category=category,
                severity=severity,  # type: ignore[arg-type]
                at=at,
                detail=detail[:2000],
                stop_id=stop_id,
                parcel_id=parcel_id,
                vehicle_id=vehicle_id,
                data=payload,
            ),
        )
        self.book.record_exception(
            tx.conn,
            exception_id=exception_id,
            category=category,
            severity=severity,
            at_ms=at,
            detail=detail,
            action=action,
            parcel_id=parcel_id,
            vehicle_id=vehicle_id,
        )
        return exception_id

    # -- views -------------------------------------------------------------------------------

    def colours(self, vehicle_id: str) -> dict[str, int]:
        """Container → colour index (its place from the door); overflow is -1."""
        specs = self.settings.containers_of(vehicle_id)
        return {**{c.container_id: i for i, c in enumerate(specs)}, OVERFLOW: -1}

    def vehicles(self) -> list[dict[str, Any]]:
        out = []
        for v in self.book.progress():
            specs = self.settings.containers_of(v["vehicle_id"])
            v["missing"] = v["parcels"] - v["sorted"]
            v["containers"] = [
                {"container_id": c.container_id, "kind": c.kind, "colour": i}
                for i, c in enumerate(specs)
            ]
            out.append(v)
        return out

    def checklist(self, vehicle_id: str) -> dict[str, Any]:
        with self.store.lock:
            route = self.book.route(self.store.conn, vehicle_id)
        if route is None or not route["ours"]:
            raise UnknownVehicleError(f"no route leaves this depot with vehicle {vehicle_id!r}")
        rows = self.book.checklist(vehicle_id)
        for r in rows:
            r["state"] = (
                "missing"
                if r["placed_container"] is None
                else ("resort" if r["resort"] else "sorted")
            )
        return {
            "vehicle_id": vehicle_id,
            "route_id": route["route_id"],
            "version": route["version"],
            "parcels": rows,
            "missing": sum(1 for r in rows if r["state"] == "missing"),
            "sorted": sum(1 for r in rows if r["state"] == "sorted"),
        }

    def status(self) -> dict[str, Any]:
        return {
            "depot_id": self.depot_id,
            "connected": self.node.connected,
            "cloud_online": self.cloud_online,
            "pending_sync": self.node.pending(),
            "vehicles": self.vehicles(),
            "exceptions": self.book.open_exceptions(),
            "resorts": self.book.open_resorts(),
            "scans": self.book.recent_scans(),
            "counts": self.book.counts(),
        }


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_000 * math.asin(math.sqrt(h))
