"""A simulated serial port: a pseudo-terminal behind a stable device path.

A USB GNSS receiver appears on a gateway as ``/dev/ttyACM0`` (or, stable across plugs, a
udev link like ``/dev/serial/by-id/...``). :class:`PtySerialPort` plays that part: the
simulator writes to a pseudo-terminal's master side, and the gateway opens the slave
through ``link``, a symbolic link the port keeps pointing at the current slave, exactly as
it would open a real device (pyserial, ``serial://LINK?baud=9600``). :meth:`unplug` takes
the device away mid-shift (the link disappears, the reader gets an error); :meth:`plug`
brings a new one back behind the same link.

Nothing reads the master side: the slave is in raw mode (no echo), and what the gateway
does not read in time is dropped, as on a real serial line.
"""

from __future__ import annotations

import contextlib
import os
import termios
import threading
import tty
from pathlib import Path

from firmware_sim.hardware.errors import SimHardwareError

__all__ = ["PtySerialPort"]


class PtySerialPort:
    """A pseudo-terminal the gateway opens through ``link``; thread-safe."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self._master: int | None = None
        self._slave: int | None = None
        self._lock = threading.Lock()
        self.written = 0
        self.dropped = 0
        self.plugs = 0

    @property
    def plugged(self) -> bool:
        return self._master is not None

    @property
    def device(self) -> str | None:
        """The pseudo-terminal's own name (``/dev/pts/N``), while plugged."""
        with self._lock:
            return os.ttyname(self._slave) if self._slave is not None else None

    def plug(self) -> None:
        """A new device behind :attr:`link` (after :meth:`unplug`, a different pty)."""
        with self._lock:
            if self._master is not None:
                return
            try:
                master, slave = os.openpty()
            except OSError as exc:
                raise SimHardwareError(f"no pseudo-terminal for {self.link}: {exc}") from exc
            tty.setraw(slave)
            os.set_blocking(master, False)
            tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(os.ttyname(slave))
            tmp.replace(self.link)
            self._master, self._slave = master, slave
            self.plugs += 1

    def unplug(self) -> None:
        """The device goes away: the link is removed and the pty closed."""
        with self._lock:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
            for fd in (self._master, self._slave):
                if fd is not None:
                    os.close(fd)
            self._master = self._slave = None

    def write(self, payload: bytes) -> None:
        """Send bytes down the line; dropped when unplugged or when nobody reads."""
        with self._lock:
            if self._master is None or self._slave is None:
                return
            try:
                self.written += os.write(self._master, payload)
            except BlockingIOError:
                # nobody reads: the line's buffer is full; drop what waits, like a UART
                termios.tcflush(self._slave, termios.TCIFLUSH)
                self.dropped += len(payload)
            except OSError:
                self.dropped += len(payload)

    def close(self) -> None:
        self.unplug()
