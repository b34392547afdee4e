"""Storing a gate's pushed check-ins: once each, in the feed, in the outbox, conflicts flagged.

One push is one call of ``tessera_store_push`` (``migrations/0004_push.sql``): one round trip and
one short transaction whose steps are ordered so that the event row lock (which serialises every
writer of the event's feed) is taken last and held only for the feed insert and the commit:

1. the gate row is locked (pushes of one gate queue up) and its skew recorded;
2. the batch is inserted ``ON CONFLICT (gate_id, seq) DO NOTHING``; in the same statement every
   new row gets its outbox message (with ``stored_at``, syncd's clock just before commit);
3. transaction-scoped advisory locks are taken on the admitted tickets (sorted, so pushes never
   deadlock): pushes touching the same ticket recompute its conflicts one after the other;
4. the admissions of the tickets touched are re-ordered by corrected time and their
   ``conflict`` flags recomputed (a later "in" while the ticket is already inside is a conflict;
   an earlier admission pushed late turns the one stored before it into the conflict); each
   row that becomes a conflict gets a ``checkin.conflict`` outbox message;
5. the gate's highest contiguous seq is advanced;
6. the new admissions get feed seqs from ``events.change_seq``; its row lock is held until
   commit, so the feed stays gap-free and its seqs become visible in order.

A stored seq whose ``scan_id`` differs is ``JournalClash`` (HTTP 409) and nothing of the batch
is kept. Retrying a batch stores nothing new and answers the same ``acked_seq``.

A replica runs at most ``SYNCD_PUSH_CONCURRENCY`` pushes at once (``PUSH_SLOTS``, taken before a
pool connection): more would only queue on the event row lock while taking CPU from Postgres
and the outbox relay.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from shared.protocol import PushRequest

PUSH_SLOTS = web.AppKey("push_slots", asyncio.Semaphore)
_STORE = """SELECT acked, stored, conflicts
FROM tessera_store_push($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"""
_CLASH_STATE = "TS409"  # raised by tessera_store_push, the seq in DETAIL
_MAX_TICKET = 2**63 - 1


class JournalClash(Exception):
    """A pushed seq is already stored with another scan_id (the gate's journal was replaced)."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"seq {seq} is already stored with a different scan_id")
        self.seq = seq


@dataclass(frozen=True, slots=True)
class Stored:
    acked_seq: int
    stored: int
    conflicts: int


def _columns(push: PushRequest) -> list[list]:
    rows = push.checkins
    return [
        [c.seq for c in rows],
        [bytes.fromhex(c.scan_id) for c in rows],
        [
            c.ticket_id if c.ticket_id is not None and c.ticket_id <= _MAX_TICKET else None
            for c in rows
        ],
        [c.direction for c in rows],
        [c.outcome for c in rows],
        [c.reason for c in rows],
        [c.via for c in rows],
        [c.scanned_at for c in rows],
    ]


async def store_push(
    conn: asyncpg.Connection, gate_id: int, push: PushRequest, skew: float
) -> Stored:
    """Store one batch in one transaction (see the module docstring)."""
    try:
        row = await conn.fetchrow(_STORE, gate_id, skew, *_columns(push))
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == _CLASH_STATE:
            raise JournalClash(int(exc.detail or 0)) from None
        raise
    assert row is not None
    return Stored(int(row["acked"]), int(row["stored"]), int(row["conflicts"]))
