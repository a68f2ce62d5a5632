"""The gateway's hardware inputs as the vehicle agent runs them, from its settings.

:class:`HardwareInputs` turns :class:`HardwareSettings` into running parts: a
:class:`GnssReceiver` on ``settings.gnss``, a :class:`CanReader` on ``settings.can`` with
the profile's decoder (the DBC for ``fms``, PID requests for ``obd2``), and a
:class:`HardwareReader` that samples both into the agent's telemetry every
``telemetry_interval_s``. ``VehicleAgent.start()`` starts them and ``stop()`` stops them;
a real gateway and the simulator reach the agent only this way.

Nothing here stops the agent. A source that is missing or goes away is retried by its
reader; a DBC that does not parse is one line naming the file, and the agent runs on
without CAN. Telemetry needs both a fix and the bus's odometer and ignition (the wire
requires them), so a gateway with GNSS and no working bus sends none, and says so once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from edge.hardware.canbus import CanReader, FrameDecoder
from edge.hardware.errors import DbcError
from edge.hardware.gnss import GnssReceiver
from edge.hardware.reader import MAX_FIX_AGE_S, HardwareReader
from edge.hardware.settings import HardwareSettings
from protocol import Telemetry

__all__ = ["HardwareInputs"]

log = logging.getLogger(__name__)

MIN_OBD_POLL_S = 0.1


class HardwareInputs:
    """The receivers and the sampler a :class:`HardwareSettings` names."""

    def __init__(
        self,
        settings: HardwareSettings,
        on_sample: Callable[[Telemetry], None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.on_sample = on_sample
        self.clock = clock
        self.gnss: GnssReceiver | None = None
        self.can: CanReader | None = None
        self.reader: HardwareReader | None = None
        self.can_problem: str | None = None
        """Why the gateway runs without CAN although a bus is set (a bad DBC)."""

    @property
    def configured(self) -> bool:
        return self.settings.gnss is not None or self.settings.can is not None

    def start(self) -> None:
        """Open every input the settings name; never raises for the hardware's sake."""
        s = self.settings
        if s.gnss is not None:
            self.gnss = GnssReceiver(
                s.gnss, reconnect_min_s=s.reconnect_min_s, reconnect_max_s=s.reconnect_max_s
            )
            self.gnss.start()
        if s.can is not None:
            decoder = self._decoder()
            if decoder is not None:
                self.can = CanReader(
                    s.can,
                    decoder,
                    poll_s=max(MIN_OBD_POLL_S, s.telemetry_interval_s),
                    reconnect_min_s=s.reconnect_min_s,
                    reconnect_max_s=s.reconnect_max_s,
                )
                self.can.start()
        if self.gnss is not None and self.can is not None:
            self.reader = HardwareReader(
                self.gnss,
                self.can,
                self.on_sample,
                period_s=s.telemetry_interval_s,
                clock=self.clock,
                max_fix_age_s=max(MAX_FIX_AGE_S, 3 * s.telemetry_interval_s),
                max_signal_age_s=max(MAX_FIX_AGE_S, 3 * s.telemetry_interval_s),
            )
            self.reader.start()
        elif self.configured:
            missing = "a working CAN bus" if self.gnss is not None else "a GNSS source"
            log.warning(
                "hardware: no telemetry will be sent: it needs both a GNSS fix and the bus's "
                "odometer and ignition, and this gateway has no %s",
                missing,
            )

    def stop(self) -> None:
        for part in (self.reader, self.can, self.gnss):
            if part is None:
                continue
            try:
                part.stop()
            except Exception:
                log.warning("stopping %s failed", type(part).__name__, exc_info=True)

    def stats(self) -> dict[str, Any]:
        """Counters of every input, for the gateway's status and the simulator's view."""
        can: dict[str, Any] | None = None
        if self.can is not None:
            can = {**self.can.stats, "state": self.can.link.state}
        elif self.can_problem is not None:
            can = {"state": "off", "problem": self.can_problem}
        return {
            "gnss": self.gnss.stats if self.gnss is not None else None,
            "can": can,
            "reader": dict(self.reader.stats) if self.reader is not None else None,
        }

    def _decoder(self) -> FrameDecoder | None:
        s = self.settings
        if s.can_profile == "obd2":
            from edge.hardware.obd import ObdDecoder

            return ObdDecoder()
        from edge.hardware.dbc import DEFAULT_FMS_DBC, DbcDecoder, load_dbc

        path = s.can_dbc or DEFAULT_FMS_DBC
        try:
            db = load_dbc(path)
        except DbcError as exc:
            self.can_problem = str(exc)
            log.error("hardware.can_dbc: %s; the gateway runs without CAN", exc)
            return None
        decoder = DbcDecoder(db, name=path.name)
        if decoder.missing:
            log.warning(
                "hardware.can_dbc: %s has no signal for %s; telemetry waits for them",
                path,
                ", ".join(decoder.missing),
            )
        return decoder
