"""Structured logs: one JSON object per line on stderr (stdout is for decisions), in the format
every Tessera process writes (``shared.logs``)."""

from __future__ import annotations

from shared.logs import JsonFormatter, to_stderr

__all__ = ["JsonFormatter", "configure"]


def configure(level: str = "INFO") -> None:
    to_stderr(JsonFormatter(), level)
