"""The vehicle bus: CAN frames in through python-can, vehicle signals out.

The operator names the bus as ``INTERFACE:CHANNEL[?OPTION=VALUE&...]`` — ``socketcan:can0``
on a gateway, ``udp_multicast:ff11::7761:796c?port=43113`` where processes share a bus
without a kernel CAN device (the simulator). Options become python-can keyword arguments
(``bitrate=250000``, ``port=...``). :func:`parse_can_spec` checks the string.

What the frames mean is a :class:`FrameDecoder`'s business: the FMS profile decodes J1939
broadcasts with a DBC (:mod:`edge.hardware.dbc`), the OBD-II profile asks for PIDs and
reads the answers (:mod:`edge.hardware.obd`). :class:`CanReader` owns the bus: it opens it
(and reopens it, with a backoff, when the interface is down or goes away), sends the
decoder's requests every ``poll_s``, and folds each decoded frame into the latest
:class:`CanSignals`. A frame the decoder does not know is counted as unknown (a real bus
carries many), a malformed one as bad; the first of each is logged once, naming the bus.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from edge.hardware.errors import CanBusError
from edge.hardware.link import InputLink

if TYPE_CHECKING:
    import can

__all__ = [
    "IGNORED",
    "CanReader",
    "CanSignals",
    "CanSpec",
    "FrameDecoder",
    "open_bus",
    "parse_can_spec",
]

log = logging.getLogger(__name__)

RECV_POLL_S = 0.1
"""How often the reader's blocked receive checks whether it is stopping or must poll."""
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30.0
IGNORED: dict[str, Any] = {}
"""What a decoder returns for a frame it knows but that carries nothing for us."""
_INTERFACE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_OPTION = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True, slots=True)
class CanSignals:
    """The vehicle's signals as last decoded; ``seen`` names the fields received so far."""

    speed_kmh: float | None = None
    odometer_km: float | None = None
    fuel_pct: float | None = None
    charge_pct: float | None = None
    ignition: bool | None = None
    doors: int = 0
    """Bitmask of open doors: 1 driver, 2 passenger, 4 side, 8 rear."""
    temperature_c: float | None = None
    """Cargo-area temperature."""
    coolant_c: float | None = None
    """Engine coolant temperature (kept for the gateway's own view; not on the wire)."""
    seen: frozenset[str] = field(default_factory=frozenset)
    updated_at: float = 0.0
    """``time.monotonic()`` of the last frame that changed a signal."""

    @property
    def door_open(self) -> bool:
        return self.doors != 0


class FrameDecoder(Protocol):
    """What the frames of one profile mean."""

    name: str
    """For log lines: ``fms.dbc``, ``OBD-II``."""

    def decode(self, frame: can.Message) -> dict[str, Any] | None:
        """Signal updates carried by ``frame`` (:data:`IGNORED` if none); None when the
        frame is not one this decoder knows; ValueError when it is known but malformed."""
        ...

    def requests(self) -> list[can.Message]:
        """Frames to send every poll (OBD-II requests); empty for a broadcast profile."""
        ...


@dataclass(frozen=True, slots=True)
class CanSpec:
    """A python-can bus as the operator named it."""

    interface: str
    channel: str
    options: tuple[tuple[str, int | float | bool | str], ...] = ()

    @property
    def label(self) -> str:
        extra = "&".join(f"{k}={v}" for k, v in self.options)
        return f"{self.interface}:{self.channel}" + (f"?{extra}" if extra else "")


def parse_can_spec(spec: str | CanSpec) -> CanSpec:
    """``INTERFACE:CHANNEL[?OPTION=VALUE&...]`` checked; :class:`CanBusError` when bad."""
    if isinstance(spec, CanSpec):
        return spec
    text = spec.strip()
    head, _, query = text.partition("?")
    interface, sep, channel = head.partition(":")
    if not sep or not _INTERFACE.fullmatch(interface) or not channel:
        raise CanBusError(f"CAN bus {spec!r} must be INTERFACE:CHANNEL, e.g. socketcan:can0")
    from can.interfaces import VALID_INTERFACES

    if interface not in VALID_INTERFACES:
        raise CanBusError(
            f"CAN bus {spec!r}: python-can has no interface {interface!r} (socketcan on a gateway)"
        )
    options: list[tuple[str, int | float | bool | str]] = []
    for part in query.split("&") if query else ():
        key, eq, value = part.partition("=")
        if not eq or not _OPTION.fullmatch(key) or key in ("interface", "channel"):
            raise CanBusError(f"CAN bus {spec!r}: bad option {part!r} (want NAME=VALUE)")
        options.append((key, _option_value(value)))
    return CanSpec(interface, channel, tuple(options))


def _option_value(value: str) -> int | float | bool | str:
    if value in ("true", "false"):
        return value == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def open_bus(spec: str | CanSpec) -> can.BusABC:
    """The python-can bus a spec names; :class:`CanBusError` when it cannot be opened."""
    parsed = parse_can_spec(spec)
    try:
        return _bus(parsed)
    except CanBusError as exc:
        raise CanBusError(f"cannot open CAN bus {parsed.label}: {exc}") from exc


def _bus(spec: CanSpec) -> can.BusABC:
    """The bus, or :class:`CanBusError` with python-can's reason (the caller names the bus)."""
    import can

    try:
        options: dict[str, Any] = dict(spec.options)
        return can.Bus(interface=spec.interface, channel=spec.channel, **options)
    except (can.CanError, OSError, ValueError, TypeError, ImportError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if exc.__cause__ is not None and str(exc.__cause__):
            reason += f" ({exc.__cause__})"
        raise CanBusError(reason[:200]) from exc


class CanReader:
    """Owns a bus: receives frames in a thread and keeps the latest decoded signals."""

    def __init__(
        self,
        spec: str | CanSpec,
        decoder: FrameDecoder,
        *,
        poll_s: float = 1.0,
        reconnect_min_s: float = RECONNECT_MIN_S,
        reconnect_max_s: float = RECONNECT_MAX_S,
    ) -> None:
        self.spec = parse_can_spec(spec)
        self.decoder = decoder
        self.poll_s = poll_s
        self.bus: can.BusABC | None = None
        self._signals = CanSignals()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.link = InputLink(
            f"CAN {self.spec.label}",
            min_s=reconnect_min_s,
            max_s=max(reconnect_min_s, reconnect_max_s),
            stop=self._stop,
        )
        self.stats: dict[str, int] = {
            "frames": 0,
            "decoded": 0,
            "ignored": 0,
            "unknown": 0,
            "bad": 0,
            "requests": 0,
        }
        self._first_unknown_logged = False
        self._first_bad_logged = False
        self._thread = threading.Thread(target=self._run, name="canbus", daemon=True)

    @property
    def label(self) -> str:
        return self.link.label

    def signals(self) -> CanSignals:
        with self._lock:
            return self._signals

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def __enter__(self) -> CanReader:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def feed(self, frame: can.Message) -> None:
        """Decode one frame (the receive loop calls this; tests may too)."""
        self.stats["frames"] += 1
        try:
            updates = self.decoder.decode(frame)
        except ValueError as exc:
            self.stats["bad"] += 1
            if not self._first_bad_logged:
                self._first_bad_logged = True
                log.warning(
                    "%s: malformed frame 0x%X skipped (%s); such frames are counted in the "
                    "hardware stats and not logged again",
                    self.label,
                    frame.arbitration_id,
                    exc,
                )
            return
        if updates is None:
            self.stats["unknown"] += 1
            if not self._first_unknown_logged:
                self._first_unknown_logged = True
                log.info(
                    "%s: frames %s does not describe are ignored (the first: 0x%X)",
                    self.label,
                    self.decoder.name,
                    frame.arbitration_id,
                )
            return
        if not updates:
            self.stats["ignored"] += 1
            return
        with self._lock:
            self._signals = replace(
                self._signals,
                **updates,
                seen=self._signals.seen | updates.keys(),
                updated_at=time.monotonic(),
            )
        self.stats["decoded"] += 1

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self.bus = _bus(self.spec)
                except CanBusError as exc:
                    self.link.down(f"cannot open: {exc}")
                    if self.link.wait():
                        return
                    continue
                try:
                    self.link.up(f"reading frames ({self.decoder.name})")
                    self._receive(self.bus)
                except CanBusError as exc:
                    self.link.down(str(exc))
                    if self.link.wait():
                        return
                finally:
                    self.bus.shutdown()
        except Exception:
            log.exception("%s: the reader stopped on an unexpected error", self.label)

    def _receive(self, bus: can.BusABC) -> None:
        import can

        next_poll = time.monotonic()
        while not self._stop.is_set():
            if self.poll_s > 0 and time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.poll_s
                for request in self.decoder.requests():
                    try:
                        bus.send(request, timeout=RECV_POLL_S)
                    except can.CanError as exc:
                        raise CanBusError(f"sending a request failed: {exc}") from exc
                    self.stats["requests"] += 1
            try:
                frame = bus.recv(timeout=RECV_POLL_S)
            except (can.CanError, OSError) as exc:
                raise CanBusError(f"receiving failed: {exc}") from exc
            if frame is not None and not frame.is_error_frame and not frame.is_remote_frame:
                self.feed(frame)
