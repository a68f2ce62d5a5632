"""Serving an ASGI app with uvicorn in a background thread, and running an agent until a signal.

uvicorn is imported only when a server is made: parsing ``HOST:PORT`` (the settings do it)
and ``wayline --help`` do not load it.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["HttpServer", "parse_hostport", "run_until_signal"]

log = logging.getLogger(__name__)


def parse_hostport(value: str) -> tuple[str, int]:
    """``HOST:PORT`` → (host, port); raises ValueError with a clear message."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080, got {value!r}")
    return host, int(port)


class HttpServer:
    """uvicorn in a daemon thread; ``start`` waits until it listens."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.host, self.port = host, port
        self._thread = threading.Thread(target=self.server.run, name="http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"HTTP server could not listen on {self.host}:{self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)


def _stop_on_signal() -> threading.Event:
    """An event set by SIGTERM or SIGINT, from now on."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def run_until_signal(
    start: Callable[[], None],
    stop: Callable[[], None],
    app: Callable[[], Any] | None,
    http: str | None,
) -> int:
    """Start an agent, serve ``app()`` on ``http`` (HOST:PORT) if given, and stop both on
    SIGTERM or SIGINT (systemd stops a unit with SIGTERM). The signals are caught from
    before the start: one that comes while the agent starts stops it as soon as it has."""
    stopping = _stop_on_signal()
    start()
    server = None
    try:
        if http is not None and app is not None and not stopping.is_set():
            server = HttpServer(app(), *parse_hostport(http))
            server.start()
            log.info("serving on %s", server.url)
        stopping.wait()
    finally:
        if server is not None:
            server.stop()
        stop()
    return 0
