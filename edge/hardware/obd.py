"""OBD-II over CAN (ISO 15765-4, SAE J1979 service 01): the profile for vans with no DBC.

A van's bus is its maker's secret, but every van since 2008 (EU) answers the standard
diagnostic requests. The gateway asks on the functional request id 0x7DF with a
single-frame request ``[0x02, 0x01, PID]`` and the engine ECUs answer on 0x7E8-0x7EF with
``[length, 0x41, PID, A, B, ...]``. The PIDs asked for (:data:`PIDS`)::

    PID   field          formula (A, B, C, D = data bytes)
    0x0D  speed_kmh      A km/h
    0x2F  fuel_pct       100 * A / 255 %
    0x05  coolant_c      A - 40 degC
    0x5B  charge_pct     100 * A / 255 % (hybrid / electric battery pack)
    0xA6  odometer_km    (A<<24 | B<<16 | C<<8 | D) / 10 km

An ECU answers only with the ignition on, so any answer means the ignition is on; when the
key turns off the answers stop and the signals go stale (telemetry then waits, as it does
for a fix). OBD-II says nothing about the doors: they read closed. A PID a van does not
support is simply never answered; a negative response (0x7F) is ignored. Only 11-bit ids;
a van on 29-bit OBD (0x18DB33F1) is not covered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge.hardware.canbus import IGNORED

if TYPE_CHECKING:
    import can

__all__ = [
    "PIDS",
    "REPLY_IDS",
    "REQUEST_ID",
    "ObdDecoder",
    "Pid",
    "reply_frame",
    "request_frame",
]

REQUEST_ID = 0x7DF
"""Functional (broadcast) request id: every emissions ECU listens."""
REPLY_IDS = range(0x7E8, 0x7F0)
"""Physical response ids of ECUs 1-8 (0x7E8 is the engine)."""
SERVICE = 0x01
"""Show current data."""
POSITIVE = SERVICE + 0x40
NEGATIVE = 0x7F
PAD = 0x55
"""Filler for the unused bytes of a frame (ISO 15765-2 leaves the value open)."""


@dataclass(frozen=True, slots=True)
class Pid:
    """One service-01 PID: its size, the field it feeds, and its formula both ways."""

    pid: int
    field: str
    size: int
    decode: Callable[[bytes], float]
    encode: Callable[[float], bytes]
    """What an ECU sends for a value (the simulator's ECU uses it)."""


def _byte(value: float) -> int:
    return max(0, min(255, round(value)))


PIDS: dict[int, Pid] = {
    p.pid: p
    for p in (
        Pid(0x0D, "speed_kmh", 1, lambda b: float(b[0]), lambda v: bytes([_byte(v)])),
        Pid(0x2F, "fuel_pct", 1, lambda b: b[0] * 100 / 255, lambda v: bytes([_byte(v * 2.55)])),
        Pid(0x05, "coolant_c", 1, lambda b: b[0] - 40.0, lambda v: bytes([_byte(v + 40)])),
        Pid(0x5B, "charge_pct", 1, lambda b: b[0] * 100 / 255, lambda v: bytes([_byte(v * 2.55)])),
        Pid(
            0xA6,
            "odometer_km",
            4,
            lambda b: int.from_bytes(b[:4], "big") / 10,
            lambda v: max(0, min(2**32 - 1, round(v * 10))).to_bytes(4, "big"),
        ),
    )
}


def request_frame(pid: int) -> can.Message:
    """The functional request for one PID."""
    import can

    data = bytes([0x02, SERVICE, pid]) + bytes([PAD] * 5)
    return can.Message(arbitration_id=REQUEST_ID, data=data, is_extended_id=False)


def reply_frame(pid: int, value: float, ecu: int = 0) -> can.Message:
    """An ECU's positive answer carrying ``value`` for ``pid`` (what a van sends)."""
    import can

    payload = PIDS[pid].encode(value)
    body = bytes([POSITIVE, pid]) + payload
    data = bytes([len(body)]) + body
    data += bytes([PAD] * (8 - len(data)))
    return can.Message(arbitration_id=REPLY_IDS[ecu], data=data, is_extended_id=False)


class ObdDecoder:
    """Asks for :data:`PIDS` every poll and decodes the answers."""

    name = "OBD-II"

    def __init__(self, pids: tuple[int, ...] = tuple(PIDS)) -> None:
        unknown = [p for p in pids if p not in PIDS]
        if unknown:
            raise ValueError(f"no formula for PID(s) {[hex(p) for p in unknown]}")
        self.pids = pids
        self.answered: set[int] = set()
        """PIDs some ECU has answered at least once."""

    def requests(self) -> list[can.Message]:
        return [request_frame(pid) for pid in self.pids]

    def decode(self, frame: can.Message) -> dict[str, Any] | None:
        arb = frame.arbitration_id
        if frame.is_extended_id:
            return None
        if arb == REQUEST_ID:
            return IGNORED  # a request (ours, looped back, or another tester's)
        if arb not in REPLY_IDS:
            return None
        data = bytes(frame.data)
        if len(data) < 3 or not 1 <= data[0] <= 7 or data[0] > len(data) - 1:
            raise ValueError(f"OBD-II answer 0x{arb:X} is not a single frame: {data.hex()}")
        body = data[1 : 1 + data[0]]
        if body[0] == NEGATIVE:
            return IGNORED
        if body[0] != POSITIVE or len(body) < 2:
            return IGNORED  # an answer to another service
        pid = PIDS.get(body[1])
        if pid is None:
            return IGNORED
        if len(body) < 2 + pid.size:
            raise ValueError(f"PID 0x{pid.pid:02X} answered with {len(body) - 2} data bytes")
        self.answered.add(pid.pid)
        return {pid.field: pid.decode(body[2 : 2 + pid.size]), "ignition": True}
