"""Plain values the store hands out and takes in; no I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

Direction = Literal["in", "out"]
Outcome = Literal["admit", "deny", "annul", "passed", "tailgate"]
"""A journal row's kind: a scan's decision, or a door operation on the admission ``ref_seq``
(annul, passed) or a passage with no admission (tailgate)."""
STATUSES = ("valid", "revoked", "blocked")
"""Ticket status by its stored integer code."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A ticket-signing key as the decision needs it."""

    kid: bytes
    public_key: Ed25519PublicKey
    event_id: int | None
    active: bool


@dataclass(frozen=True, slots=True)
class EventInfo:
    event_id: int
    name: str
    timezone: str = "UTC"
    reentry: str = "after_exit"
    zones: dict[int, str] = field(default_factory=dict)  # bit index -> zone name
    ticket_count: int = 0
    list_issued_at: int = 0
    list_imported_at: float = 0.0
    rotating: bool = False  # only T2 (holder-bound rotating) codes admit
    rotation_period: int = 10  # seconds a T2 code lives
    checkout_time: str | None = None  # "HH:MM" local: everyone counts as outside (shared.checkout)


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One row of the local ticket list: everything a decision needs besides the code."""

    event_id: int
    ticket_id: int
    nonce: int
    status: str
    zone: int
    category: str
    holder: str | None
    valid_from: int = 0  # Unix seconds, 0 = no lower bound (as in the signed ticket)
    valid_until: int = 0  # Unix seconds, 0 = no upper bound


@dataclass(frozen=True, slots=True)
class EntryState:
    """Whether a ticket is inside, and where and when it last went in or out."""

    inside: bool
    last_in_at: float | None = None
    last_in_gate: str | None = None
    last_out_at: float | None = None
    last_out_gate: str | None = None
    entries: int = 0


@dataclass(frozen=True, slots=True)
class LocalState:
    """What the store knows about one ticket: its list row (None = unknown) and entry state."""

    entry: ListEntry | None
    state: EntryState | None


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalEntry:
    """One scan to record. ``gate`` names this gate in the entry state."""

    direction: Direction
    outcome: Outcome
    reason: str | None
    scanned_at: float
    via: str
    gate: str
    event_id: int | None = None
    ticket_id: int | None = None
    ref_seq: int | None = None  # annul, passed: the admission this row is about


@dataclass(frozen=True, slots=True)
class JournalRow:
    seq: int
    scan_id: bytes
    event_id: int | None
    ticket_id: int | None
    direction: Direction
    outcome: Outcome
    reason: str | None
    scanned_at: float
    via: str
    synced: bool
    ref_seq: int | None = None


@dataclass(frozen=True, slots=True)
class Stats:
    """What the display and `gate status` show."""

    events: list[EventInfo]
    admitted_today: int
    inside_now: int
    list_size: int
    list_age_seconds: float | None
    journal_size: int
    unsynced: int
    last_decisions: list[JournalRow]
