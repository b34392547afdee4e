"""Storing a gate's pushed check-ins: once each, in the feed, in the outbox, conflicts flagged.

One push is one transaction of up to six statements, ordered so that the event row lock (which
serialises every writer of the event's feed) is taken last and held only for the feed insert
and the commit:

1. the gate row is locked (pushes of one gate queue up) and its skew recorded;
2. the batch is inserted ``ON CONFLICT (gate_id, seq) DO NOTHING``; in the same statement every
   new row gets its outbox message;
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
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass

import asyncpg

from shared.protocol import PushRequest

_LOCK_GATE = """UPDATE gates g SET skew = $2, last_push_at = now() FROM events e
WHERE g.gate_id = $1 AND e.event_id = g.event_id
RETURNING g.event_id, g.name, e.reentry,
    set_config('tessera.feed_writer', 'checkins', true) AS writer"""

_STORE = """WITH u AS (
    SELECT * FROM unnest($4::bigint[], $5::bytea[], $6::bigint[], $7::text[], $8::text[],
                         $9::text[], $10::text[], $11::float8[])
        AS u(seq, scan_id, ticket_id, direction, outcome, reason, via, scanned_at)
), ins AS (
    INSERT INTO checkins (gate_id, seq, event_id, scan_id, ticket_id, direction, outcome, reason,
                          via, scanned_at, at, skew)
    SELECT $1, seq, $2, scan_id, ticket_id, direction, outcome, reason, via, scanned_at,
           scanned_at + $3, $3 FROM u
    ON CONFLICT (gate_id, seq) DO NOTHING
    RETURNING seq, scan_id, ticket_id, direction, outcome, reason, via, scanned_at, at
), adm AS (
    SELECT seq, ticket_id, direction FROM ins WHERE outcome = 'admit' AND ticket_id IS NOT NULL
), keyed AS (
    SELECT ins.*, CASE WHEN outcome = 'deny' THEN 'checkin.invalid'
                       WHEN direction = 'in' THEN 'checkin.performed'
                       ELSE 'checkout.performed' END AS rk FROM ins
), ob AS (
    INSERT INTO outbox (routing_key, event_id, body)
    SELECT rk, $2, jsonb_build_object('type', rk, 'event_id', $2, 'gate_id', $1,
        'gate_name', $12::text, 'seq', seq, 'scan_id', encode(scan_id, 'hex'),
        'ticket_id', ticket_id, 'direction', direction, 'outcome', outcome, 'reason', reason,
        'via', via, 'scanned_at', scanned_at, 'at', at, 'skew', $3::float8)
    FROM keyed ORDER BY seq
)
SELECT (SELECT count(*) FROM ins) AS stored,
       (SELECT array_agg(seq ORDER BY seq) FROM adm) AS adm_seqs,
       (SELECT array_agg(ticket_id ORDER BY seq) FROM adm) AS adm_tickets,
       (SELECT array_agg('checkin.' || direction ORDER BY seq) FROM adm) AS adm_kinds,
       (SELECT array_agg(DISTINCT ticket_id) FROM adm) AS tickets"""

# Pushes touching the same ticket recompute its conflicts one after the other (each then sees
# the other's committed rows); keys sorted so two pushes never wait on each other in a cycle.
# Hash collisions only serialise a little more. The two-int key space is apart from db.py's.
_LOCK_TICKETS = """SELECT count(pg_advisory_xact_lock(29525, k)) FROM (
    SELECT DISTINCT hashint8(t) AS k FROM unnest($1::bigint[]) t ORDER BY k) s"""

# Last and short: the event row lock serialises feed writers until commit, so feed seqs are
# gap-free and become visible in order.
_FEED = """WITH lock AS (
    UPDATE events SET change_seq = change_seq + cardinality($2::bigint[]) WHERE event_id = $1
    RETURNING change_seq - cardinality($2::bigint[]) AS base
)
INSERT INTO change_feed (event_id, seq, kind, ticket_id, gate_id, gate_seq)
SELECT $1, lock.base + a.n, a.kind, a.ticket_id, $5, a.gate_seq
FROM lock, unnest($2::bigint[], $3::bigint[], $4::text[]) WITH ORDINALITY
    AS a(gate_seq, ticket_id, kind, n)"""

_CLASH = """SELECT c.seq FROM checkins c
JOIN unnest($2::bigint[], $3::bytea[]) AS u(seq, scan_id) ON c.seq = u.seq
WHERE c.gate_id = $1 AND c.scan_id <> u.scan_id ORDER BY c.seq LIMIT 1"""

_CONFLICTS = """WITH w AS (
    SELECT c.gate_id, c.seq, c.ticket_id, c.direction, c.at, c.conflict,
           lag(direction) OVER o AS prev_dir, lag(gate_id) OVER o AS prev_gate,
           lag(at) OVER o AS prev_at,
           count(*) FILTER (WHERE direction = 'in') OVER (o ROWS BETWEEN UNBOUNDED PRECEDING
                                                          AND 1 PRECEDING) AS earlier_ins
    -- One index look-up per ticket, whatever the statistics say: OFFSET 0 keeps the planner
    -- from flattening the subquery into one scan of the event's admissions (with stale stats on
    -- a table that grew fast it did: 36 ms a push, growing with the table).
    FROM unnest($2::bigint[]) AS t(id) CROSS JOIN LATERAL (
        SELECT * FROM checkins c
        WHERE c.event_id = $1 AND c.ticket_id = t.id AND c.outcome = 'admit' OFFSET 0) c
    WINDOW o AS (PARTITION BY ticket_id ORDER BY at, gate_id, seq)
), t AS (
    SELECT *, (direction = 'in' AND CASE WHEN $3 = 'never' THEN earlier_ins > 0
                                         ELSE coalesce(prev_dir = 'in', false) END) AS should
    FROM w
), upd AS (
    UPDATE checkins c SET conflict = t.should FROM t
    WHERE c.gate_id = t.gate_id AND c.seq = t.seq AND c.conflict <> t.should
    RETURNING c.gate_id, c.seq, c.scan_id, c.ticket_id, c.at, c.conflict, t.prev_gate, t.prev_at
), ob AS (
    INSERT INTO outbox (routing_key, event_id, body)
    SELECT 'checkin.conflict', $1, jsonb_build_object('type', 'checkin.conflict',
        'event_id', $1, 'gate_id', upd.gate_id, 'gate_name', g.name, 'seq', upd.seq,
        'scan_id', encode(upd.scan_id, 'hex'), 'ticket_id', upd.ticket_id, 'at', upd.at,
        'entry', jsonb_build_object('gate_id', upd.prev_gate, 'gate_name', pg.name,
                                    'at', upd.prev_at))
    FROM upd JOIN gates g ON g.gate_id = upd.gate_id
    LEFT JOIN gates pg ON pg.gate_id = upd.prev_gate
    WHERE upd.conflict
)
SELECT count(*) FILTER (WHERE conflict) FROM upd"""

_ACK = """UPDATE gates SET acked_seq = coalesce((
    SELECT max(seq) FROM (
        SELECT seq, seq - row_number() OVER (ORDER BY seq) AS run FROM checkins
        WHERE gate_id = $1 AND seq > gates.acked_seq) x
    WHERE run = gates.acked_seq), acked_seq)
WHERE gate_id = $1 RETURNING acked_seq"""

_MAX_TICKET = 2**63 - 1
# At most this many push transactions of this replica at once: more only queue on the event
# row lock while taking CPU from Postgres and the outbox relay. bench_sync, 16 gates x 100 on 2
# cores: unbounded 2,477 check-ins/s with the relay 23k messages behind; 4 at once 2,164/s,
# fan-out p99 ~1.6 s; 2 at once 2,035/s, ~0.45 s; 1 at once 1,695/s, ~0.15 s. One semaphore per
# event loop (tests run many loops in one process).
_CONCURRENT_PUSHES = 2
_PUSHING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _pushing() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if (sem := _PUSHING.get(loop)) is None:
        sem = _PUSHING[loop] = asyncio.Semaphore(_CONCURRENT_PUSHES)
    return sem


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
    async with _pushing(), conn.transaction():
        gate = await conn.fetchrow(_LOCK_GATE, gate_id, skew)
        assert gate is not None, "gate vanished while its credential was valid"
        cols = _columns(push)
        row = await conn.fetchrow(_STORE, gate_id, gate["event_id"], skew, *cols, gate["name"])
        if row["stored"] < len(push.checkins):
            clash = await conn.fetchval(_CLASH, gate_id, cols[0], cols[1])
            if clash is not None:
                raise JournalClash(clash)
        conflicts = 0
        if row["tickets"] and gate["reentry"] != "always":
            await conn.fetchval(_LOCK_TICKETS, row["tickets"])
            conflicts = await conn.fetchval(
                _CONFLICTS, gate["event_id"], row["tickets"], gate["reentry"]
            )
        acked = await conn.fetchval(_ACK, gate_id)
        if row["adm_seqs"]:
            await conn.execute(
                _FEED,
                gate["event_id"],
                row["adm_seqs"],
                row["adm_tickets"],
                row["adm_kinds"],
                gate_id,
            )
    return Stored(int(acked), int(row["stored"]), int(conflicts))
