"""Reads for the ops dashboard: orders by state, fleet utilisation and on-time rate,
vehicles with their last contact and position, and a searchable decision record.
"""

from __future__ import annotations

import json
import time
from typing import Any

from cloud.device_clock import AHEAD_MAX_MS
from cloud.store.base import StoreBase

__all__ = ["OverviewStore"]


class OverviewStore(StoreBase):
    """Aggregates over the other parts' tables (read only)."""

    def orders_by_state(self, day: str | None = None) -> dict[str, int]:
        where, params = ("WHERE day = ?", (day,)) if day else ("", ())
        rows = self.query(
            f"SELECT status, count(*) AS n FROM orders {where} GROUP BY status ORDER BY status",
            params,
        )
        return {r["status"]: int(r["n"]) for r in rows}

    def fleet_overview(self) -> list[dict[str, Any]]:
        """Per fleet: capacity, work assigned, utilisation, deliveries and the on-time rate."""
        fleets = self.query("SELECT * FROM fleets ORDER BY fleet_id")
        vehicles = self.query("SELECT vehicle_id, fleet_id, spec, status FROM vehicles")
        assigned = {
            r["fleet_id"]: int(r["n"])
            for r in self.query(
                "SELECT coalesce(v.fleet_id, a.vehicle_id) AS fleet_id, count(*) AS n "
                "FROM assignments a LEFT JOIN vehicles v ON v.vehicle_id = a.vehicle_id "
                "GROUP BY 1"
            )
        }
        done = self.query(
            "SELECT coalesce(vd.fleet_id, va.fleet_id, a.vehicle_id) AS fleet_id, "
            "count(*) AS n, sum(CASE WHEN s.window_end IS NULL OR "
            "coalesce(sf.at_ms, o.updated_ms) <= s.window_end * 1000 THEN 1 ELSE 0 END) AS on_time "
            "FROM orders o JOIN stops s USING (order_id) "
            "LEFT JOIN stop_facts sf ON sf.stop_id = o.order_id "
            "LEFT JOIN assignments a ON a.order_id = o.order_id "
            "LEFT JOIN vehicles vd ON vd.vehicle_id = coalesce(sf.vehicle_id, o.done_by) "
            "LEFT JOIN vehicles va ON va.vehicle_id = a.vehicle_id "
            "WHERE o.status = 'delivered' GROUP BY 1"
        )
        delivered = {r["fleet_id"]: (int(r["n"]), int(r["on_time"] or 0)) for r in done}
        out = []
        for f in fleets:
            terms = json.loads(f["terms"])
            own = [v for v in vehicles if v["fleet_id"] == f["fleet_id"]]
            if f["kind"] == "3pl":
                capacity = int(terms.get("daily_stops") or 0)
            else:
                capacity = sum(int(json.loads(v["spec"]).get("capacity") or 0) for v in own)
            n_assigned = assigned.get(f["fleet_id"], 0)
            n_done, n_on_time = delivered.get(f["fleet_id"], (0, 0))
            out.append(
                {
                    "fleet_id": f["fleet_id"],
                    "kind": f["kind"],
                    "status": f["status"],
                    "vehicles": len(own),
                    "capacity": capacity,
                    "assigned": n_assigned,
                    "utilisation": round(n_assigned / capacity, 3) if capacity else None,
                    "delivered": n_done,
                    "on_time": n_on_time,
                    "on_time_rate": round(n_on_time / n_done, 3) if n_done else None,
                }
            )
        return out

    def vehicle_overview(self, now_ms: int | None = None) -> list[dict[str, Any]]:
        """Registered vehicles and vehicle devices, with status, last contact and position.

        Last contact takes no device time ahead of ``now_ms`` (the coordinator's clock, the
        system's if None) by more than :data:`~cloud.device_clock.AHEAD_MAX_MS`: a van whose
        clock once ran ahead does not keep a contact time in the future."""
        latest = (int(time.time() * 1000) if now_ms is None else now_ms) + AHEAD_MAX_MS
        return self.query(
            "WITH ids AS (SELECT vehicle_id AS id FROM vehicles UNION "
            "SELECT device_id FROM devices WHERE role = 'vehicle') "
            "SELECT ids.id AS vehicle_id, v.fleet_id, f.kind AS fleet_kind, "
            "v.status AS plan_status, d.status AS link_status, d.status_at_ms, "
            "max(iif(d.last_seen_ms <= ?1, d.last_seen_ms, 0), iif(p.at_ms <= ?1, p.at_ms, 0), "
            "coalesce((SELECT max(ts) FROM events e WHERE e.src = ids.id AND e.ts <= ?1), 0)) "
            "AS last_contact_ms, "
            "p.lat, p.lon, p.speed_kmh, p.heading_deg, p.at_ms AS position_at_ms "
            "FROM ids LEFT JOIN vehicles v ON v.vehicle_id = ids.id "
            "LEFT JOIN fleets f ON f.fleet_id = v.fleet_id "
            "LEFT JOIN devices d ON d.device_id = ids.id "
            "LEFT JOIN positions p ON p.vehicle_id = ids.id ORDER BY ids.id",
            (latest,),
        )

    def search_decisions(self, q: str | None, limit: int = 50) -> list[dict[str, Any]]:
        """Decisions, newest first; ``q`` matches id, kind, rule, who, status, trigger, applied."""
        cols = (
            "decision_id, kind, rule, region, trigger, output, applied, approved_by, status, at_ms"
        )
        if q:
            like = f"%{q}%"
            rows = self.query(
                f"SELECT {cols} FROM decisions WHERE decision_id LIKE ? OR kind LIKE ? "
                "OR rule LIKE ? OR approved_by LIKE ? OR status LIKE ? OR trigger LIKE ? "
                "OR applied LIKE ? ORDER BY at_ms DESC, decision_id LIMIT ?",
                (like, like, like, like, like, like, like, limit),
            )
        else:
            rows = self.query(
                f"SELECT {cols} FROM decisions ORDER BY at_ms DESC, decision_id LIMIT ?", (limit,)
            )
        for r in rows:
            for k in ("trigger", "applied", "output"):
                r[k] = json.loads(r[k])
            if r["kind"] in ("plan", "rebalance"):
                r["output"] = {"status": r["output"].get("status")}
        return rows
