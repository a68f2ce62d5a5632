"""How the ``wayline`` command logs: plain text lines, or one JSON object per line.

JSON lines (``--log-format json``) are for a log shipper (journald's, a container runtime's):
each line is an object with ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``
and ``message``, plus ``exception`` (the formatted traceback) when the record carries one.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

__all__ = ["JsonFormatter", "LogFormat", "configure_logging"]

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_logging` installs (and may replace)."""


def configure_logging(verbose: bool, fmt: LogFormat = "text") -> None:
    """Log to stderr at INFO (DEBUG when ``verbose``) in ``fmt``; uvicorn's chatter only from
    WARNING up. Called again once an agent's settings say which format, it replaces its own
    handler; like :func:`logging.basicConfig` it leaves alone a root logger that someone
    else has configured (a test runner calling ``main`` in-process)."""
    root = logging.getLogger()
    if any(not isinstance(h, _Handler) for h in root.handlers):
        return
    for old in root.handlers[:]:
        root.removeHandler(old)
    handler = _Handler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
