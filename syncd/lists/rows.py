"""Checking one attendee row: the columns, their rules, and the record that goes to COPY.

Cells arrive as text (CSV) or JSON scalars; a row either becomes a ``Record`` or adds
``Problem``s. Zone names and timestamps repeat across a list, so both are parsed once and cached
(each cache is bounded: a hostile list of a million distinct timestamps must not grow it).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.bundle import MAX_GROUP_CHARS

ALL_ZONES = 0xFFFF
COLUMNS = (
    "external_ref",
    "holder_name",
    "email",
    "category",
    "zones",
    "valid_from",
    "valid_until",
    "group",
)
ALIASES = {
    "holder": "holder_name",
    "name": "holder_name",
    "zone": "zones",
    "group_ref": "group",
    "order": "group",
    "order_code": "group",
}
LIMITS = {
    "external_ref": 128,
    "holder_name": 200,
    "email": 254,
    "category": 64,
    "zones": 1200,
    "group": MAX_GROUP_CHARS,
}
GROUP_PROBLEM = "must be printable text (no tab, line break or other control character)"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EMAILS = re.compile(r"(?>(?:[^@\s]+@[^@\s]+\.[^@\s]+)?\n)*+")
"""Lines each empty or an ``_EMAIL``; atomic, so a bad line never backtracks into good ones."""
_UINT32 = 0xFFFFFFFF
CACHE_SIZE = 4096
"""Distinct zone and time texts remembered; later new ones are parsed each time."""

Record = tuple[int, str, str, str, str, int, int, int, str]
"""(row, external_ref, holder, email, category, zone mask, valid_from, valid_until, group)"""


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
        """Check one row of cells (any JSON scalars) keyed by canonical column name."""
        before = self.problem_count
        texts = [self._text(row, c, cells.get(c)) for c in COLUMNS]
        if self.problem_count != before:
            return None
        return self.check_texts(row, *texts)

    def check_texts(
        self,
        row: int,
        ref: str,
        holder: str,
        email: str,
        category: str,
        zones: str,
        valid_from: str,
        valid_until: str,
        group: str,
    ) -> Record | None:
        """The hot path: eight stripped strings without NUL characters."""
        if (
            not ref
            or len(ref) > 128
            or len(holder) > 200
            or len(email) > 254
            or len(category) > 64
            or len(zones) > 1200
            or len(group) > MAX_GROUP_CHARS
            or (email and not _EMAIL.match(email))
            or not group.isprintable()
        ):
            self._explain(row, ref, holder, email, category, zones, group)
            return None
        zone = self._zone_cache.get(zones)
        if zone is None:
            zone = self._remember(self._zone_cache, zones, self._parse_zones(zones))
        start = self._time_cache.get(valid_from)
        if start is None:
            start = self._remember(self._time_cache, valid_from, self._parse_time(valid_from))
        end = self._time_cache.get(valid_until)
        if end is None:
            end = self._remember(self._time_cache, valid_until, self._parse_time(valid_until))
        if type(zone) is str or type(start) is str or type(end) is str:
            for column, value in (("zones", zone), ("valid_from", start), ("valid_until", end)):
                if type(value) is str:
                    self.add(row, column, value)
            return None
        if start and end and end < start:  # type: ignore[operator]
            self.add(row, "valid_until", "is before valid_from")
            return None
        return (row, ref, holder, email, category, zone, start, end, group)  # type: ignore[return-value]

    def check_batch(self, first: int, texts: Sequence[list[str]]) -> list[Sequence[Any]] | None:
        """The hot path of a clean CSV: eight columns of stripped, NUL-free texts for rows
        ``first``, ``first + 1``, ...; returns the nine ``Record`` columns, or None when
        some row needs ``check_texts`` (a problem, or a text not seen before in a full cache).
        Every check is one C-level pass over a column."""
        refs, holders, emails, categories, zones, starts, ends, groups = texts
        if not (
            all(refs)
            and _fits(refs, 128)
            and _fits(holders, 200)
            and _fits(emails, 254)
            and _fits(categories, 64)
            and _fits(zones, 1200)
            and _fits(groups, MAX_GROUP_CHARS)
            and _all_emails(emails)
            and all(map(str.isprintable, groups))
        ):
            return None
        masks = self._lookup(self._zone_cache, self._parse_zones, zones)
        froms = self._lookup(self._time_cache, self._parse_time, starts)
        untils = self._lookup(self._time_cache, self._parse_time, ends)
        if masks is None or froms is None or untils is None or _any_before(untils, froms):
            return None
        first_to_last = range(first, first + len(refs))
        return [first_to_last, refs, holders, emails, categories, masks, froms, untils, groups]

    def _lookup(
        self, cache: dict[str, int | str], parse: Any, texts: list[str]
    ) -> list[int] | None:
        """Cached values of ``texts`` (parsing and remembering the new ones); None if any is a
        problem."""
        values = list(map(cache.get, texts))
        if None in values:
            for text in set(texts).difference(cache):
                if self._remember(cache, text, parse(text)) is not cache.get(text):
                    return None  # cache full: let check_texts parse row by row
            values = list(map(cache.get, texts))
        if set(map(type, values)) != {int}:
            return None
        return values  # type: ignore[return-value]

    @staticmethod
    def _remember(cache: dict[str, int | str], text: str, value: int | str) -> int | str:
        if len(cache) < CACHE_SIZE:
            cache[text] = value
        return value

    def _explain(self, row: int, *texts: str) -> None:
        """Name the problems of the checked texts: the columns of ``LIMITS``, in its order."""
        cells = dict(zip(LIMITS, texts, strict=True))
        if not cells["external_ref"]:
            self.add(row, "external_ref", "required")
        for column, text in cells.items():
            if len(text) > LIMITS[column]:
                self.add(row, column, f"longer than {LIMITS[column]} characters")
        if cells["email"] and not _EMAIL.match(cells["email"]):
            self.add(row, "email", "not an email address")
        group = cells["group"]
        if len(group) <= LIMITS["group"] and not group.isprintable():
            self.add(row, "group", GROUP_PROBLEM)

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
        elif not text.isascii() and not _encodable(text):
            self.add(row, column, "is not valid Unicode (a lone surrogate such as \\ud800)")
        return text

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


def _all_emails(emails: list[str]) -> bool:
    """Every text empty or an e-mail address (``_EMAIL``), in one regex pass."""
    lines = "\n".join(emails) + "\n"
    return lines.count("\n") == len(emails) and _EMAILS.fullmatch(lines) is not None


def _fits(texts: list[str], limit: int) -> bool:
    return max(map(len, texts), default=0) <= limit


def _any_before(untils: list[int], froms: list[int]) -> bool:
    """Some valid_until before its valid_from (0 is "not given" on either side)."""
    return any(map(operator.lt, untils, froms)) and any(
        start and until and until < start for until, start in zip(untils, froms, strict=True)
    )


def _encodable(text: str) -> bool:
    """False for text with lone surrogates (JSON can escape them; UTF-8 and Postgres cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
