"""syncd's SQL twin of the check-out boundary (``tessera_checkout_boundary``, migration 0012)
agrees with shared.checkout to the second: on the hand-worked cases, and every 17 minutes over
two days around each daylight-saving change of zones that change at 02:00, 03:00, midnight,
by 30 minutes, or skip a whole day."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import asyncpg

from shared.checkout import latest_checkout, parse_checkout_time
from tests.shared.test_checkout import CASES

_ZONES = {
    "Europe/Berlin": 2026,
    "America/New_York": 2026,
    "America/Santiago": 2026,  # changes at midnight
    "Australia/Lord_Howe": 2026,  # changes by 30 minutes
    "Pacific/Chatham": 2026,  # +12:45 / +13:45
    "Asia/Kathmandu": 2026,  # +05:45, no change
    "Pacific/Apia": 2011,  # skipped Friday 30 December 2011
}
_TIMES = ["00:00", "00:30", "01:30", "02:30", "04:00", "23:59"]
_SQL = """SELECT tessera_checkout_boundary(u.at, u.tz, u.t) FROM unnest($1::float8[], $2::text[],
       $3::time[]) WITH ORDINALITY AS u(at, tz, t, n) ORDER BY u.n"""


def _changes(zone: str, year: int) -> list[float]:
    """Instants at which the zone's UTC offset changes during ``year`` (found hour by hour)."""
    tz, found = ZoneInfo(zone), []
    t = dt.datetime(year, 1, 1, tzinfo=dt.UTC).timestamp()
    end = dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC).timestamp()
    before = dt.datetime.fromtimestamp(t, tz).utcoffset()
    while t < end:
        t += 3600
        offset = dt.datetime.fromtimestamp(t, tz).utcoffset()
        if offset != before:
            found.append(t)
        before = offset
    return found or [dt.datetime(year, 6, 1, tzinfo=dt.UTC).timestamp()]


def _instants() -> list[tuple[float, str, str]]:
    rows = [(now, zone, checkout) for zone, checkout, now, _ in CASES]
    for zone, year in _ZONES.items():
        for change in _changes(zone, year):
            for step in range(-170, 171):
                rows += [(change + step * 1020.0, zone, t) for t in _TIMES]
    return rows


async def test_sql_and_python_boundaries_agree(db_url: str) -> None:
    rows = _instants()
    assert len(rows) > 25_000
    conn = await asyncpg.connect(db_url)
    try:
        got = await conn.fetch(
            _SQL,
            [r[0] for r in rows],
            [r[1] for r in rows],
            [parse_checkout_time(r[2]) for r in rows],
        )
        off = await conn.fetchval("SELECT tessera_checkout_boundary(1e9, 'UTC', NULL)")
    finally:
        await conn.close()
    wrong = [
        (r, g[0]) for r, g in zip(rows, got, strict=True) if g[0] != latest_checkout(r[0], *r[1:])
    ]
    assert wrong == []
    assert [g[0] for g in got[: len(CASES)]] == [case[3] for case in CASES]
    assert off is None
