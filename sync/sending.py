"""The sending half of a sync node: publishing the outbox, acks, resend requests.

A mixin of :class:`sync.node.SyncNode`; it reads and moves the node's per-peer sender state
(``_acked``, ``_sent``, ``_top``, ``_deadline``, ``_backoff``) and keeps ``_published``, the
highest entry ever published to each peer: an ack or a resend request beyond it is refused
(:mod:`sync.bounds`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from protocol import (
    Ack,
    AckEnvelope,
    ResendRequest,
    ResendRequestEnvelope,
    down_topic,
    encode,
    make_envelope,
    up_topic,
)

if TYPE_CHECKING:
    from collections import Counter

    from sync.mqtt import MqttLink
    from sync.store import Store
    from sync.stream import SyncSettings

__all__ = ["Sending"]


class Sending:
    """Publishing, go-back-N and control messages; mixed into SyncNode."""

    node_id: str
    role: str
    settings: SyncSettings
    store: Store
    stats: Counter[str]
    link: MqttLink | None
    _lc: int
    _acked: dict[str, int]
    _sent: dict[str, int]
    _published: dict[str, int]
    _top: dict[str, int]
    _deadline: dict[str, float]
    _backoff: dict[str, float]
    _online: dict[str, bool]
    _last_resend: dict[str, tuple[int, float]]

    def tick(self) -> int:
        """Advance and return the Lamport clock (for a message about to be sent)."""
        self._lc += 1
        return self._lc

    def _topic_to(self, peer: str) -> str:
        return up_topic(self.node_id) if self.role == "device" else down_topic(peer)

    def _after_batch(
        self,
        acked_in: dict[str, int],
        resend_in: dict[str, int],
        went_online: set[str],
        acks_out: dict[str, int],
        resends: dict[str, int],
    ) -> None:
        now = time.monotonic()
        s = self.settings
        for peer, upto in acked_in.items():
            if upto > self._acked.get(peer, 0):
                self.stats["acked"] += upto - self._acked.get(peer, 0)
                self._acked[peer] = upto
                self._sent[peer] = max(self._sent.get(peer, 0), upto)
                self._backoff[peer] = s.ack_timeout_s
                self._deadline[peer] = now + s.ack_timeout_s
        for peer in went_online:
            self._sent[peer] = self._acked.get(peer, 0)
        for peer, from_seq in resend_in.items():
            self.stats["resend_requests_in"] += 1
            acked = self._acked.get(peer, 0)
            self._sent[peer] = max(acked, min(self._sent.get(peer, 0), from_seq - 1))
        for peer, upto in acks_out.items():
            self._send_control(peer, Ack(upto=upto))
        for peer, from_seq in resends.items():
            last = self._last_resend.get(peer)
            if last and last[0] == from_seq and now - last[1] < s.resend_interval_s:
                continue
            self._last_resend[peer] = (from_seq, now)
            self.stats["resend_requests_out"] += 1
            self._send_control(peer, ResendRequest(from_seq=from_seq))

    def _send_control(self, peer: str, body: Ack | ResendRequest) -> None:
        if self.link is None:
            return
        env: AckEnvelope | ResendRequestEnvelope = make_envelope(  # type: ignore[assignment]
            src=self.node_id, seq=0, lc=self.tick(), body=body
        )
        self.link.publish(self._topic_to(peer), encode(env))

    def _pump(self) -> None:
        if self.link is None or not self.link.connected:
            return
        now = time.monotonic()
        s = self.settings
        for peer, top in list(self._top.items()):
            acked = self._acked.get(peer, 0)
            if top <= acked or not self._online.get(peer, True):
                continue
            sent = self._sent.get(peer, acked)
            if sent > acked and now >= self._deadline.get(peer, 0.0):
                # No ack has moved for a whole timeout: what is in flight may be gone.
                self.stats["retransmits"] += 1
                backoff = self._backoff.get(peer, s.ack_timeout_s)
                self._backoff[peer] = min(backoff * 2, s.ack_timeout_max_s)
                self._deadline[peer] = now + self._backoff[peer]
                sent = acked
            elif sent == acked:
                # Nothing in flight: the clock starts with what is sent now.
                self._deadline[peer] = now + self._backoff.get(peer, s.ack_timeout_s)
            hi = min(top, acked + s.window)
            if sent >= hi:
                continue
            rows = self.store.read(
                "SELECT seq, payload FROM sync_outbox WHERE peer = ? AND seq > ? AND seq <= ? "
                "ORDER BY seq",
                (peer, sent, hi),
            )
            topic = self._topic_to(peer)
            for seq, payload in rows:
                if not self.link.publish(topic, payload):
                    break
                sent = int(seq)
                self.stats["published"] += 1
            self._sent[peer] = sent
            if sent > self._published.get(peer, 0):
                self._published[peer] = sent
