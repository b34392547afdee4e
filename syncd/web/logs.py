"""JSON log lines with the request id of the request that caused them, and secret redaction.

Log records never carry secrets: handlers log ids (org, event, token id, kid), never token text,
private keys or the master key. Text that does not come from syncd's own code (aiohttp's HTTP
parser quotes the raw header line it refused, an exception message quotes a request) is scrubbed
by ``SecretFilter`` before any handler sees it: credentials (``tsr_``/``tsg_``), enrolment codes
and the values registered with ``register_secret`` become ``[redacted]``, and the text of an
HTTP parser error is dropped altogether (it is the raw request line or header the client sent).
``tests/syncd/web/test_http_secrets.py`` holds the line against a real ``syncd serve``.
"""

from __future__ import annotations

import contextvars
import logging
import re
import traceback
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

from shared import logs as shared_logs

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

REDACTED = "[redacted]"
# Credentials (tsr_ API tokens, tsg_ gate credentials, tsw_ wallet claim links) and enrolment
# codes (16 characters of syncd.api.gate_admin.CODE_ALPHABET, maybe in groups of four): their
# shapes, wherever they appear.
_SHAPES = re.compile(
    r"ts[rgw]_[A-Za-z0-9_\-]*"
    r"|(?<![A-Za-z0-9])(?:[A-HJ-NP-Z2-9]{4}[- ]?){3}[A-HJ-NP-Z2-9]{4}(?![A-Za-z0-9])"
)
_LITERALS: set[str] = set()
# aiohttp loggers whose records may quote what a client sent (a filter on a logger only sees
# that logger's own records, so each is named).
AIOHTTP_LOGGERS = ("aiohttp.server", "aiohttp.access", "aiohttp.web", "aiohttp.internal")


def register_secret(value: str | None) -> None:
    """Redact ``value`` (a master key, a database password) from every later log line. Short
    values are left alone: redacting every "tessera" or "postgres" would hide more than it
    protects (such a password is no secret anyway)."""
    if value and len(value) >= 12:
        _LITERALS.add(value)


def redact(text: str) -> str:
    """``text`` with every credential, enrolment code and registered secret replaced."""
    for literal in _LITERALS:
        text = text.replace(literal, REDACTED)
    return _SHAPES.sub(REDACTED, text)


class SecretFilter(logging.Filter):
    """Rewrites a record so that no secret survives formatting; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if isinstance(exc, HttpProcessingError):
                # The message is the raw line the client sent (often its Authorization header).
                record.msg += f" ({type(exc).__name__} {exc.code}, request text withheld)"
                record.exc_text = None
            else:
                record.exc_text = redact("".join(traceback.format_exception(exc)).rstrip())
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_filters() -> None:
    """Put one ``SecretFilter`` on each aiohttp logger (idempotent; called by ``create_app``)."""
    for name in AIOHTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SecretFilter) for f in logger.filters):
            logger.addFilter(SecretFilter())


class JsonFormatter(shared_logs.JsonFormatter):
    """The shared line format plus the request id; the whole line redacted (extras too)."""

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        return {"request_id": request_id.get()}

    def finish(self, line: str) -> str:
        return redact(line)


def setup_logging(level: str = "INFO") -> None:
    """Send every logger to stderr as JSON lines (used by ``syncd serve``), every record
    scrubbed by ``SecretFilter`` on the way."""
    shared_logs.to_stderr(JsonFormatter(), level, SecretFilter())
    install_filters()
