"""The gate's decision, as pure functions: no I/O, no clock; ``now`` is passed in.

docs/design.md section 2 fixes the order, stopping at the first failure:

1. ``verify_code`` (needs only the keys and the event's rotation settings): format -> key known
   and active for this event -> signature -> for a T2 code (shared.rotating) the holder's
   signature, then its step within one of the gate's (``code_expired`` otherwise); for a static
   T1 code of an event that requires rotating codes ``rotation_required`` -> validity window
   (with clock tolerance);
2. ``decide`` (needs the ticket's list row and entry state): in the local list -> nonce equals
   the list's current nonce -> status (revoked, blocked) -> zone allowed at this gate -> entry
   state (already inside, re-entry policy, exit mode).

The entry state is read as of the event's automatic check-out (shared.checkout): an entry
before its latest check-out instant is yesterday's, so the ticket is outside and, under the
re-entry policy "never", has not entered today; an exit scan then finds no entry to leave by.
A gate with no network applies it alike: it needs only the event's settings and the clock.

A manual admit (a ticket number, no code) has no signature and no nonce to check; it applies
every other rule from the list row: in the local list -> validity window (the list's dates, the
same clock tolerance) -> status -> zone -> entry state. The window comes after the list look-up
there only because the list is where the dates are; the outcome is the one a scan would give.

The pipeline records the result durably before anyone sees it. The zone checked is the list's
(the newer truth once the nonce matched: an organiser can upgrade a ticket without reissuing it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gate.checkin import messages
from gate.checkin.decision import Decision
from gate.settings import GateSettings
from gate.store.records import Direction, EntryState, EventInfo, KeyInfo, ListEntry, LocalState
from shared.checkout import checked_out
from shared.errors import RejectReason, TicketRejected
from shared.rotating import check_holder, check_step, parse_code
from shared.ticket import ALL_ZONES, Ticket, check_window, verify_signature

__all__ = [
    "Clock",
    "CodeRejectedError",
    "Context",
    "Decision",
    "decide",
    "deny",
    "rejected",
    "verify_code",
]


@dataclass(frozen=True, slots=True)
class Context:
    """Everything about the scan that is not the ticket: who, where, when, which way."""

    settings: GateSettings
    direction: Direction
    now: float
    via: str = "scanner"


class CodeRejectedError(TicketRejected):
    """``verify_code`` failed; ``ticket`` is set when the event's signature was good."""

    def __init__(self, cause: TicketRejected, ticket: Ticket | None = None) -> None:
        super().__init__(cause.reason, cause.detail)
        self.ticket = ticket


@dataclass(frozen=True, slots=True)
class Clock:
    """The gate's time and the clock error it forgives: ``tolerance`` seconds on validity
    windows, ``rotation`` seconds beyond the one step either side a T2 code may be off."""

    now: float
    tolerance: float
    rotation: float = 0.0


def verify_code(
    text: str, keys: Mapping[bytes, KeyInfo], events: Mapping[int, EventInfo], clock: Clock
) -> Ticket:
    """Step 1: the code itself. Raises ``CodeRejectedError``; never anything else."""
    try:
        ticket = _authenticate(text, keys)
    except TicketRejected as exc:
        raise CodeRejectedError(exc) from None
    try:
        _check_rotation(ticket, events.get(ticket.event_id), clock)
        check_window(ticket, clock.now, clock.tolerance)
    except TicketRejected as exc:
        raise CodeRejectedError(exc, ticket) from None
    return ticket


def _check_rotation(ticket: Ticket, event: EventInfo | None, clock: Clock) -> None:
    """A T2 code: the holder's signature, then its step; a T1 code: allowed by the event?"""
    if ticket.rotating:
        check_holder(ticket)
        period = event.rotation_period if event else 10
        check_step(ticket, clock.now, period, clock.rotation)
    elif event is not None and event.rotating:
        raise TicketRejected(RejectReason.rotation_required, "the event requires rotating codes")


def _authenticate(text: str, keys: Mapping[bytes, KeyInfo]) -> Ticket:
    ticket = parse_code(text)
    key = keys.get(ticket.kid)
    if key is None or key.event_id is None:
        raise TicketRejected(RejectReason.unknown_key, f"no key {ticket.kid.hex()}")
    if key.event_id != ticket.event_id:
        raise TicketRejected(RejectReason.wrong_event, f"key signs event {key.event_id}")
    if not key.active:
        raise TicketRejected(RejectReason.key_retired, f"key {ticket.kid.hex()} is retired")
    verify_signature(ticket, {ticket.kid: key.public_key})
    return ticket


def rejected(exc: CodeRejectedError, events: Mapping[int, EventInfo], ctx: Context) -> Decision:
    """The decision for a code that failed ``verify_code``."""
    ticket = exc.ticket
    if ticket is None:
        return deny(exc.reason, ctx)
    event = events.get(ticket.event_id)
    tz = event.timezone if event else "UTC"
    if exc.reason is RejectReason.not_yet_valid:
        message = messages.not_yet_valid(ticket.valid_from, tz)
    elif exc.reason is RejectReason.expired:
        message = messages.expired(ticket.valid_until, tz)
    else:
        message = messages.FIXED[exc.reason]
    return deny(
        exc.reason, ctx, message=message, ticket_id=ticket.ticket_id, event_id=ticket.event_id
    )


def decide(
    ticket: Ticket | None,
    local: LocalState,
    event: EventInfo,
    ctx: Context,
    *,
    ticket_id: int | None = None,
) -> Decision:
    """Steps 5-9 for a verified ticket; ``ticket=None`` is a manual look-up (no code, no nonce)
    of ``ticket_id`` (named in a denial even when the list does not know it)."""
    entry = local.entry
    if entry is None:
        ticket_id = ticket.ticket_id if ticket else ticket_id
        return deny(RejectReason.unknown_ticket, ctx, ticket_id=ticket_id, event_id=event.event_id)
    reason, message = _list_rules(ticket, entry, event, ctx)
    if reason is None:
        reason, message = _entry_rules(local.state, event, ctx)
    if reason is not None:
        return deny(reason, ctx, message=message, entry=entry)
    reentry = _entered_today(local.state, event, ctx.now)
    return Decision(
        outcome="admit",
        reason=None,
        message=messages.admitted(ctx.direction, reentry),
        ticket_id=entry.ticket_id,
        event_id=entry.event_id,
        category=entry.category,
        holder=entry.holder,
        direction=ctx.direction,
        via=ctx.via,
        scanned_at=ctx.now,
    )


def deny(
    reason: RejectReason,
    ctx: Context,
    *,
    message: str | None = None,
    entry: ListEntry | None = None,
    ticket_id: int | None = None,
    event_id: int | None = None,
) -> Decision:
    return Decision(
        outcome="deny",
        reason=reason,
        message=message or messages.FIXED[reason],
        ticket_id=entry.ticket_id if entry else ticket_id,
        event_id=entry.event_id if entry else event_id,
        category=entry.category if entry else "",
        holder=entry.holder if entry else None,
        direction=ctx.direction,
        via=ctx.via,
        scanned_at=ctx.now,
    )


def _list_rules(
    ticket: Ticket | None, entry: ListEntry, event: EventInfo, ctx: Context
) -> tuple[RejectReason | None, str]:
    if ticket is not None and ticket.nonce != entry.nonce:
        return RejectReason.reissued, messages.reissued(ticket.rotating)
    if ticket is None:  # a scan checked the signed window in verify_code
        reason, message = _window_rule(entry, event, ctx)
        if reason is not None:
            return reason, message
    if entry.status == "revoked":
        return RejectReason.revoked, messages.FIXED[RejectReason.revoked]
    if entry.status == "blocked":
        return RejectReason.blocked, messages.FIXED[RejectReason.blocked]
    if not entry.zone & zone_mask(ctx.settings.zones, event.zones):
        names = [name for bit, name in sorted(event.zones.items()) if entry.zone >> bit & 1]
        return RejectReason.wrong_zone, messages.wrong_zone(names)
    return None, ""


def _window_rule(
    entry: ListEntry, event: EventInfo, ctx: Context
) -> tuple[RejectReason | None, str]:
    """The validity window of a manual admit, from the list, with the gate's clock tolerance."""
    tolerance = ctx.settings.clock_tolerance
    if entry.valid_from and ctx.now + tolerance < entry.valid_from:
        return RejectReason.not_yet_valid, messages.not_yet_valid(entry.valid_from, event.timezone)
    if entry.valid_until and ctx.now - tolerance > entry.valid_until:
        return RejectReason.expired, messages.expired(entry.valid_until, event.timezone)
    return None, ""


def _checked_out(state: EntryState | None, event: EventInfo, now: float) -> bool:
    """Whether the ticket's last entry was before the event's automatic check-out."""
    if state is None:
        return False
    return checked_out(state.last_in_at, now, event.timezone, event.checkout_time)


def _entered_today(state: EntryState | None, event: EventInfo, now: float) -> bool:
    """Whether the ticket entered since the event's automatic check-out (ever, without one)."""
    entered = state is not None and state.last_in_at is not None
    return entered and not _checked_out(state, event, now)


def _entry_rules(
    state: EntryState | None, event: EventInfo, ctx: Context
) -> tuple[RejectReason | None, str]:
    tz = event.timezone
    if _checked_out(state, event, ctx.now):  # a new day: outside, whatever last night said
        if ctx.direction == "out":
            return RejectReason.not_inside, messages.checked_out(event.checkout_time)
        return None, ""
    if ctx.direction == "out":
        if state is None or not state.inside:
            return RejectReason.not_inside, messages.FIXED[RejectReason.not_inside]
        return None, ""
    policy = ctx.settings.reentry or event.reentry
    if state is None or policy == "always":
        return None, ""
    if state.inside:
        text = messages.already_inside(state.last_in_at, state.last_in_gate, tz, ctx.now)
        return RejectReason.already_inside, text
    if policy == "never" and state.last_in_at is not None:
        return RejectReason.reentry_denied, messages.reentry_denied(state.last_out_at, tz, ctx.now)
    return None, ""


def zone_mask(gate_zones: list[str] | tuple[str, ...], event_zones: Mapping[int, str]) -> int:
    """The bit mask of zones a gate opens: names via the event's zone table, or bit indexes.

    An empty list opens every zone. Names the event does not define contribute nothing (the
    configuration check reports them).
    """
    if not gate_zones:
        return ALL_ZONES
    by_name = {name.casefold(): bit for bit, name in event_zones.items()}
    mask = 0
    for zone in gate_zones:
        bit = int(zone) if zone.isdigit() else by_name.get(zone.casefold())
        if bit is not None and 0 <= bit < 16:
            mask |= 1 << bit
    return mask
