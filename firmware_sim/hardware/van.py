"""The physical van beneath a simulated gateway: where it is and what its bus says.

:class:`VanModel` holds the truth the receivers observe — position, speed, heading,
odometer, fuel or charge, doors, ignition, cargo temperature — and moves toward a target at
a cruise speed scaled by traffic. The GNSS simulator reads :meth:`gnss_state`, the CAN
simulator :meth:`can_signals`; the demo's world may set any field through :meth:`update`.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from edge.hardware import CanSignals
from firmware_sim.hardware.gnss_sim import GnssState
from firmware_sim.hardware.modem import distance_km

__all__ = ["VanModel"]

ARRIVED_KM = 0.015
FUEL_PCT_PER_KM = 0.08
CHARGE_PCT_PER_KM = 0.25
COOLANT_C = 88.0
"""A warm diesel's coolant, for the bus's engine temperature."""
_SETTABLE = {
    "lat": float,
    "lon": float,
    "cruise_kmh": float,
    "traffic_factor": float,
    "odometer_km": float,
    "fuel_pct": float,
    "charge_pct": float,
    "doors": int,
    "ignition": bool,
    "temperature_c": float,
    "broken": bool,
    "follow": bool,
    "gnss_fix": bool,
}


class VanModel:
    """Thread-safe physical state of one van."""

    def __init__(
        self,
        lat: float,
        lon: float,
        *,
        clock: Callable[[], float] = time.time,
        odometer_km: float = 12_000.0,
        fuel_pct: float | None = 80.0,
        charge_pct: float | None = None,
        cruise_kmh: float = 30.0,
        temperature_c: float | None = 6.0,
    ) -> None:
        self.clock = clock
        self.lat, self.lon = lat, lon
        self.speed_kmh = 0.0
        self.heading_deg = 0.0
        self.odometer_km = odometer_km
        self.fuel_pct = fuel_pct
        self.charge_pct = charge_pct
        self.cruise_kmh = cruise_kmh
        self.traffic_factor = 1.0
        """Travel time multiplier: 1.5 means the van needs half again as long (a jam)."""
        self.doors = 0
        self.ignition = True
        self.temperature_c = temperature_c
        self.broken = False
        self.follow = True
        """Whether the gateway's driver loop steers it toward the next stop."""
        self.gnss_fix = True
        """False: the receiver has no fix (a garage, an urban canyon)."""
        self.moved = False
        self._lock = threading.RLock()

    @property
    def position(self) -> tuple[float, float]:
        with self._lock:
            return (self.lat, self.lon)

    def step(self, dt_s: float, target: tuple[float, float] | None) -> bool:
        """Drive ``dt_s`` simulated seconds toward ``target``; True when at the target."""
        with self._lock:
            if target is None or self.broken or not self.ignition or dt_s <= 0:
                self.speed_kmh = 0.0
                return target is not None and distance_km(self.position, target) <= ARRIVED_KM
            dist = distance_km((self.lat, self.lon), target)
            if dist <= ARRIVED_KM:
                self.speed_kmh = 0.0
                return True
            speed = self.cruise_kmh / max(self.traffic_factor, 0.05)
            step = min(dist, speed * dt_s / 3600)
            f = step / dist
            dlat, dlon = target[0] - self.lat, target[1] - self.lon
            self.heading_deg = _bearing((self.lat, self.lon), target)
            self.lat, self.lon = self.lat + dlat * f, self.lon + dlon * f
            self.speed_kmh = speed
            self.odometer_km += step
            if self.fuel_pct is not None:
                self.fuel_pct = max(2.0, self.fuel_pct - step * FUEL_PCT_PER_KM)
            if self.charge_pct is not None:
                self.charge_pct = max(2.0, self.charge_pct - step * CHARGE_PCT_PER_KM)
            self.moved = True
            return step >= dist

    def place(self, lat: float, lon: float) -> None:
        with self._lock:
            self.lat, self.lon = lat, lon

    def update(self, **fields: Any) -> dict[str, Any]:
        """Set fields by name (``ignition=False``, ``traffic_factor=2``); unknown → ValueError."""
        unknown = sorted(set(fields) - set(_SETTABLE))
        if unknown:
            raise ValueError(f"unknown van field(s) {unknown}; known: {sorted(_SETTABLE)}")
        with self._lock:
            for name, value in fields.items():
                if value is None and name in ("fuel_pct", "charge_pct", "temperature_c"):
                    setattr(self, name, None)
                else:
                    setattr(self, name, _SETTABLE[name](value))
            if self.broken or not self.ignition:
                self.speed_kmh = 0.0
            return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "lat": self.lat,
                "lon": self.lon,
                "speed_kmh": self.speed_kmh,
                "heading_deg": self.heading_deg,
                **{name: getattr(self, name) for name in _SETTABLE if name not in ("lat", "lon")},
            }

    def gnss_state(self) -> GnssState:
        with self._lock:
            utc = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
            if not self.gnss_fix:
                return GnssState(lat=None, lon=None, utc=utc)
            return GnssState(
                lat=self.lat,
                lon=self.lon,
                speed_kmh=self.speed_kmh,
                heading_deg=self.heading_deg,
                utc=utc,
            )

    def can_signals(self) -> CanSignals:
        with self._lock:
            temp = self.temperature_c
            if temp is not None and self.doors:
                temp = min(temp + 2.0, 90.0)  # warm air in while the cargo door is open
            combustion = self.fuel_pct is not None
            return CanSignals(
                speed_kmh=self.speed_kmh,
                odometer_km=self.odometer_km,
                fuel_pct=self.fuel_pct,
                charge_pct=self.charge_pct,
                ignition=self.ignition,
                doors=self.doors,
                temperature_c=temp,
                coolant_c=COOLANT_C if combustion and self.ignition else None,
            )


def _bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lat2 = math.radians(a[0]), math.radians(b[0])
    dlon = math.radians(b[1] - a[1])
    x = math.sin(dlon) * math.cos(lat2)
    y = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(dlon)
    return (math.degrees(math.atan2(x, y)) + 360.0) % 360.0
