"""The scan flow: one read of the scanner → what the operator sees and what the cloud hears.

Each scan is one transaction: the local record, the wire ``parcel_scan`` and, where a person
must act, an ``exception`` commit together. Results:

========================  ====================================================================
``ok``                    the destination (vehicle, container, position); or the re-sort it
                          completes; or ``OVERFLOW`` when the vehicle's containers are full
``duplicate``             already sorted to its place: leave it (two labels? problem shelf)
``unknown``               no route at this depot has it → exception ``unknown_parcel``
``cancelled``             its stop was dropped from the route → exception ``cancelled_parcel``
``other_depot``           another depot's vehicle takes it → exception ``misrouted_parcel``
``wrong_container``       a container label scanned after a parcel does not match its place
========================  ====================================================================

An exception is raised once per parcel and category; a second scan of the same problem parcel
only repeats the instruction. Container labels (``C:{vehicle}:{container}``) scanned after a
parcel confirm the placement (kept locally) or report ``wrong_container``. Junk is refused
(:class:`~edge.errors.BarcodeError`, recorded locally as ``invalid``) and nothing is sent.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from edge.depot.barcode import key, normalise, parse_container_label
from edge.depot.sort_plan import OVERFLOW, Slot
from edge.errors import BarcodeError
from protocol import ParcelScan
from sync import Tx

if TYPE_CHECKING:
    from edge.depot.agent import DepotAgent

__all__ = ["Scanner"]

HUB = "cloud"


class Scanner:
    """Turns scanner reads into instructions, records and messages for one depot agent."""

    def __init__(self, agent: DepotAgent) -> None:
        self.agent = agent
        self.book = agent.book
        self._last: tuple[str, str, Slot] | None = None  # parcel id, barcode, where it goes
        self._lock = threading.Lock()

    def scan(self, raw: str) -> dict[str, Any]:
        agent = self.agent
        scan_id = uuid.uuid4().hex
        try:
            code = normalise(raw)
        except BarcodeError as exc:
            with agent.node.transaction() as tx:
                self.book.record_scan(
                    tx.conn,
                    scan_id=scan_id,
                    at_ms=agent.now_ms(),
                    raw=repr(raw)[:200],
                    code=None,
                    result="invalid",
                    parcel_id=None,
                    vehicle_id=None,
                    container=None,
                    position=None,
                    message=str(exc),
                )
            raise
        with self._lock, agent.node.transaction() as tx:
            out = self._scan(tx, scan_id, raw, code)
            self.book.record_scan(
                tx.conn,
                scan_id=scan_id,
                at_ms=out["at"],
                raw=repr(raw)[:200],
                code=code,
                result=out["result"],
                parcel_id=out.get("parcel_id"),
                vehicle_id=out.get("vehicle_id"),
                container=out.get("container"),
                position=out.get("position"),
                message=out["action"],
            )
        return out

    # -- one scan ------------------------------------------------------------------------

    def _scan(self, tx: Tx, scan_id: str, raw: str, code: str) -> dict[str, Any]:
        row = self.book.parcel(tx.conn, key(code))
        if row is None:
            label = parse_container_label(code)
            if label is not None:
                return self._container(tx, scan_id, code, *label)
            return self._unknown(tx, scan_id, code)
        if row["status"] == "foreign":
            return self._other_depot(tx, scan_id, code, row)
        if row["status"] == "cancelled":
            return self._cancelled(tx, scan_id, code, row)
        return self._sort(tx, scan_id, code, row)

    def _sort(self, tx: Tx, scan_id: str, code: str, row: dict[str, Any]) -> dict[str, Any]:
        conn = tx.conn
        now = self.agent.now_ms()
        target = Slot(row["vehicle_id"], row["container"], row["position"])
        placed = self.book.placed(conn, row["parcel_id"])
        resort = self.book.open_resort(conn, row["parcel_id"])
        here = (
            Slot(placed["vehicle_id"], placed["container"], placed["position"]) if placed else None
        )
        self._last = (row["parcel_id"], code, target)
        if here is not None and resort is None and here == target:
            at = time.strftime("%H:%M", time.localtime(placed["at_ms"] / 1000))  # type: ignore[index]
            out = self._answer(
                "duplicate",
                "warn",
                f"Already sorted: {_where(target)}",
                f"Scanned before at {at}. Leave it in {target.container}. If it came off the "
                "belt, two parcels carry this label: put it on the problem shelf.",
                row,
                now,
            )
            self._emit(tx, scan_id, code, "duplicate", row, now)
            return out
        self.book.place(conn, row["parcel_id"], target, now, scan_id)
        self.book.close_resorts(conn, row["parcel_id"], now)
        if target.container == OVERFLOW:
            title = f"{target.vehicle_id} · OVERFLOW"
            action = (
                f"No room left in {target.vehicle_id}'s containers: put it on the overflow "
                f"shelf of {target.vehicle_id}. The supervisor has been told."
            )
            tone = "warn"
        else:
            title = _where(target)
            action = (
                f"Put it in {target.container} of {target.vehicle_id}, position "
                f"{target.position} (stop {row['stop_index']})."
            )
            tone = "ok"
        if resort is not None and here is not None:
            title = f"RE-SORT → {title}"
            action = f"Take it out of {_where(here)}. {action}"
            tone = "warn"
        out = self._answer("ok", tone, title, action, row, now)
        out["resort"] = resort is not None
        self._emit(tx, scan_id, code, "ok", row, now)
        return out

    def _unknown(self, tx: Tx, scan_id: str, code: str) -> dict[str, Any]:
        now = self.agent.now_ms()
        action = "No route at this depot has it: put it on the problem shelf."
        if not self._seen(tx, code, "unknown"):
            self.agent.emit_exception(
                tx,
                category="unknown_parcel",
                severity="warning",
                detail=f"parcel {code} was scanned at {self.agent.depot_id} but no route has it",
                action=action,
                data={"barcode": code},
            )
        self._forget()
        out = self._answer("unknown", "stop", "UNKNOWN PARCEL", action, {"barcode": code}, now)
        self._emit(tx, scan_id, code, "unknown", {}, now)
        return out

    def _other_depot(self, tx: Tx, scan_id: str, code: str, row: dict[str, Any]) -> dict[str, Any]:
        now = self.agent.now_ms()
        depot = row["depot_address"] or "another depot"
        action = f"Belongs to {depot} (vehicle {row['vehicle_id']}): put it in the transfer cage."
        if not self._seen(tx, code, "other_depot"):
            self.agent.emit_exception(
                tx,
                category="misrouted_parcel",
                severity="warning",
                detail=f"parcel {code} for {row['vehicle_id']} at {depot} arrived at "
                f"{self.agent.depot_id}",
                action=action,
                parcel_id=row["parcel_id"],
                vehicle_id=row["vehicle_id"],
                stop_id=row["stop_id"],
                data={"route_id": row["route_id"], "depot": depot[:200]},
            )
        self._forget()
        out = self._answer("other_depot", "stop", "OTHER DEPOT", action, row, now)
        out["container"] = out["position"] = out["load_position"] = None
        self._emit(tx, scan_id, code, "other_depot", {**row, "container": None}, now)
        return out

    def _cancelled(self, tx: Tx, scan_id: str, code: str, row: dict[str, Any]) -> dict[str, Any]:
        now = self.agent.now_ms()
        placed = self.book.placed(tx.conn, row["parcel_id"])
        action = (
            f"Its stop was removed from {row['vehicle_id']}'s route (v{row['version']}): "
            "put it on the returns shelf."
        )
        if placed is not None:
            action = f"Take it out of {placed['container']} of {placed['vehicle_id']}. {action}"
            self.book.unplace(tx.conn, row["parcel_id"])
            self.book.close_resorts(tx.conn, row["parcel_id"], now)
        if not self._seen(tx, code, "cancelled"):
            self.agent.emit_exception(
                tx,
                category="cancelled_parcel",
                severity="warning",
                detail=f"parcel {code} is no longer on {row['vehicle_id']}'s route "
                f"{row['route_id']} v{row['version']}; set aside for returns",
                action=action,
                parcel_id=row["parcel_id"],
                vehicle_id=row["vehicle_id"],
                stop_id=row["stop_id"],
                data={"route_id": row["route_id"], "plan_version": row["version"]},
            )
        self._forget()
        out = self._answer("cancelled", "stop", "CANCELLED", action, row, now)
        out["container"] = out["position"] = out["load_position"] = None
        self._emit(tx, scan_id, code, "cancelled", {**row, "container": None}, now)
        return out

    def _container(
        self, tx: Tx, scan_id: str, code: str, vehicle_id: str, container: str
    ) -> dict[str, Any]:
        now = self.agent.now_ms()
        last = self._last
        if last is None:
            return self._answer(
                "label",
                "warn",
                f"{vehicle_id} · {container}",
                "That is a container label: scan a parcel first.",
                {},
                now,
            )
        parcel_id, barcode, target = last
        row = self.book.parcel_by_id(tx.conn, parcel_id) or {}
        if (vehicle_id, container) == (target.vehicle_id, target.container):
            self._forget()
            out = self._answer(
                "confirmed", "ok", f"✓ {_where(target)}", f"{barcode} is in its place.", row, now
            )
            return out
        action = f"Wrong container! Take {barcode} out of {container} of {vehicle_id}: it goes "
        action += f"to {_where(target)}."
        wrong = {**row, "vehicle_id": vehicle_id, "container": container, "load_position": None}
        out = self._answer("wrong_container", "stop", f"WRONG → {_where(target)}", action, row, now)
        out["wrong"] = {"vehicle_id": vehicle_id, "container": container}
        self._emit(tx, scan_id, barcode, "wrong_container", wrong, now)
        return out

    # -- helpers -------------------------------------------------------------------------

    def _answer(
        self, result: str, tone: str, title: str, action: str, row: dict[str, Any], now: int
    ) -> dict[str, Any]:
        vehicle = row.get("vehicle_id")
        container = row.get("container")
        colour = None
        if vehicle and container:
            colour = self.agent.colours(vehicle).get(container)
        return {
            "result": result,
            "tone": tone,
            "title": title,
            "action": action,
            "at": now,
            "barcode": row.get("barcode"),
            "parcel_id": row.get("parcel_id"),
            "vehicle_id": vehicle,
            "container": container,
            "colour": colour,
            "position": row.get("position"),
            "load_position": row.get("load_position"),
            "stop_id": row.get("stop_id"),
        }

    def _emit(
        self, tx: Tx, scan_id: str, code: str, result: str, row: dict[str, Any], now: int
    ) -> None:
        tx.emit(
            HUB,
            ParcelScan(
                scan_id=scan_id,
                barcode=code,
                at=now,
                result=result,  # type: ignore[arg-type]
                parcel_id=row.get("parcel_id"),
                depot_id=self.agent.depot_id,
                vehicle_id=row.get("vehicle_id"),
                container=row.get("container"),
                position=row.get("load_position") if row.get("container") else None,
            ),
        )

    def _seen(self, tx: Tx, code: str, result: str) -> bool:
        return (
            tx.conn.execute(
                "SELECT 1 FROM depot_scans WHERE code = ? AND result = ? LIMIT 1", (code, result)
            ).fetchone()
            is not None
        )

    def _forget(self) -> None:
        self._last = None


def _where(slot: Slot) -> str:
    if slot.container == OVERFLOW:
        return f"{slot.vehicle_id} · OVERFLOW"
    return f"{slot.vehicle_id} · {slot.container} · #{slot.position}"
