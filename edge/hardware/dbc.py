"""CAN frames decoded with a DBC file (cantools): the FMS profile for trucks.

The shipped ``fms.dbc`` (beside this module, so that every install has it; ``deploy/fms.dbc``
points to it) describes the FMS-standard J1939 broadcasts a truck's FMS
gateway puts on the bus. Frames are matched by their J1939 parameter group number (PGN),
not by their whole 29-bit id: priority and source address differ from one vehicle to the
next (CCVS may come from the engine or from the tachograph), the PGN does not. A frame
with a standard 11-bit id is matched by its id, so a DBC for a non-J1939 bus works too.

Which signal feeds which telemetry field (:data:`FMS_FIELDS`)::

    field          DBC signal (message, PGN)                          meaning
    speed_kmh      WheelBasedVehicleSpeed (CCVS1, 0xFEF1), SPN 84     km/h
    odometer_km    HighResolutionTotalVehicleDistance (VDHR, 0xFEC1)  km, SPN 917
    fuel_pct       FuelLevel1 (DD, 0xFEFC), SPN 96                    %
    temperature_c  CargoAmbientTemperature (DD, 0xFEFC), SPN 169      degC
    coolant_c      EngineCoolantTemperature (ET1, 0xFEEE), SPN 110    degC
    ignition       KeyswitchBatteryPotential (VEP1, 0xFEF7), SPN 158  on at >= 6 V;
                   else EngineSpeed (EEC1, 0xF004), SPN 190           on when turning
    doors          OpenStatusDoor1..4 (DC2, 0xFDA5)                   bit n-1 of the mask

A value outside the signal's range in the DBC is J1939's "error" or "not available"
(0xFE.., 0xFF..): the field becomes unknown (None) rather than a wrong number. A DBC that
names other signals is fine; the ones above are looked up by name in whatever DBC the
operator gives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.hardware.canbus import IGNORED
from edge.hardware.errors import DbcError

if TYPE_CHECKING:
    import can
    import cantools.database

__all__ = ["DEFAULT_FMS_DBC", "FMS_FIELDS", "DbcDecoder", "FieldSource", "load_dbc", "pgn_of"]

log = logging.getLogger(__name__)

DEFAULT_FMS_DBC = Path(__file__).resolve().parent / "fms.dbc"
"""The FMS DBC shipped in the repository's ``deploy/``."""
IGNITION_MIN_V = 6.0
"""Key-switch potential from which the ignition counts as on (12 V and 24 V systems)."""
DOORS = 4
"""Doors mapped to the telemetry's mask: 1 driver, 2 passenger, 3 side, 4 rear."""
_OPEN = 1
"""DC2 open status: 0 closed, 1 open, 2 error, 3 not available."""


@dataclass(frozen=True, slots=True)
class FieldSource:
    """One DBC signal feeding one field; ``rank`` orders alternatives (0 is preferred)."""

    field: str
    signal: str
    convert: Callable[[float], Any] = float
    rank: int = 0


def _door(bit: int) -> Callable[[float], Any]:
    return lambda status: (bit if int(status) == _OPEN else 0) if int(status) <= 1 else None


FMS_FIELDS: tuple[FieldSource, ...] = (
    FieldSource("speed_kmh", "WheelBasedVehicleSpeed"),
    FieldSource("odometer_km", "HighResolutionTotalVehicleDistance"),
    FieldSource("fuel_pct", "FuelLevel1"),
    FieldSource("temperature_c", "CargoAmbientTemperature"),
    FieldSource("coolant_c", "EngineCoolantTemperature"),
    FieldSource("ignition", "KeyswitchBatteryPotential", lambda v: v >= IGNITION_MIN_V),
    FieldSource("ignition", "EngineSpeed", lambda rpm: rpm > 0, rank=1),
    *(FieldSource("doors", f"OpenStatusDoor{n}", _door(1 << (n - 1))) for n in range(1, 5)),
)
_REQUIRED = ("odometer_km", "ignition")
_OPTIONAL = frozenset({"speed_kmh", "fuel_pct", "temperature_c", "coolant_c", "charge_pct"})


def load_dbc(path: Path) -> cantools.database.can.Database:
    """The DBC at ``path``; :class:`DbcError` naming the file when it cannot be used."""
    import cantools

    try:
        db = cantools.database.load_file(str(path), database_format="dbc", strict=True)
    except OSError as exc:
        raise DbcError(f"cannot read DBC file {path} ({exc.strerror or exc})") from None
    except Exception as exc:  # cantools raises many kinds (ParseError, ValueError, ...)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DbcError(f"DBC file {path} does not parse: {reason[:200]}") from None
    if not isinstance(db, cantools.database.can.Database) or not db.messages:
        raise DbcError(f"DBC file {path} describes no CAN messages")
    return db


def pgn_of(frame_id: int) -> int:
    """The J1939 parameter group number of a 29-bit id: without priority and source
    address, and without the destination address of a PDU1 (peer-to-peer) group."""
    pf = (frame_id >> 16) & 0xFF
    ps = (frame_id >> 8) & 0xFF
    return ((frame_id >> 24) & 0x3) << 16 | pf << 8 | (ps if pf >= 0xF0 else 0)


class DbcDecoder:
    """Decodes frames with a DBC and maps its signals onto the vehicle's signals."""

    def __init__(
        self,
        db: cantools.database.can.Database,
        *,
        name: str = "the DBC",
        fields: tuple[FieldSource, ...] = FMS_FIELDS,
    ) -> None:
        self.db = db
        self.name = name
        self._by_id: dict[tuple[int, bool], Any] = {}
        self._by_pgn: dict[int, Any] = {}
        for message in db.messages:
            self._by_id[(message.frame_id, message.is_extended_frame)] = message
            if message.is_extended_frame:
                self._by_pgn.setdefault(pgn_of(message.frame_id), message)
        names = {s.name for m in db.messages for s in m.signals}
        self.fields = tuple(f for f in fields if f.signal in names)
        self._by_signal: dict[str, list[FieldSource]] = {}
        for source in self.fields:
            self._by_signal.setdefault(source.signal, []).append(source)
        self._best_rank: dict[str, int] = {}
        self._doors = 0
        self.missing = sorted({f for f in _REQUIRED if f not in {s.field for s in self.fields}})
        """Fields telemetry needs that this DBC cannot give (telemetry waits for them)."""

    def requests(self) -> list[can.Message]:
        return []

    def decode(self, frame: can.Message) -> dict[str, Any] | None:
        message = self._by_id.get((frame.arbitration_id, frame.is_extended_id))
        if message is None and frame.is_extended_id:
            message = self._by_pgn.get(pgn_of(frame.arbitration_id))
        if message is None:
            return None
        data = bytes(frame.data)
        if len(data) != message.length:
            raise ValueError(f"{message.name} has {len(data)} bytes, not {message.length}")
        try:
            values = message.decode(data, decode_choices=False, scaling=True)
        except Exception as exc:  # cantools' DecodeError and friends
            raise ValueError(f"{message.name} does not decode: {exc}") from None
        updates: dict[str, Any] = {}
        for signal in message.signals:
            sources = self._by_signal.get(signal.name)
            if not sources or signal.name not in values:
                continue
            value = float(values[signal.name])
            low, high = signal.minimum, signal.maximum
            available = (low is None or value >= low) and (high is None or value <= high)
            for source in sources:
                self._apply(source, value if available else None, updates)
        return updates or IGNORED

    def _apply(self, source: FieldSource, value: float | None, updates: dict[str, Any]) -> None:
        if source.field == "doors":
            bit = source.convert(1.0) if value is not None else 0
            converted = source.convert(value) if value is not None else None
            if converted is None:
                return
            self._doors = (self._doors & ~bit) | converted
            updates["doors"] = self._doors
            return
        best = self._best_rank.get(source.field, source.rank)
        if source.rank > best:
            return  # a preferred signal for this field is on the bus
        if value is None:
            if source.field in _OPTIONAL:
                updates[source.field] = None
            return
        self._best_rank[source.field] = source.rank
        updates[source.field] = source.convert(value)
