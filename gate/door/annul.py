"""Undoing an admission: an annulment is a journal row of its own, never an edit.

Staff annul an admission that should not stand (the wrong person went through, the turnstile
did not turn); an admission whose passage never came is annulled by itself
(``gate.door.passage``). The row carries the admission's ticket, direction and ``ref_seq``;
the journal's trigger puts the ticket's entry state back (outside again after an entry, inside
again after an exit), sync pushes the row like any scan, and syncd marks the admission
annulled and passes the annulment on to every gate through the feed.

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

from dataclasses import dataclass
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

    @property
    def message(self) -> str:
        who = f"Ticket {self.ticket_id}" + (f" ({self.holder})" if self.holder else "")
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
) -> Annulment:
    """Annul admission ``seq`` (None: this gate's latest admission); durable on return.

    Raises ``AnnulRefused`` naming why nothing was written."""
    if reason not in ANNUL_REASONS:
        raise ValueError(f"unknown annul reason {reason!r}")
    if store.revoked_at is not None:  # its journal stays as it was (gate.store.wipe)
        raise AnnulRefused("Gate revoked: nothing changes until it is enrolled again")

    return await store.write(
        lambda w: _annul(w, seq, gate=gate, now=now, window=window, reason=reason, via=via)
    )


def _annul(
    w: Writing,
    seq: int | None,
    *,
    gate: str,
    now: float,
    window: float,
    reason: str,
    via: str,
) -> Annulment:
    db = w.db
    if seq is None:
        seq = db.execute(_LAST_ADMISSION).fetchone()[0]
        if seq is None:
            raise AnnulRefused("Nothing to annul: this gate has admitted no one yet")
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
