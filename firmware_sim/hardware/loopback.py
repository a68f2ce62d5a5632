"""The listening socket every simulator serves its clients from: 127.0.0.1 only."""

from __future__ import annotations

import socket

from firmware_sim.hardware.errors import SimSocketError

__all__ = ["listen_loopback"]


def listen_loopback(port: int, what: str, backlog: int = 8) -> socket.socket:
    """A non-blocking TCP server socket on ``127.0.0.1:port`` (0: any free port); raises
    :class:`SimSocketError` naming ``what`` when it cannot listen."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind(("127.0.0.1", port))
    except OSError as exc:
        server.close()
        raise SimSocketError(f"{what} cannot listen on 127.0.0.1:{port}: {exc}") from exc
    server.listen(backlog)
    server.setblocking(False)
    return server
