"""Reading the change feed for one gate: pages, cursors and the presence.

The cursor is the decimal feed seq the gate has applied (the same value a bundle's
``header.cursor`` carries), opaque to the gate. A page is read in one repeatable-read snapshot
together with the feed head, so when the page is the last one its cursor jumps to the head (past
this gate's own check-ins, which are left out). A cursor that is not a number, lies beyond the
head (another database) or lags more than ``feed_max_behind`` changes answers
``snapshot_required``.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.protocol import Change, ChangesPage, CheckinChange, KeyInfo, PresencePage, TicketChange
from shared.ticket import public_key_to_b64

_PAGE = """SELECT f.seq, f.kind, t.ticket_id, t.nonce, t.status, t.zone, t.category, t.holder,
       k.kid, k.public_key, k.status AS key_status,
       c.ticket_id AS c_ticket, c.gate_id AS c_gate, g.name AS gate_name, c.direction, c.at,
       c.conflict
FROM change_feed f
LEFT JOIN tickets t ON f.kind LIKE 'ticket.%' AND t.ticket_id = f.ticket_id
LEFT JOIN signing_keys k ON f.kid IS NOT NULL AND k.event_id = f.event_id AND k.kid = f.kid
LEFT JOIN checkins c ON f.gate_id IS NOT NULL AND c.gate_id = f.gate_id AND c.seq = f.gate_seq
LEFT JOIN gates g ON g.gate_id = c.gate_id
WHERE f.event_id = $1 AND f.seq > $2 AND f.gate_id IS DISTINCT FROM $3
ORDER BY f.seq LIMIT $4"""

_PRESENCE = """SELECT l.ticket_id AS c_ticket, l.gate_id AS c_gate, g.name AS gate_name,
       l.direction, l.at, l.conflict
FROM (SELECT DISTINCT ON (ticket_id) ticket_id, gate_id, direction, at, conflict FROM checkins
      WHERE event_id = $1 AND outcome = 'admit' AND ticket_id IS NOT NULL
      ORDER BY ticket_id, at DESC, gate_id DESC, seq DESC) l
JOIN gates g ON g.gate_id = l.gate_id
WHERE l.direction = 'in' ORDER BY l.at"""


@dataclass(frozen=True, slots=True)
class Reader:
    event_id: int
    gate_id: int
    page_size: int
    max_behind: int


def parse_cursor(text: str) -> int | None:
    if text == "":
        return 0
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    return int(text)


async def head(conn: asyncpg.Connection | asyncpg.Pool, event_id: int) -> int:
    return int(await conn.fetchval("SELECT change_seq FROM events WHERE event_id = $1", event_id))


async def read_page(pool: asyncpg.Pool, reader: Reader, cursor: str) -> ChangesPage:
    """One page after ``cursor`` (possibly empty; never waits)."""
    after = parse_cursor(cursor)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        top = await head(conn, reader.event_id)
        if after is None or after > top or top - after > reader.max_behind:
            return ChangesPage(cursor=cursor, snapshot_required=True)
        rows = await conn.fetch(_PAGE, reader.event_id, after, reader.gate_id, reader.page_size + 1)
    more = len(rows) > reader.page_size
    rows = rows[: reader.page_size]
    last = rows[-1]["seq"] if more else top
    return ChangesPage(cursor=str(last), changes=[_change(r) for r in rows], more=more)


def _change(r: asyncpg.Record) -> Change:
    kind = r["kind"]
    if kind.startswith("ticket.") and r["ticket_id"] is not None:
        return Change(seq=r["seq"], kind=kind, ticket=_ticket(r))
    if kind.startswith("key.") and r["kid"] is not None:
        return Change(seq=r["seq"], kind=kind, key=_key(r))
    if kind.startswith("checkin.") and r["c_ticket"] is not None:
        return Change(seq=r["seq"], kind=kind, checkin=checkin_change(r))
    return Change(seq=r["seq"], kind=kind)


def _ticket(r: asyncpg.Record) -> TicketChange:
    return TicketChange(
        ticket_id=r["ticket_id"],
        nonce=r["nonce"],
        status=r["status"],
        zone=r["zone"],
        category=r["category"],
        holder=r["holder"] or None,
    )


def _key(r: asyncpg.Record) -> KeyInfo:
    return key_info(r["kid"], r["public_key"], r["key_status"])


def key_info(kid: bytes, public_key: bytes, status: str) -> KeyInfo:
    public = Ed25519PublicKey.from_public_bytes(bytes(public_key))
    return KeyInfo.model_validate(
        {"kid": bytes(kid).hex(), "public_key": public_key_to_b64(public), "status": status}
    )


def checkin_change(r: asyncpg.Record) -> CheckinChange:
    return CheckinChange(
        ticket_id=r["c_ticket"],
        gate_id=r["c_gate"],
        gate_name=r["gate_name"],
        direction=r["direction"],
        at=r["at"],
        conflict=r["conflict"],
    )


async def presence(pool: asyncpg.Pool, event_id: int) -> PresencePage:
    """Who is inside now (latest admission per ticket is an "in"), with the feed position."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        top = await head(conn, event_id)
        rows = await conn.fetch(_PRESENCE, event_id)
    return PresencePage(cursor=str(top), inside=[checkin_change(r) for r in rows])
