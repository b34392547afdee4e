"""Checking one attendee row: the columns, their rules, and the record that goes to COPY.

Cells arrive as text (CSV) or JSON scalars; a row either becomes a ``Record`` or adds
``Problem``s. Zone names and timestamps repeat across a list, so both are parsed once and cached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

ALL_ZONES = 0xFFFF
COLUMNS = ("external_ref", "holder_name", "email", "category", "zones", "valid_from", "valid_until")
ALIASES = {"holder": "holder_name", "name": "holder_name", "zone": "zones"}
LIMITS = {"external_ref": 128, "holder_name": 200, "email": 254, "category": 64, "zones": 1200}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UINT32 = 0xFFFFFFFF

Record = tuple[int, str, str, str, str, int, int, int]
"""(row, external_ref, holder, email, category, zone mask, valid_from, valid_until)"""


@dataclass(frozen=True, slots=True)
class Problem:
    row: int
    column: str
    problem: str

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "problem": self.problem}


def canonical_column(name: str) -> str:
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    return ALIASES.get(key, key)


@dataclass
class RowChecker:
    """Turns cells into records, collecting at most ``max_problems`` problems (all counted)."""

    zones: list[str]
    timezone: str = "UTC"
    max_problems: int = 1000
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    def __post_init__(self) -> None:
        self._bits = {name.lower(): 1 << i for i, name in enumerate(self.zones)}
        self._tz = ZoneInfo(self.timezone)
        self._zone_cache: dict[str, int | str] = {"": ALL_ZONES, "*": ALL_ZONES, "all": ALL_ZONES}
        self._time_cache: dict[str, int | str] = {"": 0}

    def add(self, row: int, column: str, problem: str) -> None:
        self.problem_count += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(Problem(row, column, problem))

    def check(self, row: int, cells: dict[str, Any]) -> Record | None:
        """Check one row of cells keyed by canonical column name."""
        before = self.problem_count
        texts = {}
        for column in COLUMNS:
            texts[column] = self._text(row, column, cells.get(column))
        ref = texts["external_ref"]
        if not ref:
            self.add(row, "external_ref", "required")
        email = texts["email"]
        if email and not _EMAIL.match(email):
            self.add(row, "email", "not an email address")
        zone = self._cached(self._zone_cache, texts["zones"], self._parse_zones, row, "zones")
        start = self._cached(
            self._time_cache, texts["valid_from"], self._parse_time, row, "valid_from"
        )
        end = self._cached(
            self._time_cache, texts["valid_until"], self._parse_time, row, "valid_until"
        )
        if start and end and end < start:
            self.add(row, "valid_until", "is before valid_from")
        if self.problem_count != before:
            return None
        return (row, ref, texts["holder_name"], email, texts["category"], zone, start, end)  # type: ignore[return-value]

    def _text(self, row: int, column: str, value: Any) -> str:
        if value is None:
            return ""
        if column == "zones" and isinstance(value, list):
            value = "|".join(str(v) for v in value)
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.add(row, column, "must be text")
            return ""
        text = str(value).strip()
        if len(text) > LIMITS.get(column, 64):
            self.add(row, column, f"longer than {LIMITS.get(column, 64)} characters")
        elif "\x00" in text:
            self.add(row, column, "contains a NUL character")
        return text

    def _cached(self, cache: dict, text: str, parse: Any, row: int, column: str) -> int:
        value = cache.get(text)
        if value is None:
            value = parse(text)
            cache[text] = value
        if isinstance(value, str):
            self.add(row, column, value)
            return 0
        return value

    def _parse_zones(self, text: str) -> int | str:
        mask = 0
        for name in text.split("|"):
            bit = self._bits.get(name.strip().lower())
            if bit is None:
                return f"unknown zone {name.strip()!r} (event zones: {', '.join(self.zones)})"
            mask |= bit
        return mask

    def _parse_time(self, text: str) -> int | str:
        if text.isdigit():
            seconds = int(text)
        else:
            try:
                when = datetime.fromisoformat(text)
            except ValueError:
                return "not a date-time (ISO 8601) or Unix seconds"
            if when.tzinfo is None:
                when = when.replace(tzinfo=self._tz)
            seconds = int(when.timestamp())
        if not 0 <= seconds <= _UINT32:
            return "out of range (1970 to 2106)"
        return seconds
