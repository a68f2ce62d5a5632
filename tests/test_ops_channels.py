"""Notification channels: e-mail through a real SMTP server on 127.0.0.1, the log channel,
the SMS and push stubs, and the router by the customer's preference."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from cloud.ops import (
    Channel,
    ChannelRouter,
    LogChannel,
    Notification,
    PushLogStub,
    Recipient,
    SmsLogStub,
    SmtpChannel,
)


class Mailbox:
    """aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def eta_note(recipient: Recipient) -> Notification:
    return Notification(
        recipient,
        "Your parcel arrives between 14:00 and 15:00",
        "Your Wayline delivery window moved: now 14:00-15:00.",
        data={"reason": "shift", "change": {"shift_min": 25.0, "new_eta_ms": 1}},
    )


def test_an_email_goes_through_a_real_smtp_server(smtp) -> None:
    mailbox, port = smtp
    channel = SmtpChannel("127.0.0.1", port, "no-reply@wayline.example", timeout_s=5)
    assert isinstance(channel, Channel)
    note = eta_note(Recipient("c-1", email="kim@example.org"))
    delivery = channel.send(note)
    assert delivery.ok and delivery.channel == "email", delivery.detail
    (envelope,) = mailbox.envelopes
    assert envelope.mail_from == "no-reply@wayline.example"
    assert envelope.rcpt_tos == ["kim@example.org"]
    message = message_from_bytes(envelope.content)
    assert message["Subject"] == note.subject
    assert message["Message-ID"] == f"<{note.notification_id}@wayline>"
    assert "14:00-15:00" in message.get_payload(decode=True).decode()


def test_an_unreachable_smtp_server_is_a_failed_delivery_not_an_exception() -> None:
    channel = SmtpChannel("127.0.0.1", free_port(), "no-reply@wayline.example", timeout_s=2)
    delivery = channel.send(eta_note(Recipient("c-1", email="kim@example.org")))
    assert not delivery.ok and delivery.detail.startswith("SMTP:")
    assert not channel.send(eta_note(Recipient("c-2"))).ok  # no address


def test_log_channel_writes_one_structured_line(caplog) -> None:
    caplog.set_level(logging.INFO, logger="cloud.ops.channels")
    delivery = LogChannel().send(eta_note(Recipient("c-1")))
    assert delivery.ok
    (record,) = [r for r in caplog.records if r.getMessage().startswith("notification {")]
    line = json.loads(record.getMessage().removeprefix("notification "))
    assert line["customer_id"] == "c-1" and line["data"]["change"]["shift_min"] == 25.0


def test_stubs_say_they_are_stubs(caplog) -> None:
    caplog.set_level(logging.INFO, logger="cloud.ops.channels")
    recipient = Recipient("c-1", phone="+491700000000", push_token="tok-abcdefghijklmnop")
    assert SmsLogStub().send(eta_note(recipient)).detail == "logged (SMS stub)"
    assert PushLogStub().send(eta_note(recipient)).detail == "logged (push stub)"
    assert "no SMS provider" in caplog.text and "no push provider" in caplog.text
    assert not SmsLogStub().send(eta_note(Recipient("c-2"))).ok


def test_router_follows_preferences_and_falls_back_to_the_log(smtp, caplog) -> None:
    caplog.set_level(logging.INFO, logger="cloud.ops.channels")
    mailbox, port = smtp
    router = ChannelRouter(
        [SmsLogStub(), PushLogStub(), SmtpChannel("127.0.0.1", port, "no-reply@wayline.example")]
    )
    # prefers SMS but has no phone: e-mail next
    kim = Recipient("c-1", email="kim@example.org", preferences=("sms", "email"))
    assert router.send(eta_note(kim)).channel == "email"
    assert len(mailbox.envelopes) == 1
    # prefers push and has a token
    lee = Recipient("c-2", push_token="tok-1234567890abc", preferences=("push", "email"))
    assert router.send(eta_note(lee)).channel == "push"
    # nothing usable: the log
    max_ = Recipient("c-3", preferences=("webhook", "sms"))
    delivery = router.send(eta_note(max_))
    assert delivery.channel == "log" and delivery.ok
    audits = [
        json.loads(r.getMessage().removeprefix("notification sent "))
        for r in caplog.records
        if r.getMessage().startswith("notification sent ")
    ]
    assert [a["channel"] for a in audits] == ["email", "push", "log"]
    assert audits[0]["failed_before"] == ["sms: no phone number"]
    assert audits[2]["failed_before"] == ["webhook: no such channel", "sms: no phone number"]
    assert all(a["cause"]["change"]["shift_min"] == 25.0 for a in audits)
