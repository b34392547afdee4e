"""What door staff read: one short line per outcome, times in the event's time zone."""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.errors import RejectReason

FIXED: dict[RejectReason, str] = {
    RejectReason.not_a_ticket: "Not a ticket",
    RejectReason.malformed: "Forged or damaged code",
    RejectReason.bad_signature: "Forged or damaged code",
    RejectReason.unknown_key: "Not a ticket for this event",
    RejectReason.wrong_event: "Ticket for another event",
    RejectReason.key_retired: "Outdated ticket: ask for the latest QR",
    RejectReason.not_yet_valid: "Not valid yet",
    RejectReason.expired: "Ticket expired",
    RejectReason.unknown_ticket: "Unknown ticket",
    RejectReason.reissued: "Ticket reissued: ask for the latest QR",
    RejectReason.revoked: "Ticket cancelled",
    RejectReason.blocked: "Ticket blocked: call a supervisor",
    RejectReason.wrong_zone: "Wrong entrance",
    RejectReason.already_inside: "Already checked in",
    RejectReason.not_inside: "Not checked in: no entry to exit",
    RejectReason.reentry_denied: "No re-entry",
    RejectReason.not_recorded: "Not recorded: scan again",
    RejectReason.bad_holder_signature: "Copied code: not from the ticket holder's phone",
    RejectReason.code_expired: "Code expired: show the live code, not a screenshot",
    RejectReason.rotation_required: "Printed code not accepted: open the ticket wallet",
    RejectReason.gate_revoked: "Gate revoked: no scans until it is enrolled again",
}


@lru_cache(maxsize=32)
def zone_info(name: str) -> tzinfo:
    """The named time zone; UTC when the name is unknown (a bad bundle must not stop scans)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def day_time(ts: float, tz: str) -> str:
    """'Sat 18:00'."""
    return datetime.fromtimestamp(ts, zone_info(tz)).strftime("%a %H:%M")


def clock_time(ts: float, tz: str, now: float) -> str:
    """'19:02' when ``ts`` falls on the same local day as ``now``, else 'Fri 19:02'."""
    zone = zone_info(tz)
    moment = datetime.fromtimestamp(ts, zone)
    if moment.date() == datetime.fromtimestamp(now, zone).date():
        return moment.strftime("%H:%M")
    return moment.strftime("%a %H:%M")


def not_yet_valid(valid_from: int, tz: str) -> str:
    return f"Not valid until {day_time(valid_from, tz)}"


def expired(valid_until: int, tz: str) -> str:
    return f"Ticket expired {day_time(valid_until, tz)}"


def wrong_zone(zone_names: list[str]) -> str:
    if not zone_names:
        return FIXED[RejectReason.wrong_zone]
    return f"Wrong entrance: {', '.join(zone_names)}"


def already_inside(at: float | None, gate: str | None, tz: str, now: float) -> str:
    text = FIXED[RejectReason.already_inside]
    if at is not None:
        text += f" {clock_time(at, tz, now)}"
    return f"{text} at {gate}" if gate else text


def reentry_denied(left_at: float | None, tz: str, now: float) -> str:
    text = FIXED[RejectReason.reentry_denied]
    return f"{text}: left {clock_time(left_at, tz, now)}" if left_at is not None else text


def checked_out(checkout_time: str | None) -> str:
    """An exit scan of a ticket whose last entry was before the automatic check-out."""
    return f"Checked out at {checkout_time}: no entry to exit"


def reissued(rotating: bool) -> str:
    """A T2 code with an old nonce: the holder's phone was replaced, or its pass is stale."""
    if rotating:
        return "Old code: ticket moved to another phone or reissued"
    return FIXED[RejectReason.reissued]


def admitted(direction: str, reentry: bool) -> str:
    if direction == "out":
        return "Exit recorded"
    return "Welcome back" if reentry else "Welcome"
