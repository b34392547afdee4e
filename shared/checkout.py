"""Automatic check-out: at a fixed local time of the event everyone counts as outside.

An event may name a wall-clock time, ``checkout_time`` ("04:00", in the event's IANA zone; None
is off). Nothing is written when that time passes. Gates and syncd compare an admission's time
with the *boundary*, the latest check-out instant at or before now: an admission before it is
yesterday's, so the ticket is outside, and under the re-entry policy "never" it has not entered
today. A gate with no network therefore applies the check-out exactly as syncd does, and each
day of a multi-day event starts clean. An admission at the boundary itself counts for the new
day.

Daylight saving: a wall time the zone skips (spring forward) or repeats (fall back) is taken at
the later of its two candidate instants, so a skipped 02:30 is 03:30 of the new time and a
repeated 02:30 is its second occurrence. That is what PostgreSQL's ``timestamp AT TIME ZONE``
does, so syncd's SQL twin ``tessera_checkout_boundary`` (syncd/migrations/0012_checkout.sql),
which flags conflicts per check-in, agrees with this module to the second; the tests hold both
to the same answers.

An unknown zone name is read as UTC (as the gate's messages do): a bad bundle must not stop
scans. syncd only stores names tzdata knows.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "CHECKOUT_PATTERN",
    "checked_out",
    "latest_checkout",
    "next_checkout",
    "parse_checkout_time",
]

CHECKOUT_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
""""HH:MM", 00:00 to 23:59: how the setting travels (API, bundle header, feed, gate store)."""
_FORMAT = re.compile(CHECKOUT_PATTERN)
_DAYS = (0, 1, 2)  # a check-out instant lies within two local days of any moment


def parse_checkout_time(text: str) -> time:
    """The wall time of "HH:MM"; ``ValueError`` naming the expected form otherwise."""
    if not isinstance(text, str) or not _FORMAT.fullmatch(text):
        raise ValueError("checkout time must be HH:MM from 00:00 to 23:59, e.g. 04:00")
    return time(int(text[:2]), int(text[3:]))


def latest_checkout(now: float, timezone: str, checkout: str | None) -> float | None:
    """The boundary: the latest check-out instant at or before ``now`` (None: check-out off)."""
    if checkout is None:
        return None
    zone, wall = _zone(timezone), _wall(checkout)
    today = datetime.fromtimestamp(now, zone).date()
    instants = (_instant(today - timedelta(days=n), wall, zone) for n in _DAYS)
    return max(i for i in instants if i <= now)


def next_checkout(now: float, timezone: str, checkout: str | None) -> float | None:
    """The earliest check-out instant after ``now`` (None: check-out off)."""
    if checkout is None:
        return None
    zone, wall = _zone(timezone), _wall(checkout)
    today = datetime.fromtimestamp(now, zone).date()
    instants = (_instant(today + timedelta(days=n), wall, zone) for n in _DAYS)
    return min(i for i in instants if i > now)


def checked_out(at: float | None, now: float, timezone: str, checkout: str | None) -> bool:
    """Whether an admission at ``at`` lies before the boundary (None: no admission, False)."""
    boundary = latest_checkout(now, timezone, checkout)
    return at is not None and boundary is not None and at < boundary


def _instant(day: date, wall: time, zone: tzinfo) -> float:
    """Unix seconds of ``wall`` on ``day`` in ``zone``; the later reading of a skipped or
    repeated wall time (fold 0 and fold 1 differ only there)."""
    local = datetime.combine(day, wall, tzinfo=zone)
    return max(local.timestamp(), local.replace(fold=1).timestamp())


@lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


@lru_cache(maxsize=64)
def _wall(text: str) -> time:
    return parse_checkout_time(text)
