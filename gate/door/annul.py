"""Undoing an admission: an annulment is a journal row of its own, never an edit.

Staff annul an admission that should not stand (the wrong person went through, the turnstile
did not turn); an admission whose passage never came is annulled by itself
(``gate.door.passage``). The row carries the admission's ticket, direction and ``ref_seq``;
the journal's trigger puts the ticket's entry state back (outside again after an entry, inside
again after an exit), sync pushes the row like any scan, and syncd marks the admission
annulled and passes the annulment on to every gate through the feed.

A group scan (gate.checkin.group) journals the scanned ticket and then each other member of
its group (via "group"), one transaction, consecutive seqs. ``whole_scan`` annuls every
admission of the scan an admission belongs to, each with its own row, in one transaction:
staff's "Annul last" undoes what the kiosk just showed, the whole group. A member that can no
longer be annulled (it moved on since) is left as it is and counted in ``skipped``.

What may be annulled, checked in the same write transaction as the row (so `gate annul` in a
terminal and the kiosk button cannot both annul one admission, and the check sees what the
running gate just wrote):

- an admission of this gate's journal (not a denial, not an annulment);
- not annulled before;
- made at most ``window`` seconds ago (``GATE_ANNUL_WINDOW``);
- still the ticket's latest movement here: after an entry the ticket is inside since that very
  entry; after an exit, outside since that exit. Once the holder has moved on (left, been
  admitted again at another gate), undoing an older movement would make the entry state lie.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from gate.store.db import Store, Writing
from gate.store.records import JournalEntry

ANNUL_REASONS = ("staff", "not_passed")
"""Why an admission was annulled: staff asked, or its passage never came."""

_ADMISSION = (
    "SELECT j.seq, j.event_id, j.ticket_id, j.direction, j.decision, j.scanned_at, j.gate,"
    " t.holder, (SELECT a.seq FROM journal a WHERE a.ref_seq = j.seq AND a.decision = 'annul')"
    " FROM journal j LEFT JOIN tickets t ON t.event_id = j.event_id AND t.ticket_id = j.ticket_id"
    " WHERE j.seq = ?"
)
_LAST_ADMISSION = "SELECT max(seq) FROM journal WHERE decision = 'admit' AND ticket_id IS NOT NULL"
_STATE = (
    "SELECT inside, last_in_at, last_in_gate, last_out_at, last_out_gate FROM entry_state"
    " WHERE event_id = ? AND ticket_id = ?"
)


# The scan an admission belongs to: its head (the last row at or before it not written for a
# group), then the group rows right after the head, up to the next row of another scan.
_HEAD = "SELECT max(seq) FROM journal WHERE seq <= ? AND via != 'group'"
_SCAN = """SELECT seq FROM journal
WHERE seq >= ?1 AND decision = 'admit' AND ticket_id IS NOT NULL
  AND (seq = ?1 OR via = 'group')
  AND seq < coalesce((SELECT min(seq) FROM journal WHERE seq > ?1 AND via != 'group'), 1 << 62)
ORDER BY seq"""


class AnnulRefused(Exception):
    """The admission cannot be annulled; the message says why, for door staff."""


@dataclass(frozen=True, slots=True)
class Annulment:
    """A committed annulment: journal row ``seq`` undoes the admission ``ref_seq``."""

    seq: int
    ref_seq: int
    event_id: int
    ticket_id: int
    direction: str
    holder: str | None
    reason: str
    at: float
    members: tuple[Annulment, ...] = ()
    """The other admissions of the same group scan annulled with this one (``whole_scan``)."""
    skipped: int = 0
    """Admissions of that scan that could not be annulled (moved on since, annulled before)."""

    @property
    def message(self) -> str:
        who = f"Ticket {self.ticket_id}" + (f" ({self.holder})" if self.holder else "")
        if self.members:
            count = 1 + len(self.members)
            where = "outside" if self.direction == "in" else "inside"
            kind = "Entry" if self.direction == "in" else "Exit"
            text = f"Group {kind.lower()} annulled: {count} tickets are {where} again ({who}"
            text += f" and {count - 1} more)"
            if self.skipped:
                text += f"; {self.skipped} had moved on and stay as they are"
            return text
        if self.direction == "in":
            return f"Entry annulled: {who} is outside again"
        return f"Exit annulled: {who} is inside again"

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": "annul",
            "annulled": True,
            "seq": self.seq,
            "ref_seq": self.ref_seq,
            "event_id": self.event_id,
            "ticket_id": self.ticket_id,
            "direction": self.direction,
            "holder": self.holder,
            "reason": self.reason,
            "at": self.at,
            "message": self.message,
            "members": [
                {"seq": m.seq, "ref_seq": m.ref_seq, "ticket_id": m.ticket_id, "holder": m.holder}
                for m in self.members
            ],
            "skipped": self.skipped,
        }


async def annul(
    store: Store,
    seq: int | None,
    *,
    gate: str,
    now: float,
    window: float,
    reason: str = "staff",
    via: str = "staff",
    whole_scan: bool = False,
) -> Annulment:
    """Annul admission ``seq`` (None: this gate's latest admission); durable on return.
    ``whole_scan``: every admission of the (group) scan it belongs to, see above.

    Raises ``AnnulRefused`` naming why nothing was written."""
    if reason not in ANNUL_REASONS:
        raise ValueError(f"unknown annul reason {reason!r}")
    if store.revoked_at is not None:  # its journal stays as it was (gate.store.wipe)
        raise AnnulRefused("Gate revoked: nothing changes until it is enrolled again")

    def work(w: Writing) -> Annulment:
        target = _last_admission(w) if seq is None else seq
        seqs = _scan_of(w, target) if whole_scan else [target]
        if target not in seqs:  # not an admission: refused below, with the reason
            seqs = [target]
        done: list[Annulment] = []
        refusals: dict[int, AnnulRefused] = {}
        for one in seqs:
            try:
                done.append(
                    _annul(w, one, gate=gate, now=now, window=window, reason=reason, via=via)
                )
            except AnnulRefused as exc:
                refusals[one] = exc
        if not done:
            raise refusals[target]
        first, *rest = done
        return replace(first, members=tuple(rest), skipped=len(refusals))

    return await store.write(work)


def _last_admission(w: Writing) -> int:
    seq = w.db.execute(_LAST_ADMISSION).fetchone()[0]
    if seq is None:
        raise AnnulRefused("Nothing to annul: this gate has admitted no one yet")
    return int(seq)


def _scan_of(w: Writing, seq: int) -> list[int]:
    """The admissions of the scan ``seq`` belongs to, in order (``seq`` alone if not a group
    scan's; empty if it names no row)."""
    head = w.db.execute(_HEAD, (seq,)).fetchone()[0]
    if head is None:
        return []
    return [row[0] for row in w.db.execute(_SCAN, (head,))]


def _annul(
    w: Writing,
    seq: int,
    *,
    gate: str,
    now: float,
    window: float,
    reason: str,
    via: str,
) -> Annulment:
    db = w.db
    row = db.execute(_ADMISSION, (seq,)).fetchone()
    if row is None:
        raise AnnulRefused(f"No scan {seq} in this gate's journal")
    _, event_id, ticket_id, direction, decision, scanned_at, at_gate, holder, annulled = row
    if decision != "admit" or ticket_id is None:
        raise AnnulRefused(f"Scan {seq} is not an admission ({decision}): nothing to annul")
    if annulled is not None:
        raise AnnulRefused(f"Scan {seq} (ticket {ticket_id}) is already annulled")
    age = now - scanned_at
    if age > window:
        raise AnnulRefused(
            f"Scan {seq} (ticket {ticket_id}) is {_span(age)} old: only admissions of the last"
            f" {_span(window)} can be annulled"
        )
    state = db.execute(_STATE, (event_id, ticket_id)).fetchone()
    if not _still_latest(state, direction, scanned_at, at_gate):
        raise AnnulRefused(
            f"Ticket {ticket_id} has moved since scan {seq}: annul its latest movement instead"
        )
    row = JournalEntry(
        direction=direction,
        outcome="annul",
        reason=reason,
        scanned_at=now,
        via=via,
        gate=gate,
        event_id=event_id,
        ticket_id=ticket_id,
        ref_seq=seq,
    )
    return Annulment(w.append(row), seq, event_id, ticket_id, direction, holder, reason, now)


def _still_latest(state: Any, direction: str, scanned_at: float, gate: str) -> bool:
    if state is None:
        return False
    inside, last_in_at, last_in_gate, last_out_at, last_out_gate = state
    if direction == "in":
        return bool(inside) and last_in_at == scanned_at and last_in_gate == gate
    return not inside and last_out_at == scanned_at and last_out_gate == gate


def _span(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
