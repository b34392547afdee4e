"""Reading the change feed for one gate: pages, cursors and the presence.

The cursor is the decimal feed seq the gate has applied (the same value a bundle's
``header.cursor`` carries), opaque to the gate. A page is read in one repeatable-read snapshot
together with the feed head, so when the page is the last one its cursor jumps to the head (past
this gate's own check-ins, which are left out). A cursor that is not a number, lies beyond the
head (another database) or lags more than ``feed_max_behind`` changes answers
``snapshot_required``.

Long-polling gates of one event are woken by the same notification and mostly ask from the same
cursor, so ``FeedReads`` lets identical concurrent reads share one query and one decoding: the
page is read with every gate's check-ins, and each gate's own are left out afterwards (they
still count towards the page size). A read is shared only by requests holding the same
notifier flag: a request that took a newer flag (the feed advanced since) starts its own read,
so a wake-up is never lost.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.checkout import latest_checkout
from shared.peering import b64
from shared.protocol import (
    Change,
    CheckinChange,
    EventChange,
    GateChange,
    KeyInfo,
    PresencePage,
    TicketChange,
)
from shared.ticket import public_key_to_b64

_PAGE = """SELECT f.seq, f.kind, t.ticket_id, t.nonce, t.status, t.zone, t.category, t.holder,
       t.valid_from, t.valid_until, t.group_ref,
       k.kid, k.public_key, k.status AS key_status,
       c.ticket_id AS c_ticket, c.gate_id AS c_gate, g.name AS gate_name, c.direction, c.at,
       c.conflict, c.seq AS c_seq, c.ref_seq AS c_ref,
       pg.gate_id AS p_gate, pg.name AS p_name, pg.peer_cert,
       pg.revoked_at IS NOT NULL AS p_revoked,
       e.event_id AS e_event, e.name AS e_name, e.timezone, e.reentry, e.zones, e.starts_at,
       e.ends_at, e.rotating, e.rotation_period,
       to_char(e.checkout_time, 'HH24:MI') AS checkout_time
FROM change_feed f
LEFT JOIN tickets t ON f.kind LIKE 'ticket.%' AND t.event_id = f.event_id
    AND t.ticket_id = f.ticket_id
LEFT JOIN signing_keys k ON f.kid IS NOT NULL AND k.event_id = f.event_id AND k.kid = f.kid
LEFT JOIN checkins c ON f.gate_id IS NOT NULL AND c.gate_id = f.gate_id AND c.seq = f.gate_seq
LEFT JOIN gates g ON g.gate_id = c.gate_id
LEFT JOIN gates pg ON f.kind LIKE 'gate.%' AND pg.gate_id = f.gate_id
LEFT JOIN events e ON f.kind LIKE 'event.%' AND e.event_id = f.event_id
WHERE f.event_id = $1 AND f.seq > $2
ORDER BY f.seq LIMIT $3"""

_PRESENCE = """SELECT l.ticket_id AS c_ticket, l.gate_id AS c_gate, g.name AS gate_name,
       l.direction, l.at, l.conflict, NULL::bigint AS c_seq, NULL::bigint AS c_ref
FROM (SELECT DISTINCT ON (ticket_id) ticket_id, gate_id, direction, at, conflict FROM checkins
      WHERE event_id = $1 AND outcome = 'admit' AND NOT annulled AND ticket_id IS NOT NULL
      ORDER BY ticket_id, at DESC, gate_id DESC, seq DESC) l
JOIN gates g ON g.gate_id = l.gate_id
WHERE l.direction = 'in' AND l.at >= coalesce($2::float8, '-Infinity') ORDER BY l.at"""
_CHECKOUT = "SELECT timezone, to_char(checkout_time, 'HH24:MI') FROM events WHERE event_id = $1"


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


@dataclass(frozen=True, slots=True)
class FeedSlice:
    """One read of the feed, shared by every gate asking from the same position."""

    changes: list[tuple[int | None, bytes]]  # (gate the change came from, the change's JSON)
    cursor: int  # where the next page starts
    more: bool

    def page_for(self, gate_id: int) -> FeedPage:
        """The page of one gate: every change but its own check-ins."""
        mine = [change for gate, change in self.changes if gate != gate_id]
        return FeedPage(str(self.cursor), mine, self.more)


@dataclass(frozen=True, slots=True)
class FeedPage:
    """A ``ChangesPage`` whose changes are JSON already (encoded once for all gates)."""

    cursor: str
    changes: list[bytes]
    more: bool = False
    snapshot_required: bool = False

    def json(self) -> bytes:
        """The ``ChangesPage`` JSON a gate parses."""
        return b'{"cursor":%s,"changes":[%s],"more":%s,"snapshot_required":%s}' % (
            json.dumps(self.cursor).encode(),
            b",".join(self.changes),
            b"true" if self.more else b"false",
            b"true" if self.snapshot_required else b"false",
        )


class FeedReads:
    """Reads feed pages, sharing identical concurrent reads (see the module docstring)."""

    def __init__(self) -> None:
        self._reading: dict[
            tuple[int, int, int, int, object], asyncio.Future[FeedSlice | None]
        ] = {}
        self.queries = 0  # feed reads run, for tests and introspection

    async def page(
        self, pool: asyncpg.Pool, reader: Reader, cursor: str, flag: object = None
    ) -> FeedPage:
        """One page after ``cursor`` (possibly empty; never waits). ``flag`` is the notifier
        flag the caller took before reading (None: share with nobody)."""
        found = await self.slice(pool, reader, cursor, flag)
        if found is None:
            return FeedPage(cursor, [], snapshot_required=True)
        return found.page_for(reader.gate_id)

    async def slice(
        self, pool: asyncpg.Pool, reader: Reader, cursor: str, flag: object = None
    ) -> FeedSlice | None:
        """The changes after ``cursor`` with the gate each came from (None: snapshot
        required); every gate's page is ``page_for`` of it."""
        after = parse_cursor(cursor)
        if after is None:
            return None
        key = (reader.event_id, after, reader.page_size, reader.max_behind, flag or object())
        if (reading := self._reading.get(key)) is None:
            reading = asyncio.ensure_future(self._read(pool, reader, after))
            self._reading[key] = reading
            reading.add_done_callback(lambda done: self._done(key, done))
        return await asyncio.shield(reading)  # a caller that goes away leaves it to the others

    def _done(self, key: tuple[int, int, int, int, object], done: asyncio.Future) -> None:
        del self._reading[key]
        if not done.cancelled():
            done.exception()  # retrieved: every caller may have gone away

    async def _read(self, pool: asyncpg.Pool, reader: Reader, after: int) -> FeedSlice | None:
        self.queries += 1
        async with (
            pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            top = await head(conn, reader.event_id)
            if after > top or top - after > reader.max_behind:
                return None
            rows = await conn.fetch(_PAGE, reader.event_id, after, reader.page_size + 1)
        more = len(rows) > reader.page_size
        rows = rows[: reader.page_size]
        return FeedSlice(
            [(r["c_gate"], _change(r).model_dump_json().encode()) for r in rows],
            rows[-1]["seq"] if more else top,
            more,
        )


def _change(r: asyncpg.Record) -> Change:
    kind = r["kind"]
    if kind.startswith("ticket.") and r["ticket_id"] is not None:
        return Change(seq=r["seq"], kind=kind, ticket=_ticket(r))
    if kind.startswith("key.") and r["kid"] is not None:
        return Change(seq=r["seq"], kind=kind, key=_key(r))
    if kind.startswith("checkin.") and r["c_ticket"] is not None:
        return Change(seq=r["seq"], kind=kind, checkin=checkin_change(r))
    if kind.startswith("gate.") and r["p_gate"] is not None:
        return Change(seq=r["seq"], kind=kind, gate=gate_change(r))
    if kind.startswith("event.") and r["e_event"] is not None:
        return Change(seq=r["seq"], kind=kind, event=event_change(r))
    return Change(seq=r["seq"], kind=kind)


def event_change(r: asyncpg.Record) -> EventChange:
    """The event's current settings, as the bundle header carries them."""
    return EventChange(
        name=r["e_name"],
        timezone=r["timezone"],
        reentry=r["reentry"],
        zones={str(i): z for i, z in enumerate(r["zones"])},
        starts_at=int(r["starts_at"].timestamp()) if r["starts_at"] else 0,
        ends_at=int(r["ends_at"].timestamp()) if r["ends_at"] else 0,
        rotating=r["rotating"],
        rotation_period=r["rotation_period"],
        checkout_time=r["checkout_time"],
    )


def gate_change(r: asyncpg.Record) -> GateChange:
    cert = r["peer_cert"]
    return GateChange(
        gate_id=r["p_gate"],
        gate_name=r["p_name"],
        certificate=b64(bytes(cert)) if cert is not None else None,
        revoked=r["p_revoked"],
    )


def _ticket(r: asyncpg.Record) -> TicketChange:
    return TicketChange(
        ticket_id=r["ticket_id"],
        nonce=r["nonce"],
        status=r["status"],
        zone=r["zone"],
        category=r["category"],
        holder=r["holder"] or None,
        valid_from=r["valid_from"],
        valid_until=r["valid_until"],
        group=r["group_ref"],
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
        seq=r["c_seq"],
        ref_seq=r["c_ref"],
    )


async def presence(pool: asyncpg.Pool, event_id: int, now: float | None = None) -> PresencePage:
    """Who is inside at ``now`` (default: syncd's clock), with the feed position: the latest
    admission per ticket is an "in", made since the event's automatic check-out (if any)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        top = await head(conn, event_id)
        timezone, checkout = await conn.fetchrow(_CHECKOUT, event_id)
        boundary = latest_checkout(time.time() if now is None else now, timezone, checkout)
        rows = await conn.fetch(_PRESENCE, event_id, boundary)
    return PresencePage(cursor=str(top), inside=[checkin_change(r) for r in rows])
