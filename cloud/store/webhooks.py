"""Webhook targets and the deliveries to them, each with its retries, in the coordinator's store.

A delivery is one event for one target (``UNIQUE (event_id, target_id)``), created in the
transaction that marks the event's outbox entry handled. It holds the exact body that is
signed and sent, so every retry sends the same bytes under the same ``webhook-id``. A worker
claims a due delivery (``claimed_ms``), sends it, and records the outcome, which releases the
claim; claims left by a process that died are released when the next one starts
(:meth:`WebhookStore.release_webhook_claims`). Implements
:class:`cloud.ops.webhooks.DeliveryStore`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable
from typing import Any

from cloud.ops.webhooks import ClaimedDelivery, WebhookEvent, WebhookOutcome, WebhookTarget
from cloud.store.base import StoreBase

__all__ = ["DELIVERY_STATUSES", "WebhookStore"]

DELIVERY_STATUSES = ("pending", "delivered", "failed")
_LISTED = (
    "delivery_id, event_id, event_type, target_id, status, attempts, next_attempt_ms, "
    "claimed_ms, last_attempt_ms, last_status_code, last_error, created_ms, updated_ms, "
    "delivered_ms"
)


def _not_in(column: str, values: Collection[str]) -> tuple[str, tuple[str, ...]]:
    if not values:
        return "", ()
    return f" AND {column} NOT IN ({','.join('?' * len(values))})", tuple(values)


class WebhookStore(StoreBase):
    """Webhook targets and durable deliveries (see the module docstring)."""

    # -- targets ---------------------------------------------------------------------------

    def put_webhook_target(self, conn: sqlite3.Connection, row: dict[str, Any]) -> None:
        row = {**row, "events": json.dumps(sorted(row["events"]))}
        cols = ", ".join(row)
        conn.execute(
            f"INSERT INTO webhook_targets ({cols}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )

    def webhook_targets(self, conn: sqlite3.Connection | None = None) -> list[dict[str, Any]]:
        rows = self.rows(conn, "SELECT * FROM webhook_targets WHERE active = 1 ORDER BY 1")
        for r in rows:
            r["events"] = json.loads(r["events"])
        return rows

    def webhook_target_objects(self, conn: sqlite3.Connection | None = None) -> list[WebhookTarget]:
        return [
            WebhookTarget(t["target_id"], t["url"], t["secret"], frozenset(t["events"]))
            for t in self.webhook_targets(conn)
        ]

    def deactivate_webhook_target(
        self, conn: sqlite3.Connection, target_id: str, now_ms: int
    ) -> bool:
        """Stop a target; what was still to be sent to it fails with ``target removed``."""
        cur = conn.execute(
            "UPDATE webhook_targets SET active = 0 WHERE target_id = ? AND active = 1",
            (target_id,),
        )
        if cur.rowcount != 1:
            return False
        conn.execute(
            "UPDATE webhook_deliveries SET status = 'failed', last_error = 'target removed', "
            "claimed_ms = NULL, updated_ms = ? WHERE target_id = ? AND status = 'pending'",
            (now_ms, target_id),
        )
        return True

    # -- deliveries: written with the event's outbox entry ---------------------------------

    def add_webhook_deliveries(
        self,
        conn: sqlite3.Connection,
        event: WebhookEvent,
        deliveries: Iterable[tuple[str, WebhookTarget]],
        now_ms: int,
    ) -> int:
        """One pending delivery per (delivery id, target), due now; an event already planned
        for a target is not planned twice. Returns how many were added."""
        body = event.body()
        added = 0
        for delivery_id, target in deliveries:
            cur = conn.execute(
                "INSERT INTO webhook_deliveries (delivery_id, event_id, event_type, target_id, "
                "body, status, attempts, next_attempt_ms, created_ms, updated_ms) "
                "VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?) "
                "ON CONFLICT (event_id, target_id) DO NOTHING",
                (
                    delivery_id, event.event_id, event.type, target.target_id, body,
                    now_ms, now_ms, now_ms,
                ),
            )  # fmt: skip
            added += cur.rowcount
        return added

    # -- deliveries: the workers' side (cloud.ops.webhooks.DeliveryStore) ------------------

    def release_webhook_claims(self) -> int:
        with self.store.transaction() as conn:
            cur = conn.execute(
                "UPDATE webhook_deliveries SET claimed_ms = NULL "
                "WHERE status = 'pending' AND claimed_ms IS NOT NULL"
            )
            return int(cur.rowcount)

    def claim_webhook_delivery(
        self, now_ms: int, busy_targets: Collection[str]
    ) -> ClaimedDelivery | None:
        not_busy, params = _not_in("d.target_id", busy_targets)
        # not durable: a claim lost in a power cut is released at the next start anyway
        with self.store.transaction(durable=False) as conn:
            row = conn.execute(
                "SELECT d.delivery_id, d.event_id, d.event_type, d.target_id, t.url, t.secret, "
                "d.body, d.attempts FROM webhook_deliveries d "
                "JOIN webhook_targets t ON t.target_id = d.target_id AND t.active = 1 "
                "WHERE d.status = 'pending' AND d.claimed_ms IS NULL AND d.next_attempt_ms <= ?"
                f"{not_busy} ORDER BY d.next_attempt_ms, d.created_ms LIMIT 1",
                (now_ms, *params),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE webhook_deliveries SET claimed_ms = ? WHERE delivery_id = ?",
                (now_ms, row[0]),
            )
        delivery_id, event_id, event_type, target_id, url, secret, body, attempts = row
        return ClaimedDelivery(
            delivery_id, event_id, event_type, target_id, url, secret, bytes(body), int(attempts)
        )

    def next_webhook_due_ms(self, busy_targets: Collection[str]) -> int | None:
        not_busy, params = _not_in("d.target_id", busy_targets)
        rows = self.store.read(
            "SELECT min(d.next_attempt_ms) FROM webhook_deliveries d "
            "JOIN webhook_targets t ON t.target_id = d.target_id AND t.active = 1 "
            f"WHERE d.status = 'pending' AND d.claimed_ms IS NULL{not_busy}",
            params,
        )
        return None if rows[0][0] is None else int(rows[0][0])

    def finish_webhook_delivery(
        self,
        delivery_id: str,
        *,
        status: str,
        attempts: int,
        next_attempt_ms: int,
        status_code: int | None,
        error: str | None,
        now_ms: int,
    ) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_ms = ?, "
                "claimed_ms = NULL, last_attempt_ms = ?, last_status_code = ?, last_error = ?, "
                "updated_ms = ?, delivered_ms = CASE WHEN ? = 'delivered' THEN ? END "
                "WHERE delivery_id = ? AND status = 'pending'",
                (
                    status, attempts, next_attempt_ms, now_ms, status_code, error, now_ms,
                    status, now_ms, delivery_id,
                ),
            )  # fmt: skip

    def pending_webhook_count(self) -> int:
        rows = self.store.read("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
        return int(rows[0][0])

    def webhook_outcome(self, event_id: str, target_id: str) -> WebhookOutcome | None:
        row = self.one(
            None,
            "SELECT delivery_id, status, attempts, last_error, last_status_code, event_type "
            "FROM webhook_deliveries WHERE event_id = ? AND target_id = ?",
            (event_id, target_id),
        )
        if row is None:
            return None
        return WebhookOutcome(
            event_id, target_id, row["status"], row["attempts"], row["last_error"],
            row["delivery_id"], row["last_status_code"], row["event_type"],
        )  # fmt: skip

    # -- deliveries: what people see and do ------------------------------------------------

    def webhook_delivery(
        self, delivery_id: str, conn: sqlite3.Connection | None = None
    ) -> dict[str, Any] | None:
        return self.one(
            conn, f"SELECT {_LISTED} FROM webhook_deliveries WHERE delivery_id = ?", (delivery_id,)
        )

    def webhook_deliveries(
        self, target_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Deliveries, newest first, of one target and in one status if given."""
        where, params = ["1 = 1"], []
        if target_id is not None:
            where.append("target_id = ?")
            params.append(target_id)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        return self.query(
            f"SELECT {_LISTED} FROM webhook_deliveries WHERE {' AND '.join(where)} "
            "ORDER BY created_ms DESC, delivery_id LIMIT ?",
            (*params, limit),
        )

    def webhook_delivery_counts(self) -> dict[str, dict[str, int]]:
        """Deliveries by target and status: ``{target_id: {"pending": n, ...}}``."""
        counts: dict[str, dict[str, int]] = {}
        for target_id, status, n in self.store.read(
            "SELECT target_id, status, count(*) FROM webhook_deliveries GROUP BY 1, 2"
        ):
            counts.setdefault(target_id, dict.fromkeys(DELIVERY_STATUSES, 0))[status] = int(n)
        return counts

    def redeliver_webhook(self, conn: sqlite3.Connection, delivery_id: str, now_ms: int) -> bool:
        """A failed delivery goes out again, due now, with a fresh count of attempts and the
        same id. False if it is not a failed delivery of an active target."""
        cur = conn.execute(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, "
            "next_attempt_ms = ?, claimed_ms = NULL, updated_ms = ? "
            "WHERE delivery_id = ? AND status = 'failed' AND target_id IN "
            "(SELECT target_id FROM webhook_targets WHERE active = 1)",
            (now_ms, now_ms, delivery_id),
        )
        return cur.rowcount == 1

    def prune_webhook_deliveries(self, conn: sqlite3.Connection, before_ms: int) -> int:
        """Forget deliveries delivered before ``before_ms``; returns how many."""
        cur = conn.execute(
            "DELETE FROM webhook_deliveries WHERE status = 'delivered' AND delivered_ms < ?",
            (before_ms,),
        )
        return int(cur.rowcount)
