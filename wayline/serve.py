"""Serving an ASGI app with uvicorn in a background thread, stoppable from the caller."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import uvicorn

__all__ = ["HttpServer", "parse_hostport"]

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
