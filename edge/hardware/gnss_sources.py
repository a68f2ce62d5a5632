"""Where the gateway's GNSS lines come from: a serial device, a TCP feed, or gpsd.

The operator names the source in one string (``HardwareSettings.gnss``)::

    serial:///dev/ttyACM0?baud=9600   NMEA from a serial device (pyserial; raw mode, 8N1)
    /dev/ttyACM0                      the same, at 9600 baud; a FIFO or a file is read as is
    tcp://HOST:PORT                   raw NMEA over TCP (a receiver's network port, ser2net)
    gpsd://HOST[:PORT]                gpsd's JSON protocol (port 2947 by default)

:func:`parse_gnss_spec` turns the string into a source; ``source.open()`` makes one
connection (raising :class:`GnssSourceError` when it cannot), whose ``lines(stop)`` yields
raw lines until the peer ends or the stop event is set, and raises
:class:`GnssSourceError` when the device or the peer goes away. Reconnecting is the
receiver's business (:class:`edge.hardware.gnss.GnssReceiver`), not the source's.

gpsd is read through its native JSON ``?WATCH`` (TPV reports), not its ``"nmea":true``
relay: gpsd often drives receivers in their binary protocols (u-blox UBX, SiRF), where the
NMEA it relays is its own re-encoding of the fix; TPV is the fix itself, with gpsd's own
mode (no fix / 2D / 3D), and needs no second parser.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import stat
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import parse_qs, urlsplit

from edge.hardware.errors import GnssSourceError

__all__ = [
    "DeviceSource",
    "GnssSource",
    "GpsdSource",
    "LineConnection",
    "LinesSource",
    "TcpNmeaSource",
    "parse_gnss_spec",
]

MAX_LINE = 4096
"""Longest line kept (NMEA allows 82 characters, a gpsd report a few hundred bytes)."""
READ_POLL_S = 0.2
"""How often a blocked read checks whether the receiver is stopping."""
CONNECT_TIMEOUT_S = 3.0
DEFAULT_BAUD = 9600
GPSD_PORT = 2947
GPSD_WATCH = b'?WATCH={"enable":true,"json":true}\n'
"""Asks gpsd for its JSON reports (TPV, SKY, ...) of every device it manages."""
OVERLONG = b"<overlong line>"

LineFormat = Literal["nmea", "gpsd"]


class LineConnection(Protocol):
    """One open connection to a GNSS source."""

    endless: bool
    """False for a regular file or a list: its end is the end of the source."""

    def lines(self, stop: threading.Event) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class GnssSource(Protocol):
    """A GNSS source as configured: opened anew after every failure."""

    @property
    def label(self) -> str:
        """The source as the operator wrote it, for log lines."""
        ...

    @property
    def protocol(self) -> LineFormat:
        """What its lines are: NMEA sentences or gpsd JSON reports."""
        ...

    def open(self) -> LineConnection: ...


def _split(buffer: bytearray) -> Iterator[bytes]:
    """Complete lines out of ``buffer``; an overlong run without a newline is dropped."""
    while (cut := buffer.find(b"\n")) >= 0:
        line = bytes(buffer[:cut])
        del buffer[: cut + 1]
        yield line if len(line) <= MAX_LINE else OVERLONG
    if len(buffer) > MAX_LINE:
        buffer.clear()
        yield OVERLONG


# -- serial devices, FIFOs and files -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceSource:
    """A serial device (pyserial, raw 8N1 at ``baud``), or a FIFO or file read as is."""

    path: Path
    baud: int = DEFAULT_BAUD
    label: str = ""
    protocol: LineFormat = "nmea"

    def open(self) -> LineConnection:
        try:
            mode = os.stat(self.path).st_mode
        except OSError as exc:
            raise GnssSourceError(f"no device at {self.path} ({exc.strerror})") from None
        if stat.S_ISCHR(mode):
            return _SerialConnection(self.path, self.baud)
        return _FdConnection(self.path, endless=not stat.S_ISREG(mode))


class _SerialConnection:
    endless = True

    def __init__(self, path: Path, baud: int) -> None:
        import serial  # pyserial: loaded only by a gateway with a serial receiver

        self._error = serial.SerialException
        try:
            self._port = serial.Serial(str(path), baudrate=baud, timeout=READ_POLL_S)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise GnssSourceError(f"cannot open {path}: {_first_line(exc)}") from None
        self.path = path

    def lines(self, stop: threading.Event) -> Iterator[bytes]:
        buffer = bytearray()
        while not stop.is_set():
            try:
                chunk = self._port.read(4096)
            except (self._error, OSError) as exc:
                raise GnssSourceError(f"{self.path} went away: {_first_line(exc)}") from None
            if chunk:
                buffer += chunk
                yield from _split(buffer)

    def close(self) -> None:
        with contextlib.suppress(self._error, OSError):
            self._port.close()


class _FdConnection:
    def __init__(self, path: Path, *, endless: bool) -> None:
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise GnssSourceError(f"cannot open {path} ({exc.strerror})") from None
        self.path = path
        self.endless = endless

    def lines(self, stop: threading.Event) -> Iterator[bytes]:
        buffer = bytearray()
        while not stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], READ_POLL_S)
            if not ready:
                continue
            try:
                chunk = os.read(self._fd, 4096)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise GnssSourceError(f"{self.path} went away ({exc.strerror})") from None
            if not chunk:
                if buffer:
                    yield bytes(buffer)
                return
            buffer += chunk
            yield from _split(buffer)

    def close(self) -> None:
        os.close(self._fd)


# -- TCP: raw NMEA and gpsd ----------------------------------------------------------------


class _SocketConnection:
    endless = True

    def __init__(self, host: str, port: int, hello: bytes = b"") -> None:
        try:
            self._sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise GnssSourceError(f"cannot connect ({reason})") from None
        try:
            if hello:
                self._sock.sendall(hello)
            self._sock.settimeout(READ_POLL_S)
        except OSError as exc:
            self._sock.close()
            raise GnssSourceError(f"the connection dropped ({exc})") from None

    def lines(self, stop: threading.Event) -> Iterator[bytes]:
        buffer = bytearray()
        while not stop.is_set():
            try:
                chunk = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError as exc:
                raise GnssSourceError(f"the connection dropped ({exc})") from None
            if not chunk:
                raise GnssSourceError("the peer closed the connection")
            buffer += chunk
            yield from _split(buffer)

    def close(self) -> None:
        self._sock.close()


@dataclass(frozen=True, slots=True)
class TcpNmeaSource:
    """Raw NMEA sentences over TCP, one per line."""

    host: str
    port: int
    label: str = ""
    protocol: LineFormat = "nmea"

    def open(self) -> LineConnection:
        return _SocketConnection(self.host, self.port)


@dataclass(frozen=True, slots=True)
class GpsdSource:
    """gpsd's JSON reports, after a ``?WATCH`` for JSON."""

    host: str
    port: int = GPSD_PORT
    label: str = ""
    protocol: LineFormat = "gpsd"

    def open(self) -> LineConnection:
        return _SocketConnection(self.host, self.port, hello=GPSD_WATCH)


# -- lines in memory (tests, replays) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinesSource:
    """Lines given in memory; read once."""

    items: tuple[str | bytes, ...] = field(default=())
    label: str = "lines"
    protocol: LineFormat = "nmea"

    def open(self) -> LineConnection:
        return _ListConnection(self.items)


class _ListConnection:
    endless = False

    def __init__(self, items: tuple[str | bytes, ...]) -> None:
        self.items = items

    def lines(self, stop: threading.Event) -> Iterator[bytes]:
        for line in self.items:
            if stop.is_set():
                return
            yield line.encode("ascii", errors="replace") if isinstance(line, str) else line

    def close(self) -> None:
        pass


# -- the spec ----------------------------------------------------------------------------------


def parse_gnss_spec(spec: str | Path | Iterable[str | bytes] | GnssSource) -> GnssSource:
    """The source a spec names; :class:`GnssSourceError` naming the spec when it is bad."""
    if isinstance(spec, DeviceSource | TcpNmeaSource | GpsdSource | LinesSource):
        return spec
    if isinstance(spec, Path):
        return DeviceSource(spec, label=str(spec))
    if not isinstance(spec, str):
        return LinesSource(tuple(spec))  # type: ignore[arg-type]
    text = spec.strip()
    if text.startswith("/"):
        return DeviceSource(Path(text), label=text)
    try:
        url = urlsplit(text)
        host, port = url.hostname, url.port
    except ValueError as exc:
        raise GnssSourceError(f"GNSS source {spec!r} does not parse: {exc}") from None
    if url.scheme == "serial":
        if url.netloc:
            raise GnssSourceError(
                f"GNSS source {spec!r} needs an absolute device path: serial:///dev/DEVICE"
            )
        return _serial(spec, url.path, url.query)
    if url.scheme in ("tcp", "gpsd"):
        if not host or url.path not in ("", "/") or url.query:
            raise GnssSourceError(
                f"GNSS source {spec!r} must be {url.scheme}://HOST:PORT, with nothing after"
            )
        if url.scheme == "gpsd":
            return GpsdSource(host, port or GPSD_PORT, label=text)
        if port is None:
            raise GnssSourceError(f"GNSS source {spec!r} needs a port: tcp://HOST:PORT")
        return TcpNmeaSource(host, port, label=text)
    raise GnssSourceError(
        f"GNSS source {spec!r} is none of serial:///dev/DEVICE?baud=N, /dev/DEVICE, "
        "tcp://HOST:PORT or gpsd://HOST:PORT"
    )


def _serial(spec: str, path: str, query: str) -> DeviceSource:
    if not path.startswith("/"):
        raise GnssSourceError(f"GNSS source {spec!r} needs an absolute device path")
    try:
        options = parse_qs(query, strict_parsing=bool(query), max_num_fields=4)
    except ValueError as exc:
        raise GnssSourceError(f"GNSS source {spec!r}: bad options ({exc})") from None
    unknown = sorted(set(options) - {"baud"})
    if unknown:
        raise GnssSourceError(f"GNSS source {spec!r}: unknown option(s) {unknown}; known: baud")
    baud_text = options.get("baud", [str(DEFAULT_BAUD)])[-1]
    if not baud_text.isdigit() or not 50 <= int(baud_text) <= 4_000_000:
        raise GnssSourceError(f"GNSS source {spec!r}: baud must be a rate in bits/s")
    return DeviceSource(Path(path), int(baud_text), label=spec.strip())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
