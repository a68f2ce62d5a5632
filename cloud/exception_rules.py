"""The exception policy as a replayable rule, and incidents and decisions as plain data.

An exception decision in the record keeps the incident, its context and the policy rule in
force (the class's rule and the defaults) as its inputs; :func:`exception_policy` re-runs
the classification from those inputs alone, so ``replay`` reproduces it.
"""

from __future__ import annotations

from typing import Any

from cloud.ops import (
    Context,
    Decision,
    ExceptionClass,
    Incident,
    Option,
    PolicyTable,
    classify,
)

__all__ = [
    "decision_from_inputs",
    "exception_policy",
    "incident_from_dict",
    "incident_to_dict",
    "policy_inputs",
]

_FIELDS = (
    "incident_id",
    "at_ms",
    "category",
    "severity",
    "detail",
    "reason",
    "order_id",
    "parcel_id",
    "stop_id",
    "vehicle_id",
    "carrier_id",
    "depot_id",
    "predicted",
)


def incident_to_dict(incident: Incident) -> dict[str, Any]:
    out = {k: getattr(incident, k) for k in _FIELDS}
    out["cls"] = incident.cls.value
    out["measures"] = dict(incident.measures)
    out["data"] = {k: v for k, v in incident.data.items() if isinstance(v, str | int | float)}
    return out


def incident_from_dict(d: dict[str, Any]) -> Incident:
    fields = {k: d.get(k) for k in _FIELDS if k in d}
    return Incident(
        cls=ExceptionClass(d["cls"]),
        measures={k: float(v) for k, v in (d.get("measures") or {}).items()},
        data=dict(d.get("data") or {}),
        **fields,
    )


def _context_to_dict(context: Context) -> dict[str, Any]:
    return {
        "order_value": context.order_value,
        "customer_tier": context.customer_tier,
        "cost_impact": context.cost_impact,
        "options": [o.as_dict() for o in context.options],
        "history": list(context.history),
        "order": dict(context.order),
        "vehicle": dict(context.vehicle),
    }


def _context_from_dict(d: dict[str, Any]) -> Context:
    return Context(
        order_value=float(d.get("order_value") or 0.0),
        customer_tier=d.get("customer_tier"),
        cost_impact=float(d.get("cost_impact") or 0.0),
        options=tuple(Option(o["key"], o["label"], o["cost"]) for o in d.get("options") or ()),
        history=tuple(d.get("history") or ()),
        order=dict(d.get("order") or {}),
        vehicle=dict(d.get("vehicle") or {}),
    )


def policy_inputs(policy: PolicyTable, incident: Incident, context: Context) -> dict[str, Any]:
    """What an exception decision records as its inputs."""
    rule = policy.classes.get(incident.cls)
    snapshot: dict[str, Any] = {"defaults": policy.defaults.model_dump(mode="json")}
    snapshot["classes"] = {incident.cls.value: rule.model_dump(mode="json")} if rule else {}
    return {
        "incident": incident_to_dict(incident),
        "context": _context_to_dict(context),
        "policy": snapshot,
    }


def exception_policy(inputs: dict[str, Any]) -> dict[str, Any]:
    """The rule: the policy's action, why, and the recommended option for the incident."""
    decision = decision_from_inputs(inputs)
    return {
        "action": decision.action.value,
        "why": decision.reason,
        "recommended": decision.recommended.as_dict(),
    }


def decision_from_inputs(inputs: dict[str, Any]) -> Decision:
    """Rebuild the :class:`Decision` from recorded inputs (to take an approval on it)."""
    policy = PolicyTable.model_validate(inputs["policy"])
    return classify(
        policy, incident_from_dict(inputs["incident"]), _context_from_dict(inputs["context"])
    )
