"""The classes of operational exceptions and the one shape every incoming one takes.

An :class:`Incident` is what the policy judges: an ``ExceptionReport`` a device sent
(:meth:`Incident.from_report`), a failed stop (:meth:`Incident.from_failed_stop`), or one
the coordinator predicts (:meth:`Incident.forecast`, e.g. a van an hour late).

Device categories map onto classes by name; a few names devices use today are aliases, and
a category nobody knows becomes ``unclassified``, which the default policy escalates, so
nothing new is ever silently resolved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from protocol import ExceptionReport, StopEvent

__all__ = ["CATEGORY_ALIASES", "ExceptionClass", "Incident", "classify_category"]


class ExceptionClass(StrEnum):
    """Every class the policy table may name."""

    FAILED_DELIVERY = "failed_delivery"
    VEHICLE_BREAKDOWN = "vehicle_breakdown"
    CARRIER_OUTAGE = "carrier_outage"
    PREDICTED_LATENESS = "predicted_lateness"
    LONG_DWELL = "long_dwell"
    ROUTE_DEVIATION = "route_deviation"
    VEHICLE_OFFLINE = "vehicle_offline"
    TEMPERATURE_EXCURSION = "temperature_excursion"
    CAPACITY_SHORTFALL = "capacity_shortfall"
    DUPLICATE_PARCEL = "duplicate_parcel"
    MISROUTED_PARCEL = "misrouted_parcel"
    UNKNOWN_PARCEL = "unknown_parcel"
    CANCELLED_PARCEL = "cancelled_parcel"
    PLAN_CONFLICT = "plan_conflict"
    MISSING_PARCEL = "missing_parcel"
    CONTAINER_OVERFLOW = "container_overflow"
    ENTRY_LOST = "entry_lost"
    FOREIGN_STOP_EVENT = "foreign_stop_event"
    READY_TO_DEPART = "ready_to_depart"
    UNCLASSIFIED = "unclassified"


#: Other names devices or integrations use for a class.
CATEGORY_ALIASES: dict[str, ExceptionClass] = {
    "mis_sorted_parcel": ExceptionClass.MISROUTED_PARCEL,
    "missorted_parcel": ExceptionClass.MISROUTED_PARCEL,
    "wrong_container": ExceptionClass.MISROUTED_PARCEL,
    "duplicate": ExceptionClass.DUPLICATE_PARCEL,
    "breakdown": ExceptionClass.VEHICLE_BREAKDOWN,
    "delivery_failed": ExceptionClass.FAILED_DELIVERY,
    "offline": ExceptionClass.VEHICLE_OFFLINE,
    "cold_chain_excursion": ExceptionClass.TEMPERATURE_EXCURSION,
}


def classify_category(category: str) -> ExceptionClass:
    """The class of a device's category name; ``unclassified`` when nobody knows it."""
    try:
        return ExceptionClass(category)
    except ValueError:
        return CATEGORY_ALIASES.get(category, ExceptionClass.UNCLASSIFIED)


@dataclass(frozen=True)
class Incident:
    """One exception, reported or predicted, in the shape the policy judges.

    ``measures`` holds the numbers thresholds compare (``minutes_late``, ``minutes``,
    ``km_off_route``, ``degrees_over``, ``parcels``…); ``reason`` selects a per-reason rule
    (a failed delivery's ``absent``, ``refused``…).
    """

    incident_id: str
    cls: ExceptionClass
    at_ms: int
    category: str = ""
    severity: str = "warning"
    detail: str = ""
    reason: str | None = None
    order_id: str | None = None
    parcel_id: str | None = None
    stop_id: str | None = None
    vehicle_id: str | None = None
    carrier_id: str | None = None
    depot_id: str | None = None
    predicted: bool = False
    measures: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_report(
        cls,
        report: ExceptionReport,
        *,
        order_id: str | None = None,
        carrier_id: str | None = None,
    ) -> Incident:
        """An incident from a device's report; numeric ``data`` entries become measures."""
        data = dict(report.data)
        measures = {
            k: float(v)
            for k, v in data.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        reason = data.get("reason")
        depot = data.get("depot_id")
        carrier = carrier_id or data.get("carrier_id")
        return cls(
            incident_id=report.exception_id,
            cls=classify_category(report.category),
            at_ms=report.at,
            category=report.category,
            severity=report.severity,
            detail=report.detail,
            reason=str(reason) if reason is not None else None,
            order_id=order_id or _str_or_none(data.get("order_id")),
            parcel_id=report.parcel_id,
            stop_id=report.stop_id,
            vehicle_id=report.vehicle_id,
            carrier_id=_str_or_none(carrier),
            depot_id=_str_or_none(depot),
            measures=measures,
            data=data,
        )

    @classmethod
    def from_failed_stop(
        cls,
        event: StopEvent,
        *,
        vehicle_id: str | None = None,
        order_id: str | None = None,
        carrier_id: str | None = None,
    ) -> Incident:
        """A failed delivery from a vehicle's ``failed`` stop event, by its reason."""
        if event.type != "failed" or event.reason is None:
            raise ValueError(f"stop event {event.event_id} is {event.type}, not a failure")
        return cls(
            incident_id=f"stop-{event.event_id}",
            cls=ExceptionClass.FAILED_DELIVERY,
            at_ms=event.at,
            category=ExceptionClass.FAILED_DELIVERY.value,
            detail=event.note or f"delivery failed: {event.reason}",
            reason=event.reason,
            order_id=order_id,
            stop_id=event.stop_id,
            vehicle_id=vehicle_id,
            carrier_id=carrier_id,
            data={"route_id": event.route_id, "plan_version": event.plan_version},
        )

    @classmethod
    def forecast(
        cls, incident_id: str, exception_class: ExceptionClass | str, at_ms: int, **fields: Any
    ) -> Incident:
        """An incident the coordinator predicts (no device reported it)."""
        klass = ExceptionClass(exception_class)
        fields.setdefault("category", klass.value)
        return cls(incident_id=incident_id, cls=klass, at_ms=at_ms, predicted=True, **fields)

    @property
    def scope(self) -> tuple[str, str]:
        """What the incident is about, for grouping: carrier, vehicle, depot or itself."""
        if self.cls is ExceptionClass.CARRIER_OUTAGE and self.carrier_id:
            return ("carrier", self.carrier_id)
        for kind, value in (
            ("vehicle", self.vehicle_id),
            ("carrier", self.carrier_id),
            ("depot", self.depot_id),
        ):
            if value:
                return (kind, value)
        return ("incident", self.incident_id)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
