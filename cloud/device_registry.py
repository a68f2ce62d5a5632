"""The coordinator's device registry: who may sync, as what, checked on every message.

A device is who the broker authenticated, and the registry says what it is (DESIGN rule 8):
a vehicle (with its fleet) or a depot sorter. The store reads it
(:meth:`cloud.store.CloudStore.device_roles`) from, in this order, the rows ``wayline admin
add-device`` writes, the vehicles and depots of the network model (so that declaring a van
in a fleet registers it), and, only under the ``open`` policy, what a device announced the
first time it was seen. Role is never taken from a message once the registry knows better.

:meth:`DeviceRegistry.admit` runs on the hub's sync worker before a message reaches the
stream (:class:`sync.SyncNode`'s admission hook). It refuses, with a reason the node counts
as ``rejected_<reason>``:

- ``unknown_device``: under ``registered``, an id neither the registry nor the network
  knows. Nothing about it is stored (no ``devices`` row, no event, no position, no stream
  cursor) and nothing is acked, so a device declared a little later loses nothing: its
  outbox is sent again and then taken, and its last state message, kept in memory, is
  applied once the registry knows it.
- ``wrong_role``: a state message whose role is not the registry's (a van calling itself a
  depot to be sent every route plan).
- ``hub_id``: a stream message on the coordinator's own id.

A registered device's stream message of a kind its role never sends (a scan from a van) is
refused in :meth:`DeviceRegistry.check_kind` instead, by the handler: it is recorded in
``sync_rejected`` and acked, so the device's stream moves on.

Each refusal is logged with its reason, once per device and reason a minute (with how many
came since), so a device retrying all day does not flood the log.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from cloud.store import CloudStore
from protocol import DeviceStateEnvelope, Envelope
from sync import Rejected, Tx

__all__ = [
    "DEVICE_POLICIES",
    "Device",
    "DevicePolicy",
    "DeviceRegistry",
    "kinds_of",
]

log = logging.getLogger(__name__)

DevicePolicy = Literal["registered", "open"]
DEVICE_POLICIES: tuple[DevicePolicy, ...] = get_args(DevicePolicy)

REFRESH_S = 10.0
"""How long what the registry said of a known device is trusted before it is read again
(a van moved to another fleet, a device added to the registry over a network entry)."""
RECHECK_S = 1.0
"""How often devices held back as unknown are looked up again (by a thread of the registry's
own, so a sorter that sends nothing else is served as soon as it is declared)."""
LOG_EVERY_S = 60.0
"""One log line per device and refusal reason this often."""
HELD_MAX = 1000
"""State messages of unknown devices kept in memory at most (the oldest goes first)."""

_VEHICLE_KINDS = frozenset({"telemetry", "stop_event", "route_sequence", "exception"})
_DEPOT_KINDS = frozenset({"parcel_scan", "exception"})


def kinds_of(role: str) -> frozenset[str]:
    """The stream message kinds a device of ``role`` sends to the coordinator."""
    return _DEPOT_KINDS if role == "depot" else _VEHICLE_KINDS


@dataclass(frozen=True, slots=True)
class Device:
    """What the registry says of one device."""

    device_id: str
    role: Literal["vehicle", "depot"]
    fleet_id: str | None
    source: Literal["registry", "network", "announced"]


class DeviceRegistry:
    """Looks devices up (cached, read again every :data:`REFRESH_S`) and admits messages."""

    def __init__(
        self,
        db: CloudStore,
        *,
        policy: DevicePolicy,
        hub_id: str,
        on_state: Callable[[Tx, str, DeviceStateEnvelope], None],
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if policy not in DEVICE_POLICIES:
            raise ValueError(f"device_policy must be one of {', '.join(DEVICE_POLICIES)}")
        self.db = db
        self.policy = policy
        self.hub_id = hub_id
        self.refresh_s = refresh_s
        self.clock = clock
        self._on_state = on_state
        self._known: dict[str, Device] = {}
        self._loaded_at = float("-inf")
        self._held: dict[str, DeviceStateEnvelope] = {}
        self._held_lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._logged: dict[tuple[str, str], tuple[float, int]] = {}
        db.set_device_policy(policy)
        if policy == "open":
            log.warning(
                "device_policy is open: a device neither registered nor in the network is "
                "taken as what it first announces (for development; production uses registered)"
            )

    def start(self, transaction: Callable[[], contextlib.AbstractContextManager[Tx]]) -> None:
        """Look held devices up every :data:`RECHECK_S` in a ``transaction()`` of the node."""
        if self.policy == "open":
            return  # nothing is ever held
        self._stopping.clear()
        self._watcher = threading.Thread(
            target=self._watch, args=(transaction,), name="cloud-device-registry", daemon=True
        )
        self._watcher.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
            self._watcher = None

    def _watch(self, transaction: Callable[[], contextlib.AbstractContextManager[Tx]]) -> None:
        while not self._stopping.wait(RECHECK_S):
            with self._held_lock:
                peers = list(self._held)
            if not peers:
                continue
            try:
                with transaction() as tx:
                    self._release_held(tx, peers)
            except Exception:
                log.exception("applying the state of newly registered devices failed")

    # -- lookups ---------------------------------------------------------------------------

    def lookup(self, device_id: str, conn: sqlite3.Connection | None = None) -> Device | None:
        """What the registry says of ``device_id``, or None when it does not know it."""
        now = self.clock()
        if now - self._loaded_at >= self.refresh_s:
            self._known = {d: _device(d, row) for d, row in self.db.device_roles(conn).items()}
            self._loaded_at = now
        device = self._known.get(device_id)
        if device is None:  # declared since the last read: look in the store itself
            row = self.db.device_roles(conn, device_id).get(device_id)
            if row is not None:
                device = self._known[device_id] = _device(device_id, row)
        return device

    def forget(self) -> None:
        """Read the registry again at the next lookup (after declaring devices in-process)."""
        self._loaded_at = float("-inf")

    # -- the sync worker's admission hook --------------------------------------------------

    def admit(self, tx: Tx, peer: str, env: Envelope) -> str | None:
        """None to let ``env`` from ``peer`` through, or the reason it is refused."""
        if peer in self._held:
            self._release_held(tx, [peer])
        if peer == self.hub_id:
            if env.kind == "state":
                return None  # the coordinator's own presence, which the node ignores
            return self._refuse(peer, "hub_id", f"{env.kind} sent as the coordinator itself")
        device = self.lookup(peer, tx.conn)
        if device is None:
            if self.policy == "open":
                return None  # first contact: the device is what it announces
            if isinstance(env, DeviceStateEnvelope):
                self._hold(peer, env)
            return self._refuse(peer, "unknown_device", f"{env.kind} from an unregistered id")
        if isinstance(env, DeviceStateEnvelope) and env.body.role != device.role:
            return self._refuse(
                peer,
                "wrong_role",
                f"state says {env.body.role!r}, the registry ({device.source}) says "
                f"{device.role!r}",
            )
        return None

    def check_kind(self, tx: Tx, peer: str, env: Envelope) -> None:
        """Raise :class:`Rejected` for a stream message its sender's role never sends."""
        device = self.lookup(peer, tx.conn)
        if device is not None and env.kind not in kinds_of(device.role):
            raise Rejected(f"wrong_role: a {device.role} does not send {env.kind}")

    # -- devices that came before their registration ---------------------------------------

    def _hold(self, peer: str, env: DeviceStateEnvelope) -> None:
        """Keep an unknown device's latest state (in memory only) for when it is declared."""
        with self._held_lock:
            self._held.pop(peer, None)
            if len(self._held) >= HELD_MAX:
                self._held.pop(next(iter(self._held)))
            self._held[peer] = env

    def _release_held(self, tx: Tx, peers: list[str]) -> None:
        """Apply the kept state of each of ``peers`` the registry now knows (in ``tx``)."""
        for peer in peers:
            env = self._held.get(peer)
            device = self.db.device_roles(tx.conn, peer).get(peer) if env else None
            if env is None or device is None:
                continue
            if env.body.role != device[0]:
                self._drop_held(peer, env)
                self._refuse(peer, "wrong_role", f"state says {env.body.role!r}")
                continue
            log.info("%s is now registered as a %s: its state is applied", peer, device[0])
            self.forget()
            self._on_state(tx, peer, env)
            tx.on_commit(lambda peer=peer, env=env: self._drop_held(peer, env))  # type: ignore[misc]

    def _drop_held(self, peer: str, env: DeviceStateEnvelope) -> None:
        with self._held_lock:
            if self._held.get(peer) is env:
                del self._held[peer]

    # -- logging ---------------------------------------------------------------------------

    def _refuse(self, peer: str, reason: str, detail: str) -> str:
        """Log a refusal (rate-limited per device and reason) and return its reason."""
        key = (peer, reason)
        now = self.clock()
        last, since = self._logged.get(key, (float("-inf"), 0))
        if now - last < LOG_EVERY_S:
            self._logged[key] = (last, since + 1)
            return reason
        if len(self._logged) >= 10 * HELD_MAX:
            self._logged.clear()
        self._logged[key] = (now, 0)
        more = f" ({since} more since the last line)" if since else ""
        log.warning("refused a message from %s: %s: %s%s", peer, reason, detail, more)
        return reason


def _device(device_id: str, row: tuple[str, str | None, str]) -> Device:
    role, fleet, source = row
    return Device(device_id, role, fleet, source)  # type: ignore[arg-type]
