"""The one JSON log line format of every Tessera process (gate, syncd, tools): one object per
line on stderr, so a log shipper parses gate and syncd alike.

    {"ts": "2026-12-01T19:02:03.123Z", "level": "info", "logger": "gate.app", "msg": "...",
     ...extras given with ``extra=``..., "exc": "Traceback ..."}

``ts`` is UTC, ISO 8601 with milliseconds (sortable as text, no local time zone to guess).
A component adds fields of its own by overriding ``fields`` (syncd adds ``request_id``) and
post-processes the line by overriding ``finish`` (syncd redacts secrets).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def timestamp(created: float) -> str:
    """``created`` (Unix seconds) as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    millis = int(created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"


class JsonFormatter(logging.Formatter):
    """Time, level, logger, message, the component's fields, any ``extra=`` fields, and the
    traceback if there is one."""

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """Fields of the component's own, after ``msg`` (none here)."""
        return {}

    def finish(self, line: str) -> str:
        """The formatted line, as written (unchanged here)."""
        return line

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **self.fields(record),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc"] = record.exc_text
        return self.finish(json.dumps(data, default=str, ensure_ascii=False))


def to_stderr(formatter: logging.Formatter, level: str, *filters: logging.Filter) -> None:
    """Send every logger to stderr through ``formatter`` at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    for f in filters:
        handler.addFilter(f)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
