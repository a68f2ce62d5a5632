"""Classify one exception with its context into a decision a person or the system acts on.

:func:`classify` takes an :class:`~cloud.ops.exceptions.Incident`, the policy table and a
:class:`Context` (order value, customer tier, cost impact, options with their costs, history)
and returns a :class:`Decision`: the action, why, the options with costs and the recommended
one. When the coordinator offers no options, a class's usual options with rough default
costs are used, so an escalation never reaches a person without something to choose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloud.ops.exceptions import ExceptionClass, Incident
from cloud.ops.policy import Action, PolicyTable
from protocol import ExceptionReport

__all__ = ["DEFAULT_OPTIONS", "Context", "Decision", "Option", "classify"]


@dataclass(frozen=True)
class Option:
    """One way to resolve an exception and what it costs (EUR, the coordinator's estimate)."""

    key: str
    label: str
    cost: float

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "cost": round(self.cost, 2)}


def _options(*rows: tuple[str, str, float]) -> tuple[Option, ...]:
    return tuple(Option(k, label, cost) for k, label, cost in rows)


#: Usual options per class with rough costs, used when the coordinator offers none.
DEFAULT_OPTIONS: dict[ExceptionClass, tuple[Option, ...]] = {
    ExceptionClass.FAILED_DELIVERY: _options(
        ("reattempt_next_day", "Re-attempt on the next day's route", 4.0),
        ("pickup_point", "Send to the nearest pickup point", 2.5),
        ("return_to_sender", "Return to sender", 9.0),
    ),
    ExceptionClass.VEHICLE_BREAKDOWN: _options(
        ("reassign_remaining_stops", "Move remaining stops to nearby vehicles", 60.0),
        ("send_replacement", "Send a replacement van to transfer the load", 120.0),
        ("postpone_stops", "Postpone remaining stops to tomorrow", 200.0),
    ),
    ExceptionClass.CARRIER_OUTAGE: _options(
        ("move_orders_to_own_fleet", "Move the carrier's open orders to own vans", 300.0),
        ("move_orders_to_other_carrier", "Move them to another carrier", 250.0),
        ("wait", "Wait for the carrier to recover", 0.0),
    ),
    ExceptionClass.PREDICTED_LATENESS: _options(
        ("notify_customer", "Tell the customer the new window", 0.0),
        ("resequence", "Re-sequence the route to protect the window", 3.0),
        ("move_stop", "Move the stop to another vehicle", 15.0),
        ("postpone", "Move the stop to the next day and tell the customer", 4.0),
    ),
    ExceptionClass.TEMPERATURE_EXCURSION: _options(
        ("return_to_depot", "Bring the parcel back for inspection", 25.0),
        ("deliver_and_flag", "Deliver and flag for the shipper", 0.0),
        ("replace_parcel", "Ship a replacement", 80.0),
    ),
    ExceptionClass.VEHICLE_OFFLINE: _options(
        ("await_reconnect", "Let the van work offline; its outbox syncs when it is back", 0.0),
        ("call_driver", "Call the driver", 1.0),
        ("reassign_remaining_stops", "Move its remaining stops to other vehicles", 60.0),
    ),
    ExceptionClass.FOREIGN_STOP_EVENT: _options(
        ("investigate", "Ask both drivers and the depot who has the parcel", 5.0),
        ("call_driver", "Call the driver who reported it", 1.0),
        ("acknowledge", "Acknowledge; the order stays as it is", 0.0),
    ),
    ExceptionClass.CAPACITY_SHORTFALL: _options(
        ("move_to_carrier", "Hand the overflow to a carrier", 6.0),
        ("add_vehicle", "Add a vehicle to the day", 180.0),
        ("postpone", "Postpone the lowest-priority orders", 2.0),
    ),
}
for _cls, _key, _label in (
    (ExceptionClass.PLAN_CONFLICT, "repair_plan", "Field facts win: repair the plan"),
    (ExceptionClass.DUPLICATE_PARCEL, "hold_duplicate", "Hold the duplicate at the sorter"),
    (ExceptionClass.MISROUTED_PARCEL, "transfer_parcel", "Move the parcel to its right place"),
    (ExceptionClass.UNKNOWN_PARCEL, "problem_shelf", "Put the parcel on the problem shelf"),
    (ExceptionClass.CANCELLED_PARCEL, "return_to_sender", "Route the parcel to returns"),
    (ExceptionClass.MISSING_PARCEL, "replan_stop", "Plan the stop again"),
    (ExceptionClass.CONTAINER_OVERFLOW, "move_stops", "Use the sorter's fallback container"),
):
    DEFAULT_OPTIONS[_cls] = _options(
        (_key, _label, 0.0),
        ("call_driver", "Call the driver", 1.0),
        ("investigate", "Investigate", 5.0),
    )
_GENERIC = _options(
    ("call_driver", "Call the driver", 1.0),
    ("acknowledge", "Acknowledge; no action", 0.0),
)


@dataclass(frozen=True)
class Context:
    """What the coordinator knows around an exception."""

    order_value: float = 0.0
    customer_tier: str | None = None
    cost_impact: float = 0.0
    options: tuple[Option, ...] = ()
    history: tuple[str, ...] = ()
    order: dict[str, Any] = field(default_factory=dict)
    vehicle: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """What the policy decided for one incident, with everything a person needs to decide."""

    incident: Incident
    action: Action
    reason: str
    options: tuple[Option, ...]
    recommended: Option
    context: Context

    @property
    def needs_person(self) -> bool:
        """True unless the policy resolves it without anyone."""
        return self.action is not Action.AUTO

    def option(self, key: str) -> Option | None:
        """The offered option with this key, or None."""
        return next((o for o in self.options if o.key == key), None)

    def as_dict(self) -> dict[str, Any]:
        """The decision as plain data (for the decision record, the queue and webhooks)."""
        inc = self.incident
        return {
            "incident_id": inc.incident_id,
            "class": inc.cls.value,
            "category": inc.category,
            "severity": inc.severity,
            "at_ms": inc.at_ms,
            "predicted": inc.predicted,
            "detail": inc.detail,
            "reason_code": inc.reason,
            "order_id": inc.order_id,
            "parcel_id": inc.parcel_id,
            "vehicle_id": inc.vehicle_id,
            "carrier_id": inc.carrier_id,
            "depot_id": inc.depot_id,
            "action": self.action.value,
            "why": self.reason,
            "recommended": self.recommended.as_dict(),
            "options": [o.as_dict() for o in self.options],
            "context": {
                "order_value": self.context.order_value,
                "customer_tier": self.context.customer_tier,
                "cost_impact": self.context.cost_impact,
                "order": dict(self.context.order),
                "vehicle": dict(self.context.vehicle),
                "history": list(self.context.history),
            },
        }


def classify(
    policy: PolicyTable, incident: Incident | ExceptionReport, context: Context | None = None
) -> Decision:
    """Decide what happens to ``incident`` (or a device's report) under ``policy``."""
    if isinstance(incident, ExceptionReport):
        incident = Incident.from_report(incident)
    context = context or Context()
    verdict = policy.verdict(
        incident, cost_impact=context.cost_impact, customer_tier=context.customer_tier
    )
    options = context.options or DEFAULT_OPTIONS.get(incident.cls, _GENERIC)
    rule = policy.rule(incident.cls)
    wanted = rule.recommended
    if verdict.action is Action.AUTO and rule.auto_option:
        wanted = rule.auto_option
    recommended = next((o for o in options if o.key == wanted), None)
    if recommended is None:
        recommended = min(options, key=lambda o: o.cost)
    return Decision(
        incident=incident,
        action=verdict.action,
        reason=verdict.why,
        options=tuple(options),
        recommended=recommended,
        context=context,
    )
