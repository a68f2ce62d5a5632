"""Notification channels: a ``Channel`` protocol, its implementations, a router by preference.

- :class:`LogChannel` writes one structured (JSON) log line per notification;
- :class:`WebhookChannel` POSTs the notification as signed JSON (see :mod:`cloud.ops.webhooks`);
- :class:`SmtpChannel` sends an e-mail with :mod:`smtplib`;
- :class:`SmsLogStub` and :class:`PushLogStub` stand in for an SMS or push provider: they
  only log (no provider is configured), and say so in every line;
- :class:`ChannelRouter` tries the recipient's preferences in order and falls back to the
  log, and logs every notification with the ETA change (``data``) that caused it.

A channel never raises for a message that did not get through: it returns a
:class:`Delivery` with ``ok=False`` and the reason, so the router can try the next one.
"""

from __future__ import annotations

import json
import logging
import smtplib
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol, runtime_checkable

from cloud.ops.errors import DeliveryError
from cloud.ops.webhooks import SIGNATURE_HEADER, post_json, sign

__all__ = [
    "Channel",
    "ChannelRouter",
    "Delivery",
    "LogChannel",
    "Notification",
    "PushLogStub",
    "Recipient",
    "SmsLogStub",
    "SmtpChannel",
    "WebhookChannel",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    """Who to tell and how they prefer it (``sms``, ``email``, ``push``, ``webhook``)."""

    customer_id: str
    email: str | None = None
    phone: str | None = None
    push_token: str | None = None
    webhook_url: str | None = None
    preferences: tuple[str, ...] = ("email",)


@dataclass(frozen=True)
class Notification:
    """One message to a customer; ``data`` carries what caused it (the ETA change)."""

    recipient: Recipient
    subject: str
    text: str
    kind: str = "eta_window"
    data: Mapping[str, Any] = field(default_factory=dict)
    notification_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def as_dict(self) -> dict[str, Any]:
        return {
            "notification_id": self.notification_id,
            "customer_id": self.recipient.customer_id,
            "kind": self.kind,
            "subject": self.subject,
            "text": self.text,
            "data": dict(self.data),
        }


@dataclass(frozen=True)
class Delivery:
    """What a channel did with a notification."""

    notification_id: str
    channel: str
    ok: bool
    detail: str = ""
    at_ms: int = field(default_factory=lambda: int(time.time() * 1000))


@runtime_checkable
class Channel(Protocol):
    """Something that can deliver a notification."""

    name: str

    def send(self, notification: Notification) -> Delivery: ...


class LogChannel:
    """Writes one JSON log line per notification (the default, and the audit trail)."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or log

    def send(self, notification: Notification) -> Delivery:
        self._write(notification, {})
        return Delivery(notification.notification_id, self.name, True, "logged")

    def _write(self, notification: Notification, extra: Mapping[str, Any]) -> None:
        line = {"channel": self.name, **notification.as_dict(), **extra}
        self.logger.info("notification %s", json.dumps(line, sort_keys=True, default=str))


class SmsLogStub(LogChannel):
    """SMS stand-in: logs what would be texted; no SMS provider is configured."""

    name = "sms"

    def send(self, notification: Notification) -> Delivery:
        phone = notification.recipient.phone
        if not phone:
            return Delivery(notification.notification_id, self.name, False, "no phone number")
        self._write(notification, {"to": phone, "stub": "no SMS provider; logged only"})
        return Delivery(notification.notification_id, self.name, True, "logged (SMS stub)")


class PushLogStub(LogChannel):
    """App push stand-in: logs what would be pushed; no push provider is configured."""

    name = "push"

    def send(self, notification: Notification) -> Delivery:
        token = notification.recipient.push_token
        if not token:
            return Delivery(notification.notification_id, self.name, False, "no push token")
        self._write(notification, {"to": token[:12], "stub": "no push provider; logged only"})
        return Delivery(notification.notification_id, self.name, True, "logged (push stub)")


class WebhookChannel:
    """POSTs the notification as signed JSON to the recipient's (or a fixed) URL, once.

    For retries in the background use :class:`cloud.ops.webhooks.WebhookDispatcher`.
    """

    name = "webhook"

    def __init__(self, secret: str, *, url: str | None = None, timeout_s: float = 5.0):
        self.secret = secret
        self.url = url
        self.timeout_s = timeout_s

    def send(self, notification: Notification) -> Delivery:
        url = notification.recipient.webhook_url or self.url
        if not url:
            return Delivery(notification.notification_id, self.name, False, "no webhook URL")
        body = json.dumps(notification.as_dict(), sort_keys=True, default=str).encode()
        headers = {SIGNATURE_HEADER: sign(self.secret, body, int(time.time()))}
        try:
            status = post_json(url, body, headers, self.timeout_s)
        except DeliveryError as exc:
            return Delivery(notification.notification_id, self.name, False, exc.reason)
        return Delivery(notification.notification_id, self.name, True, f"HTTP {status}")


class SmtpChannel:
    """Sends an e-mail through an SMTP server."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        timeout_s: float = 10.0,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
    ):
        self.host, self.port, self.sender = host, port, sender
        self.timeout_s = timeout_s
        self.starttls = starttls
        self.username, self.password = username, password

    def send(self, notification: Notification) -> Delivery:
        to = notification.recipient.email
        if not to:
            return Delivery(notification.notification_id, self.name, False, "no e-mail address")
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = notification.subject
        message["Message-ID"] = f"<{notification.notification_id}@wayline>"
        message.set_content(notification.text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            return Delivery(notification.notification_id, self.name, False, f"SMTP: {exc}")
        if refused:
            return Delivery(notification.notification_id, self.name, False, f"refused: {refused}")
        return Delivery(notification.notification_id, self.name, True, f"sent to {to}")


class ChannelRouter:
    """Delivers through the recipient's preferred channels in order, then the fallback."""

    def __init__(self, channels: Iterable[Channel], fallback: Channel | None = None):
        self.channels = {c.name: c for c in channels}
        self.fallback = fallback or LogChannel()

    def send(self, notification: Notification) -> Delivery:
        """The first delivery that got through (or the fallback's); every try is logged."""
        tried: list[str] = []
        for preference in notification.recipient.preferences:
            channel = self.channels.get(preference)
            if channel is None:
                tried.append(f"{preference}: no such channel")
                continue
            delivery = channel.send(notification)
            if delivery.ok:
                self._audit(notification, delivery, tried)
                return delivery
            tried.append(f"{preference}: {delivery.detail}")
            log.warning(
                "notification %s via %s failed: %s",
                notification.notification_id,
                preference,
                delivery.detail,
            )
        delivery = self.fallback.send(notification)
        self._audit(notification, delivery, tried)
        return delivery

    def _audit(self, notification: Notification, delivery: Delivery, tried: list[str]) -> None:
        line = {
            "notification_id": notification.notification_id,
            "customer_id": notification.recipient.customer_id,
            "kind": notification.kind,
            "channel": delivery.channel,
            "ok": delivery.ok,
            "detail": delivery.detail,
            "failed_before": tried,
            "cause": dict(notification.data),
        }
        log.info("notification sent %s", json.dumps(line, sort_keys=True, default=str))
