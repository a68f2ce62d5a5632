"""The vehicle bus: CAN frames in, vehicle signals out, through python-can.

On a real gateway the bus is SocketCAN (``interface="socketcan", channel="can0"``) behind
the vehicle's CAN gateway or an OBD/FMS adapter; in simulation it is python-can's
``virtual`` bus, shared by every bus object on the same channel in one process.

The frame map (11-bit standard ids, big-endian, the only place these numbers live)::

    id     name         DLC  layout                                    scaling
    0x0F0  BODY         2    byte0 bit0 ignition on                    -
                             byte1 doors bitmask: bit0 driver,         -
                             bit1 passenger, bit2 side, bit3 rear
    0x100  SPEED        2    uint16 vehicle speed                      0.01 km/h
    0x120  ODOMETER     4    uint32 total distance                     0.01 km
    0x130  ENERGY       2    byte0 fuel level, byte1 state of charge   0.5 %, 0xFF = n/a
    0x140  CARGO_TEMP   2    int16 cargo-area temperature              0.1 degC, 0x7FFF = n/a

A frame with a known id and the wrong length, or a value out of range, is counted as bad
and skipped; an unknown id is counted and ignored (a real bus carries many).
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import can

from edge.hardware.errors import CanBusError

__all__ = [
    "BODY_ID",
    "CARGO_TEMP_ID",
    "ENERGY_ID",
    "FRAME_IDS",
    "ODOMETER_ID",
    "SPEED_ID",
    "CanReader",
    "CanSignals",
    "decode_frame",
    "encode_frames",
    "open_bus",
]

log = logging.getLogger(__name__)

BODY_ID = 0x0F0
SPEED_ID = 0x100
ODOMETER_ID = 0x120
ENERGY_ID = 0x130
CARGO_TEMP_ID = 0x140
FRAME_IDS = {
    BODY_ID: "body",
    SPEED_ID: "speed",
    ODOMETER_ID: "odometer",
    ENERGY_ID: "energy",
    CARGO_TEMP_ID: "cargo_temp",
}
_DLC = {BODY_ID: 2, SPEED_ID: 2, ODOMETER_ID: 4, ENERGY_ID: 2, CARGO_TEMP_ID: 2}
_NA_PCT = 0xFF
_NA_TEMP = 0x7FFF
RECV_POLL_S = 0.1
"""How often the reader's blocked receive checks whether it is stopping."""


@dataclass(frozen=True, slots=True)
class CanSignals:
    """The vehicle's signals as last seen on the bus; ``seen`` names the frames received."""

    speed_kmh: float | None = None
    odometer_km: float | None = None
    fuel_pct: float | None = None
    charge_pct: float | None = None
    ignition: bool | None = None
    doors: int = 0
    """Bitmask: 1 driver, 2 passenger, 4 side, 8 rear."""
    temperature_c: float | None = None
    seen: frozenset[str] = field(default_factory=frozenset)
    updated_at: float = 0.0
    """``time.monotonic()`` of the last frame decoded."""

    @property
    def door_open(self) -> bool:
        return self.doors != 0


def encode_frames(signals: CanSignals) -> list[can.Message]:
    """The frames that carry ``signals`` (what a vehicle, or the simulator, sends)."""

    def msg(arb: int, data: bytes) -> can.Message:
        return can.Message(arbitration_id=arb, data=data, is_extended_id=False)

    def pct(v: float | None) -> int:
        return _NA_PCT if v is None else max(0, min(200, round(v * 2)))

    frames = [
        msg(BODY_ID, bytes([1 if signals.ignition else 0, signals.doors & 0x0F])),
        msg(SPEED_ID, struct.pack(">H", max(0, min(65535, round((signals.speed_kmh or 0) * 100))))),
        msg(ENERGY_ID, bytes([pct(signals.fuel_pct), pct(signals.charge_pct)])),
    ]
    if signals.odometer_km is not None:
        odo = max(0, min(2**32 - 1, round(signals.odometer_km * 100)))
        frames.append(msg(ODOMETER_ID, struct.pack(">I", odo)))
    temp = _NA_TEMP if signals.temperature_c is None else round(signals.temperature_c * 10)
    frames.append(msg(CARGO_TEMP_ID, struct.pack(">h", max(-32768, min(32767, temp)))))
    return frames


def decode_frame(frame: can.Message, signals: CanSignals) -> CanSignals | None:
    """``signals`` updated by ``frame``; None for an unknown id; ValueError for a bad frame."""
    arb = frame.arbitration_id
    name = FRAME_IDS.get(arb)
    if name is None or frame.is_extended_id or frame.is_remote_frame or frame.is_error_frame:
        return None
    data = bytes(frame.data)
    if len(data) != _DLC[arb]:
        raise ValueError(f"frame 0x{arb:03X} ({name}) has {len(data)} bytes, not {_DLC[arb]}")
    changes: dict[str, Any] = {}
    if arb == BODY_ID:
        if data[0] > 1 or data[1] > 0x0F:
            raise ValueError(f"body frame with bits out of the map: {data.hex()}")
        changes = {"ignition": bool(data[0] & 1), "doors": data[1]}
    elif arb == SPEED_ID:
        changes = {"speed_kmh": struct.unpack(">H", data)[0] / 100}
    elif arb == ODOMETER_ID:
        changes = {"odometer_km": struct.unpack(">I", data)[0] / 100}
    elif arb == ENERGY_ID:
        fuel, charge = data[0], data[1]
        if (fuel != _NA_PCT and fuel > 200) or (charge != _NA_PCT and charge > 200):
            raise ValueError(f"energy frame out of range: {data.hex()}")
        changes = {
            "fuel_pct": None if fuel == _NA_PCT else fuel / 2,
            "charge_pct": None if charge == _NA_PCT else charge / 2,
        }
    elif arb == CARGO_TEMP_ID:
        raw = struct.unpack(">h", data)[0]
        if raw != _NA_TEMP and not -600 <= raw <= 900:
            raise ValueError(f"cargo temperature out of range: {raw / 10} degC")
        changes = {"temperature_c": None if raw == _NA_TEMP else raw / 10}
    return replace(signals, **changes, seen=signals.seen | {name}, updated_at=time.monotonic())


def open_bus(interface: str = "virtual", channel: str = "vcan0", **kwargs: Any) -> can.BusABC:
    """A python-can bus; ``virtual`` in simulation, ``socketcan`` on a gateway."""
    try:
        return can.Bus(interface=interface, channel=channel, **kwargs)
    except (can.CanError, OSError, ValueError, ImportError) as exc:
        raise CanBusError(f"cannot open CAN bus {interface}:{channel}: {exc}") from exc


class CanReader:
    """Receives frames in a thread and keeps the latest decoded signals."""

    def __init__(self, interface: str = "virtual", channel: str = "vcan0") -> None:
        self.bus = open_bus(interface, channel)
        self._signals = CanSignals()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.stats = {"frames": 0, "decoded": 0, "unknown": 0, "bad": 0}
        self._thread = threading.Thread(target=self._run, name="canbus", daemon=True)

    def signals(self) -> CanSignals:
        with self._lock:
            return self._signals

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.bus.shutdown()

    def __enter__(self) -> CanReader:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def feed(self, frame: can.Message) -> None:
        """Decode one frame (the receive loop calls this; tests may too)."""
        self.stats["frames"] += 1
        with self._lock:
            try:
                updated = decode_frame(frame, self._signals)
            except ValueError as exc:
                self.stats["bad"] += 1
                log.debug("bad CAN frame: %s", exc)
                return
            if updated is None:
                self.stats["unknown"] += 1
                return
            self._signals = updated
            self.stats["decoded"] += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.bus.recv(timeout=RECV_POLL_S)
            except can.CanError as exc:
                log.warning("CAN receive failed: %s", exc)
                self._stop.wait(RECV_POLL_S)
                continue
            if frame is not None:
                self.feed(frame)
