"""The automatic check-out's boundary (shared/checkout.py): the latest check-out instant at or
before now, in the event's zone, through daylight-saving days, far from UTC, and exactly at the
check-out time. tests/syncd/checkout/test_boundary_sql.py holds the SQL twin to the same cases."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.checkout import checked_out, latest_checkout, next_checkout, parse_checkout_time


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[arg-type, misc]


# (zone, check-out time, now, boundary): every value worked out by hand from the zone's rules.
CASES = [
    # A summer day in Berlin: 04:00 CEST is 02:00 UTC; one second before, it is yesterday's.
    ("Europe/Berlin", "04:00", utc(2026, 6, 13, 16, 0), utc(2026, 6, 13, 2, 0)),
    ("Europe/Berlin", "04:00", utc(2026, 6, 13, 1, 59, 59), utc(2026, 6, 12, 2, 0)),
    ("Europe/Berlin", "04:00", utc(2026, 6, 13, 2, 0), utc(2026, 6, 13, 2, 0)),  # exactly at it
    # Spring forward, Sun 29 Mar 2026 (02:00 CET -> 03:00 CEST): 04:00 is CEST that day, CET
    # the day before; the skipped 02:30 is read as 03:30 CEST.
    ("Europe/Berlin", "04:00", utc(2026, 3, 29, 12, 0), utc(2026, 3, 29, 2, 0)),
    ("Europe/Berlin", "04:00", utc(2026, 3, 29, 1, 0), utc(2026, 3, 28, 3, 0)),
    ("Europe/Berlin", "02:30", utc(2026, 3, 29, 12, 0), utc(2026, 3, 29, 1, 30)),
    # Fall back, Sun 25 Oct 2026 (03:00 CEST -> 02:00 CET): the repeated 02:30 counts at its
    # second occurrence (CET, 01:30 UTC); before that, yesterday's 02:30 CEST is the boundary.
    ("Europe/Berlin", "02:30", utc(2026, 10, 25, 1, 0), utc(2026, 10, 24, 0, 30)),
    ("Europe/Berlin", "02:30", utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 1, 30)),
    ("Europe/Berlin", "04:00", utc(2026, 10, 25, 12, 0), utc(2026, 10, 25, 3, 0)),
    # New York, spring forward Sun 8 Mar 2026 (02:00 EST -> 03:00 EDT): skipped 02:30 is 03:30
    # EDT; fall back Sun 1 Nov 2026 (02:00 EDT -> 01:00 EST): 01:30 counts at 01:30 EST.
    ("America/New_York", "02:30", utc(2026, 3, 8, 12, 0), utc(2026, 3, 8, 7, 30)),
    ("America/New_York", "04:00", utc(2026, 3, 8, 12, 0), utc(2026, 3, 8, 8, 0)),
    ("America/New_York", "04:00", utc(2026, 3, 8, 7, 59), utc(2026, 3, 7, 9, 0)),
    ("America/New_York", "01:30", utc(2026, 11, 1, 6, 0), utc(2026, 10, 31, 5, 30)),
    ("America/New_York", "01:30", utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 6, 30)),
    ("America/New_York", "04:00", utc(2026, 11, 1, 9, 0), utc(2026, 11, 1, 9, 0)),
    # Far from UTC: Kiritimati is +14 (04:00 local is 14:00 UTC the day before), Pago Pago -11,
    # Chatham +12:45 in June.
    ("Pacific/Kiritimati", "04:00", utc(2026, 6, 13, 13, 0), utc(2026, 6, 12, 14, 0)),
    ("Pacific/Kiritimati", "04:00", utc(2026, 6, 13, 14, 0), utc(2026, 6, 13, 14, 0)),
    ("Pacific/Pago_Pago", "04:00", utc(2026, 6, 13, 14, 59), utc(2026, 6, 12, 15, 0)),
    ("Pacific/Chatham", "04:00", utc(2026, 6, 13, 0, 0), utc(2026, 6, 12, 15, 15)),
    # Santiago springs forward at midnight (Sun 6 Sep 2026, 00:00 -04 -> 01:00 -03): the
    # skipped 00:30 is 01:30 -03, later than midnight.
    ("America/Santiago", "00:30", utc(2026, 9, 6, 4, 29), utc(2026, 9, 5, 4, 30)),
    ("America/Santiago", "00:30", utc(2026, 9, 6, 4, 30), utc(2026, 9, 6, 4, 30)),
    ("UTC", "00:00", utc(2026, 6, 13), utc(2026, 6, 13)),
    ("UTC", "23:59", utc(2026, 6, 13, 23, 58), utc(2026, 6, 12, 23, 59)),
]


@pytest.mark.parametrize(("zone", "checkout", "now", "boundary"), CASES)
def test_the_boundary_is_the_latest_checkout_at_or_before_now(
    zone: str, checkout: str, now: float, boundary: float
) -> None:
    assert latest_checkout(now, zone, checkout) == boundary
    assert next_checkout(boundary, zone, checkout) > max(now, boundary)


def test_the_next_checkout_follows_the_boundary() -> None:
    sat = utc(2026, 6, 13, 2, 0)  # 04:00 Berlin
    assert next_checkout(sat, "Europe/Berlin", "04:00") == sat + 86400
    assert next_checkout(sat - 1, "Europe/Berlin", "04:00") == sat
    # The spring-forward day has 23 hours, the fall-back day 25.
    spring = utc(2026, 3, 28, 3, 0)
    assert next_checkout(spring, "Europe/Berlin", "04:00") == spring + 23 * 3600
    autumn = utc(2026, 10, 24, 2, 0)
    assert next_checkout(autumn, "Europe/Berlin", "04:00") == autumn + 25 * 3600


def test_checked_out_means_before_the_boundary() -> None:
    boundary = utc(2026, 6, 13, 2, 0)
    now = boundary + 3600
    assert checked_out(boundary - 0.001, now, "Europe/Berlin", "04:00")
    assert not checked_out(boundary, now, "Europe/Berlin", "04:00")  # counts for the new day
    assert not checked_out(None, now, "Europe/Berlin", "04:00")  # never admitted
    assert not checked_out(boundary - 86400 * 30, now, "Europe/Berlin", None)  # off
    assert latest_checkout(now, "Europe/Berlin", None) is None
    assert next_checkout(now, "Europe/Berlin", None) is None


def test_an_unknown_zone_is_read_as_utc() -> None:
    """A bad bundle must not stop scans: the gate decides by UTC rather than fail."""
    now = utc(2026, 6, 13, 16, 0)
    assert latest_checkout(now, "Mars/Olympus_Mons", "04:00") == utc(2026, 6, 13, 4, 0)
    assert latest_checkout(now, "../../etc/passwd", "04:00") == utc(2026, 6, 13, 4, 0)


@pytest.mark.parametrize("text", ["00:00", "04:00", "23:59", "12:30"])
def test_good_checkout_times(text: str) -> None:
    assert parse_checkout_time(text).strftime("%H:%M") == text


@pytest.mark.parametrize(
    "text",
    [
        "24:00",
        "25:00",
        "4:00",
        "04:60",
        "04:00:00",
        " 04:00",
        "04:00\n",
        "",
        "04h00",
        "\u0660\u0664:\u0660\u0660",
    ],
)
def test_bad_checkout_times_are_refused_by_name(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_checkout_time(text)


def test_a_checkout_time_that_is_no_text_is_refused() -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_checkout_time(400)  # type: ignore[arg-type]


ZONES = ["Europe/Berlin", "America/New_York", "Pacific/Chatham", "Australia/Lord_Howe", "UTC"]


@settings(max_examples=300, deadline=None)
@given(
    now=st.floats(min_value=946684800, max_value=2082758400, allow_nan=False),
    zone=st.sampled_from(ZONES),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
)
def test_boundaries_are_consecutive_and_on_the_wall_time(
    now: float, zone: str, hour: int, minute: int
) -> None:
    """No check-out instant lies between the boundary and the next one, and each falls on the
    check-out time on the local clock (or just after it, on the day that skips it)."""
    checkout = f"{hour:02d}:{minute:02d}"
    last = latest_checkout(now, zone, checkout)
    upcoming = next_checkout(now, zone, checkout)
    assert last is not None and upcoming is not None
    assert last <= now < upcoming
    assert latest_checkout(last, zone, checkout) == last
    assert next_checkout(last, zone, checkout) == upcoming
    assert 22 * 3600 <= upcoming - last <= 26 * 3600
    wall = datetime.fromtimestamp(last, ZoneInfo(zone))
    minutes = wall.hour * 60 + wall.minute - (hour * 60 + minute)
    assert 0 <= minutes % 1440 <= 60 and wall.second == 0
