"""Logging for every command: a timestamp and a level on every line, as text or as JSON.

Libraries speak only when it matters: httpx logs each request at INFO, and APScheduler and
procrastinate each job run, which buries the one line per source an operator needs; they stay
at WARNING unless ``-v`` asks for everything.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CHATTY = (
    "httpx",
    "httpcore",
    "apscheduler",
    "procrastinate",
    "trafilatura",
    "htmldate",
    "courlan",
    "charset_normalizer",
    "asyncio",
    "alembic",  # "Context impl PostgresqlImpl." on every start
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line (for log shippers): time (UTC, ISO 8601), level, logger,
    message, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged, not when it was set up."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        return None


def setup(
    level: int, verbose: bool = False, fmt: str = "text", stream: TextIO | None = None
) -> None:
    """Configure the root logger for the process: ``level`` (DEBUG with ``verbose``) in ``fmt``
    on ``stream`` (default: standard error). A second call replaces what the first set up,
    and leaves anyone else's handlers alone."""
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.set_name("balanced-news")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "balanced-news"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else level)
    for name in CHATTY:  # with -v their INFO (each request, each job), not their wire traces
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
