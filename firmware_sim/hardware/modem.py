"""The simulated cellular modem: coverage holes, tunnels, and a proxy that obeys them.

:class:`CoverageMap` says whether the van has coverage at a time and a position: dead zones
are circles (a district, a tunnel's length) that may also be limited in time (a cell outage
from 11:00 to 12:00). :class:`ModemProxy` is a TCP proxy on 127.0.0.1 between the agent and
the broker: the agent connects to the proxy's port, and while the van has no coverage the
proxy cuts every connection and refuses new ones, exactly as a lost bearer looks to MQTT.
It counts disconnections and offline time for the day's report.
"""

from __future__ import annotations

import contextlib
import logging
import math
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from firmware_sim.hardware.loopback import listen_loopback

__all__ = ["CoverageMap", "DeadZone", "ModemProxy", "distance_km"]

log = logging.getLogger(__name__)

POLL_S = 0.05
"""How often the proxy re-checks coverage."""
CONNECT_TIMEOUT_S = 2.0


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, lon) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(min(1.0, h)))


@dataclass(frozen=True, slots=True)
class DeadZone:
    """No coverage inside the circle (if given) during ``[start_s, end_s)`` (if given).

    Times are seconds on the simulation clock (epoch seconds, or seconds of the day — the
    same unit the caller passes to :meth:`CoverageMap.online`).
    """

    name: str
    kind: str = "hole"
    """``hole`` (a coverage gap, a cell outage) or ``tunnel``."""
    lat: float | None = None
    lon: float | None = None
    radius_km: float | None = None
    start_s: float | None = None
    end_s: float | None = None

    def __post_init__(self) -> None:
        circle = (self.lat, self.lon, self.radius_km)
        if any(v is None for v in circle) and any(v is not None for v in circle):
            raise ValueError(f"dead zone {self.name!r}: give lat, lon and radius_km together")
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"dead zone {self.name!r} ends before it starts")

    def covers(self, t: float, position: tuple[float, float] | None) -> bool:
        if self.start_s is not None and t < self.start_s:
            return False
        if self.end_s is not None and t >= self.end_s:
            return False
        if self.lat is None or self.lon is None or self.radius_km is None:
            return True
        if position is None:
            return False
        return distance_km(position, (self.lat, self.lon)) <= self.radius_km


class CoverageMap:
    """Where and when the modem has no coverage."""

    def __init__(self, zones: Iterable[DeadZone] = ()) -> None:
        self.zones = tuple(zones)

    def dead_zone(self, t: float, position: tuple[float, float] | None) -> DeadZone | None:
        return next((z for z in self.zones if z.covers(t, position)), None)

    def online(self, t: float, position: tuple[float, float] | None) -> bool:
        return self.dead_zone(t, position) is None


class ModemProxy:
    """A TCP proxy 127.0.0.1:``port`` → ``upstream`` that is cut while ``online()`` is False.

    ``online`` is any callable (a coverage map at the van's time and position, a test's
    switch); :meth:`force` overrides it (True/False) or gives control back (None).
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        online: Callable[[], bool] = lambda: True,
        port: int = 0,
    ) -> None:
        self.upstream = upstream
        self._online_fn = online
        self._forced: bool | None = None
        self._server = listen_loopback(port, "modem proxy", backlog=16)
        self.port: int = self._server.getsockname()[1]
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modem", daemon=True)
        self.is_online = True
        self.disconnections = 0
        self.refused = 0
        self.offline_periods: list[tuple[float, float | None]] = []
        """(start, end) in ``time.time()`` seconds; end None while offline."""

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def force(self, online: bool | None) -> None:
        """Hold the modem online/offline, or (None) follow coverage again."""
        self._forced = online

    def offline_seconds(self) -> list[float]:
        now = time.time()
        return [(end if end is not None else now) - start for start, end in self.offline_periods]

    def stats(self) -> dict[str, float | int | bool]:
        spans = self.offline_seconds()
        return {
            "online": self.is_online,
            "disconnections": self.disconnections,
            "refused": self.refused,
            "offline_periods": len(spans),
            "offline_s": round(sum(spans), 3),
            "max_offline_s": round(max(spans, default=0.0), 3),
        }

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._close_all()
        self._sel.close()
        self._server.close()

    def __enter__(self) -> ModemProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop ------------------------------------------------------------------------

    def _wanted_online(self) -> bool:
        if self._forced is not None:
            return self._forced
        try:
            return bool(self._online_fn())
        except Exception:
            log.warning("coverage check failed; keeping the modem as it was", exc_info=True)
            return self.is_online

    def _run(self) -> None:
        self._sel.register(self._server, selectors.EVENT_READ)
        while not self._stop.is_set():
            self._update_coverage()
            for key, _ in self._sel.select(timeout=POLL_S):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._server:
                    self._accept()
                elif sock in self._pairs:
                    self._pump(sock)

    def _update_coverage(self) -> None:
        online = self._wanted_online()
        if online == self.is_online:
            return
        self.is_online = online
        if online:
            start, _ = self.offline_periods[-1]
            self.offline_periods[-1] = (start, time.time())
            log.info("modem: coverage back after %.1f s", time.time() - start)
        else:
            self.offline_periods.append((time.time(), None))
            if self._pairs:
                self.disconnections += 1
            log.info("modem: coverage lost, cutting %d connection(s)", len(self._pairs) // 2)
            self._close_all()

    def _accept(self) -> None:
        try:
            client, _ = self._server.accept()
        except OSError:
            return
        if not self.is_online:
            self.refused += 1
            client.close()
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            log.info("modem: upstream %s:%d refused: %s", *self.upstream, exc)
            client.close()
            return
        for s in (client, upstream):
            s.settimeout(CONNECT_TIMEOUT_S)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._pairs[client] = upstream
        self._pairs[upstream] = client
        self._sel.register(client, selectors.EVENT_READ)
        self._sel.register(upstream, selectors.EVENT_READ)

    def _pump(self, sock: socket.socket) -> None:
        peer = self._pairs[sock]
        try:
            data = sock.recv(65536)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        self._close_pair(sock)

    def _close_pair(self, sock: socket.socket) -> None:
        peer = self._pairs.pop(sock, None)
        for s in (sock, peer):
            if s is None:
                continue
            self._pairs.pop(s, None)
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(s)
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _close_all(self) -> None:
        for sock in list(self._pairs):
            self._close_pair(sock)
