"""The coordinator's operations: exceptions, customer ETAs, notifications, webhooks, access.

:class:`Operations` composes the parts (:mod:`cloud.exceptions_flow`,
:mod:`cloud.customer_etas`, :mod:`cloud.api_access`) from :class:`OperationsSettings`, and
runs one worker thread that, every ``tick_s`` (and, for the outbox, as soon as an ingest
commit wrote to it):

- raises the exceptions nothing reports (carrier outages and breakdowns queued by dispatch,
  vehicles offline too long), and
- drains the ops outbox written by ingest transactions: customer notifications through the
  customer's preferred channel (:class:`cloud.ops.ChannelRouter`); a webhook event becomes
  one durable delivery per subscribed target, in the transaction that marks its entry
  handled, which the :class:`cloud.ops.WebhookDispatcher`'s workers send with retries.

Nothing here ever runs inside ingest except the writes to the store.
"""

from __future__ import annotations

import functools
import logging
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloud.api_access import Access
from cloud.customer_etas import CustomerEtas
from cloud.errors import ConflictError, InvalidError, NotFoundError
from cloud.exceptions_flow import ExceptionFlow
from cloud.ops import (
    Channel,
    ChannelRouter,
    CustomerEtaRule,
    DashboardUser,
    EtaSettings,
    LogChannel,
    Notification,
    OpsSettings,
    PushLogStub,
    Recipient,
    SettingsError,
    SmsLogStub,
    WebhookChannel,
    WebhookDispatcher,
    WebhookEvent,
    WebhookTarget,
    default_policy,
    load_policy,
)
from cloud.ops.errors import DeliveryError
from cloud.ops.webhook_addresses import check_target
from cloud.ops.webhook_signing import new_secret
from cloud.ops.webhooks import EVENT_TYPES, plan_deliveries, send
from protocol import StopEvent

if TYPE_CHECKING:
    from cloud.coordinator import Coordinator

__all__ = ["Operations", "OperationsSettings"]

log = logging.getLogger(__name__)

_PRUNE_EVERY_S = 3600.0


@dataclass(frozen=True)
class OperationsSettings:
    """Settings of the coordinator's operations (part of ``CloudSettings``)."""

    ops: OpsSettings | None = None
    """Environment and secrets; None: ``OpsSettings.from_env()`` (production unless
    ``WAYLINE_ENV=development``)."""
    policy_path: Path | None = None
    """The exception policy file; None: the policy that ships with Wayline."""
    eta: EtaSettings | None = None
    lateness_threshold_s: int = 900
    offline_threshold_min: float = 30.0
    channels: tuple[Channel, ...] = ()
    """More notification channels (an :class:`cloud.ops.SmtpChannel`...)."""
    dashboard_users: tuple[DashboardUser, ...] = ()
    open_in_development: bool = True
    tick_s: float = 1.0
    webhook_timeout_s: float = 5.0
    """Seconds to wait for a receiver's answer."""
    webhook_max_attempts: int = 18
    """Attempts before a delivery is ``failed``."""
    webhook_backoff_base_s: float = 5.0
    """The wait after the first failed attempt, doubled after each next one; with the
    defaults, retries span about 1.5 days."""
    webhook_backoff_max_s: float = 6 * 3600.0
    """The longest wait between two attempts."""
    webhook_workers: int = 4
    """Threads sending webhooks."""
    webhook_keep_delivered_days: float = 30.0
    """Delivered webhooks are forgotten after this many days (failed ones are kept)."""
    webhook_allow_private: bool = False
    """Let webhook targets be ``http`` and any address (loopback, private networks); by
    default only public ``https`` ones (:mod:`cloud.ops.webhook_addresses`)."""

    def __post_init__(self) -> None:
        for name in ("webhook_timeout_s", "webhook_backoff_base_s", "webhook_backoff_max_s"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"{name} must be more than 0, not {getattr(self, name)!r}")
        for name in ("webhook_max_attempts", "webhook_workers"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, not {getattr(self, name)!r}")


def resolve_ops_settings(settings: OperationsSettings) -> OpsSettings:
    """The given settings, else the environment's: production unless ``WAYLINE_ENV`` says
    ``development``, so a deployment that forgets it refuses to start on default secrets
    rather than serving an open API."""
    if settings.ops is not None:
        return settings.ops
    return OpsSettings.from_env()


class Operations:
    """The parts, the outbox worker and the webhook dispatcher (see the module docstring)."""

    def __init__(self, coordinator: Coordinator, settings: OperationsSettings) -> None:
        self.c = coordinator
        self.db = coordinator.db
        self.settings = settings
        self.ops_settings = resolve_ops_settings(settings)
        policy = load_policy(settings.policy_path) if settings.policy_path else default_policy()
        self.exceptions = ExceptionFlow(
            coordinator,
            policy,
            lateness_threshold_s=settings.lateness_threshold_s,
            offline_threshold_min=settings.offline_threshold_min,
        )
        self.etas = CustomerEtas(coordinator, CustomerEtaRule(settings.eta))
        self.access = Access(
            self.db,
            self.ops_settings,
            settings.dashboard_users,
            open_in_development=settings.open_in_development,
        )
        channels: list[Channel] = [
            LogChannel(),
            SmsLogStub(),
            PushLogStub(),
            WebhookChannel(self.ops_settings.webhook_secret, timeout_s=settings.webhook_timeout_s),
            *settings.channels,
        ]
        self.channels = ChannelRouter(channels)
        self.webhooks = WebhookDispatcher(
            self.db,
            workers=settings.webhook_workers,
            timeout_s=settings.webhook_timeout_s,
            max_attempts=settings.webhook_max_attempts,
            backoff_base_s=settings.webhook_backoff_base_s,
            backoff_max_s=settings.webhook_backoff_max_s,
            on_outcome=coordinator.metrics.webhook_outcome,
            sender=functools.partial(send, allow_private=settings.webhook_allow_private),
        )
        self._next_prune = 0.0
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._drain_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.webhooks.start()
        self._thread = threading.Thread(target=self._loop, name="cloud-operations", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self.webhooks.stop(timeout=self.settings.webhook_timeout_s + 1)

    def wake(self) -> None:
        """Drain the outbox soon (after a transaction that wrote to it committed)."""
        self._wake.set()

    def _loop(self) -> None:
        """Scan every ``tick_s``; drain the outbox then and whenever a commit wakes us.

        A wake never runs a scan: during a backlog drain, ingest commits many times a
        second, and a scan per commit (a write transaction) would compete with it.
        """
        next_scan = 0.0
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= next_scan:
                    next_scan = time.monotonic() + self.settings.tick_s
                    self.tick()
                else:
                    self.drain()
            except Exception:
                log.exception("operations tick failed; retried on the next one")
            self._wake.wait(max(0.0, next_scan - time.monotonic()))
            self._wake.clear()

    def tick(self) -> int:
        """Raise the exceptions nothing reports, then drain the outbox; hourly, forget
        webhooks delivered longer ago than ``webhook_keep_delivered_days``."""
        self.exceptions.scan()
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + _PRUNE_EVERY_S
            keep_ms = int(self.settings.webhook_keep_delivered_days * 86_400_000)
            with self.db.store.transaction() as conn:
                self.db.prune_webhook_deliveries(conn, int(time.time() * 1000) - keep_ms)
        return self.drain()

    def finish_task(self, task_id: str, by: str, note: str = "") -> dict[str, Any]:
        """A person marks an ops task (call the driver, bring a parcel back...) done."""
        with self.db.store.transaction() as conn:
            task = self.db.task(task_id, conn)
            if task is None:
                raise NotFoundError(f"no task {task_id!r}")
            if task["status"] == "done":
                raise ConflictError(
                    f"task {task_id} was already done by {task['done_by']} at {task['done_ms']}"
                )
            self.db.close_task(conn, task_id, by, note, self.c.now_ms())
            return dict(self.db.task(task_id, conn) or {})

    def delivery_confirmed(self, conn: sqlite3.Connection, peer: str, e: StopEvent) -> None:
        """A delivery that happened, with its proof, for billing: a webhook event."""
        if e.type != "delivered":
            return
        proof = e.proof.model_dump(mode="json", exclude={"signature_svg"}) if e.proof else {}
        if e.proof and e.proof.signature_svg:
            proof["signature"] = True
        event = WebhookEvent.delivery_confirmed(
            e.stop_id,
            e.at,
            proof,
            vehicle_id=peer,
            route_id=e.route_id,
            carrier_id=self.db.carrier_of(e.stop_id, conn),
            lat=e.lat,
            lon=e.lon,
        )
        payload = {
            "event_id": event.event_id,
            "type": event.type,
            "created_ms": event.created_ms,
            "data": dict(event.data),
        }
        self.db.add_outbox(conn, "webhook", event.event_id, payload, self.c.now_ms())

    # -- the outbox ------------------------------------------------------------------------

    def drain(self) -> int:
        """Send what committed transactions queued; returns how many entries were handled."""
        done = planned = 0
        with self._drain_lock:
            for entry in self.db.outbox_due():
                try:
                    if entry["kind"] == "webhook":
                        planned += self._plan_webhook(entry)  # marks the entry done
                        done += 1
                        continue
                    if entry["kind"] == "notify":
                        self._notify(entry["payload"]["notification_id"])
                    elif entry["kind"] == "action":
                        self.exceptions.actions.run(entry["payload"]["action_id"])
                except Exception:
                    log.exception(
                        "ops outbox entry %s (%s) failed", entry["entry_id"], entry["kind"]
                    )
                with self.db.store.transaction() as conn:
                    self.db.outbox_done(conn, entry["entry_id"], self.c.now_ms())
                done += 1
        if planned:
            self.webhooks.wake()  # after the commit: the workers read the store
        return done

    def _plan_webhook(self, entry: dict[str, Any]) -> int:
        """One delivery per subscribed target, in the transaction that marks the entry
        handled: a crash leaves either the entry (planned again) or the deliveries."""
        p = entry["payload"]
        event = WebhookEvent(p["type"], p["data"], p["event_id"], p["created_ms"])
        now = int(time.time() * 1000)
        with self.db.store.transaction() as conn:
            targets = self.db.webhook_target_objects(conn)
            added = self.db.add_webhook_deliveries(
                conn, event, plan_deliveries(event, targets), now
            )
            self.db.outbox_done(conn, entry["entry_id"], self.c.now_ms())
        return added

    def _notify(self, notification_id: str) -> None:
        row = self.db.one(
            None, "SELECT * FROM notifications WHERE notification_id = ?", (notification_id,)
        )
        if row is None or row["status"] != "queued":
            return
        contact = self.db.contact(None, row["customer_id"]) or {}
        recipient = Recipient(
            customer_id=row["customer_id"],
            email=contact.get("email"),
            phone=contact.get("phone"),
            push_token=contact.get("push_token"),
            webhook_url=contact.get("webhook_url"),
            preferences=tuple(contact.get("preferences") or ("log",)),
        )
        note = Notification(
            recipient,
            row["subject"],
            row["text"],
            kind=row["kind"],
            data={"order_id": row["order_id"], "change": row["change"]},
            notification_id=notification_id,
        )
        delivery = self.channels.send(note)
        with self.db.store.transaction() as conn:
            self.db.set_notification_sent(
                conn,
                notification_id,
                "sent" if delivery.ok else "failed",
                delivery.channel,
                delivery.detail,
                delivery.at_ms,
            )

    # -- webhook targets and customer contacts ---------------------------------------------

    def register_target(
        self,
        url: str,
        events: list[str],
        by: str,
        carrier_id: str | None = None,
        owner: str | None = None,
    ) -> dict[str, Any]:
        """A new webhook target of ``owner`` (a principal's subject); its signing secret
        (``whsec_…``) is returned once. Its URL must pass :func:`check_target`."""
        unknown = sorted(set(events) - set(EVENT_TYPES))
        if unknown:
            raise InvalidError(f"unknown webhook events {unknown}; known: {list(EVENT_TYPES)}")
        try:
            check_target(url, allow_private=self.settings.webhook_allow_private)
        except DeliveryError as exc:
            raise InvalidError(f"webhook target refused: {exc.reason}") from None
        target_id = f"wh-{secrets.token_hex(6)}"
        secret = new_secret()
        try:
            WebhookTarget(target_id, url, secret, frozenset(events))
        except ValueError as exc:
            raise InvalidError(str(exc)) from None
        row = {
            "target_id": target_id,
            "url": url,
            "secret": secret,
            "events": events,
            "carrier_id": carrier_id,
            "created_by": by,
            "created_ms": self.c.now_ms(),
            "owner": owner,
        }
        with self.db.store.transaction() as conn:
            self.db.put_webhook_target(conn, row)
        return {**row, "events": sorted(events)}

    def remove_target(self, target_id: str) -> None:
        """Stop a target; what was still to be sent to it fails with ``target removed``."""
        with self.db.store.transaction() as conn:
            if not self.db.deactivate_webhook_target(conn, target_id, int(time.time() * 1000)):
                raise NotFoundError(f"no webhook target {target_id!r}")

    def webhook_targets(self) -> list[dict[str, Any]]:
        """Active targets without their secrets, each with its deliveries by status."""
        counts = self.db.webhook_delivery_counts()
        empty = {"pending": 0, "delivered": 0, "failed": 0}
        return [
            {
                **{k: v for k, v in t.items() if k != "secret"},
                "deliveries": counts.get(t["target_id"], empty),
            }
            for t in self.db.webhook_targets()
        ]

    def webhook_deliveries(
        self, target_id: str, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """A target's deliveries, newest first (the failed ones with their last error)."""
        if not any(t["target_id"] == target_id for t in self.db.webhook_targets()):
            raise NotFoundError(f"no webhook target {target_id!r}")
        return self.db.webhook_deliveries(target_id, status, limit)

    def redeliver(self, delivery_id: str) -> dict[str, Any]:
        """Send a failed delivery again, now, with the same ``webhook-id`` and a fresh count
        of attempts."""
        with self.db.store.transaction() as conn:
            row = self.db.webhook_delivery(delivery_id, conn)
            if row is None:
                raise NotFoundError(f"no webhook delivery {delivery_id!r}")
            if not self.db.redeliver_webhook(conn, delivery_id, int(time.time() * 1000)):
                why = (
                    f"is {row['status']}; only a failed one can be sent again"
                    if row["status"] != "failed"
                    else f"went to {row['target_id']}, which was removed"
                )
                raise ConflictError(f"webhook delivery {delivery_id} {why}")
            row = self.db.webhook_delivery(delivery_id, conn) or row
        self.webhooks.wake()
        return row
