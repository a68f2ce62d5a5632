"""A simulated vehicle bus: the van's signals as CAN frames another process can read.

Two profiles, as on real vehicles:

``fms``
    The van broadcasts FMS-standard J1939 frames, encoded with cantools from the same DBC
    the gateway decodes with (``deploy/fms.dbc``): CCVS1 (sent, as tachographs do, from
    source address 0xEE rather than the DBC's 0x00, so the gateway's matching by PGN is
    exercised), VDHR, DD, ET1, AMB, VEP1, EEC1, DC1 and DC2. Signals the van does not have
    are sent as J1939 "not available" (all ones).
``obd2``
    The van's engine ECU answers OBD-II service-01 requests on 0x7DF from 0x7E8, while the
    ignition is on, for the PIDs it has a value for; a PID it has no value for (a diesel's
    battery charge) is never answered.

The bus is any python-can interface; the simulator uses ``udp_multicast`` on an
interface-local IPv6 group (``ff11::/16``, which the kernel never sends out of the
machine), so the gateway opens it as it would open ``socketcan:can0`` and no kernel CAN
device (vcan) is needed. :func:`shared_bus_spec` picks a fresh group and port per rig.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import can

from edge.hardware import (
    DEFAULT_FMS_DBC,
    PIDS,
    REQUEST_ID,
    CanBusError,
    CanSignals,
    load_dbc,
    open_bus,
    reply_frame,
)

__all__ = ["CanSimulator", "fms_values", "shared_bus_spec"]

log = logging.getLogger(__name__)

TACHOGRAPH_SA = 0xEE
SOURCE_ADDRESS = {"CCVS1": TACHOGRAPH_SA}
"""Messages the van sends from another source address than the DBC's."""
KEYSWITCH_ON_V = 24.4
BATTERY_V = 25.2
IDLE_RPM = 650.0
RPM_PER_KMH = 25.0
AMBIENT_C = 12.0


def shared_bus_spec() -> str:
    """A fresh ``udp_multicast`` bus on an interface-local group and a free UDP port."""
    group = f"ff11::7761:{secrets.randbelow(0xFFFF) + 1:x}"
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
        probe.bind(("::", 0))
        port = probe.getsockname()[1]
    return f"udp_multicast:{group}?port={port}"


def fms_values(signals: CanSignals) -> dict[str, float]:
    """The FMS signals (DBC names, physical values) that carry ``signals``."""
    on = bool(signals.ignition)
    values: dict[str, float] = {
        "KeyswitchBatteryPotential": KEYSWITCH_ON_V if on else 0.0,
        "BatteryPotentialPowerInput1": BATTERY_V,
        "EngineSpeed": (IDLE_RPM + RPM_PER_KMH * (signals.speed_kmh or 0.0)) if on else 0.0,
        "AmbientAirTemperature": AMBIENT_C,
        "PositionOfDoors": 0 if signals.doors else 2,
    }
    if signals.speed_kmh is not None:
        values["WheelBasedVehicleSpeed"] = min(max(signals.speed_kmh, 0.0), 250.0)
    if signals.odometer_km is not None:
        values["HighResolutionTotalVehicleDistance"] = max(signals.odometer_km, 0.0)
    if signals.fuel_pct is not None:
        values["FuelLevel1"] = min(max(signals.fuel_pct, 0.0), 100.0)
    if signals.temperature_c is not None:
        values["CargoAmbientTemperature"] = signals.temperature_c
    if signals.coolant_c is not None:
        values["EngineCoolantTemperature"] = signals.coolant_c
    for n in range(1, 5):
        values[f"OpenStatusDoor{n}"] = 1 if signals.doors & (1 << (n - 1)) else 0
    return values


class CanSimulator:
    """The van's side of the bus named ``bus``, in the ``fms`` or ``obd2`` profile."""

    def __init__(
        self,
        signals: Callable[[], CanSignals],
        *,
        bus: str,
        profile: Literal["fms", "obd2"] = "fms",
        dbc: Path = DEFAULT_FMS_DBC,
        period_s: float = 0.1,
    ) -> None:
        self.signals = signals
        self.spec = bus
        self.profile = profile
        self.period_s = period_s
        self.db = load_dbc(dbc) if profile == "fms" else None
        self.bus = open_bus(bus)
        self.sent = 0
        self.answered = 0
        self._stop = threading.Event()
        target = self._broadcast if profile == "fms" else self._answer
        self._thread = threading.Thread(target=target, name="can-sim", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.bus.shutdown()

    def __enter__(self) -> CanSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def send(self, frame: can.Message) -> None:
        """Send one frame (tests use it for odd frames)."""
        try:
            self.bus.send(frame)
        except can.CanError as exc:
            raise CanBusError(f"CAN send failed: {exc}") from exc
        self.sent += 1

    def frames(self) -> list[can.Message]:
        """The FMS frames that carry the van's signals now."""
        assert self.db is not None, "frames() is the fms profile's"
        values = fms_values(self.signals())
        frames = []
        for message in self.db.messages:
            raw: dict[str, Any] = {}
            for signal in message.signals:
                if signal.name in values:
                    raw[signal.name] = round(signal.conversion.scaled_to_raw(values[signal.name]))
                else:
                    raw[signal.name] = (1 << signal.length) - 1  # not available
            data = message.encode(raw, scaling=False, strict=False, padding=True)
            arb = message.frame_id
            if message.name in SOURCE_ADDRESS:
                arb = (arb & ~0xFF) | SOURCE_ADDRESS[message.name]
            frames.append(can.Message(arbitration_id=arb, data=data, is_extended_id=True))
        return frames

    def send_all(self) -> None:
        for frame in self.frames():
            self.send(frame)

    def _broadcast(self) -> None:
        while True:
            try:
                self.send_all()
            except CanBusError as exc:
                log.warning("%s", exc)
            if self._stop.wait(self.period_s):
                return

    def _answer(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.bus.recv(timeout=0.1)
            except can.CanError as exc:
                log.warning("simulated ECU cannot receive: %s", exc)
                self._stop.wait(0.1)
                continue
            if frame is None or frame.arbitration_id != REQUEST_ID or frame.is_extended_id:
                continue
            data = bytes(frame.data)
            if len(data) < 3 or data[0] < 2 or data[1] != 0x01 or data[2] not in PIDS:
                continue
            signals = self.signals()
            if not signals.ignition:
                continue  # an ECU with the key off does not answer
            value = getattr(signals, PIDS[data[2]].field)
            if value is None:
                continue
            try:
                self.send(reply_frame(data[2], float(value)))
            except CanBusError as exc:
                log.warning("%s", exc)
                continue
            self.answered += 1
