"""The store's side of the peer mesh: this gate's certificate, what it knows of the event's
other gates, and applying their admissions and annulments (docs/design.md section 6).

A peer's admission moves the entry state only, never this gate's journal: it reaches syncd from
the gate that made it. Each source gate has a high-water mark (``peer_marks``): its admissions
arrive in journal order from the peer itself and again, later, from syncd's feed (which carries
the same gate + seq), and whichever comes first moves the entry state; the other is a no-op.
Times move to this gate's clock through both gates' skews to syncd
(``local = at + skew_maker - skew_here``), as feed times do.

A peer's annulment (peer protocol 2) moves the mark too, so it applies once. It undoes an
admission of the same gate that arrived here before (its seq at or below the mark), and only
while that admission is still the ticket's latest movement here, as the feed's does:

- an admission the peer delivered is kept in ``peer_admissions`` as it was applied; the
  annulment must name its ticket and direction, and the entry state must still show that very
  movement (the gate name and the local time written then);
- an admission the feed delivered first (or a peer before this gate kept them) is undone by the
  feed's rule: the entry state's latest movement in that direction is at that gate.

An annulment naming an admission that never arrived here, or naming another ticket than the
admission did, changes nothing and is reported back (``Applied.ignored``) for the log.

The feed's annulments (``checkin.annulled``) can go through ``apply_feed_annulment``, the same
rules: an admission undone by one way is not undone again by the other, and the feed's late
annulment of an old admission leaves a later entry at that gate that a peer brought first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import aiosqlite
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gate.store.db import _ENTER, _LEAVE, Store
from shared.peering import (
    Admission,
    Annulment,
    GateCertificate,
    PeerError,
    parse_certificate,
    unb64,
    verify_certificate,
)
from shared.protocol import CheckinChange, GateChange, PeersPage

log = logging.getLogger(__name__)
_MARK = "SELECT seq FROM peer_marks WHERE gate_id = ?"
ADVANCE_MARK = (
    "INSERT INTO peer_marks (gate_id, seq) VALUES (?, ?) ON CONFLICT (gate_id)"
    " DO UPDATE SET seq = excluded.seq WHERE excluded.seq > peer_marks.seq"
)
_OWN_RECORDS = (
    "SELECT seq, ticket_id, direction, scanned_at, ref_seq FROM journal WHERE seq > ?1"
    " AND event_id = ?2 AND ticket_id IS NOT NULL AND (decision = 'admit'"
    " OR (?4 AND decision = 'annul' AND ref_seq IS NOT NULL)) ORDER BY seq LIMIT ?3"
)
_KEEP = (
    "INSERT INTO peer_admissions (gate_id, seq, event_id, ticket_id, direction, at, gate)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (gate_id, seq) DO NOTHING"
)
_KEPT = (
    "SELECT event_id, ticket_id, direction, at, gate, annul_seq FROM peer_admissions"
    " WHERE gate_id = ? AND seq = ?"
)
_LATER_KEPT = (
    "SELECT 1 FROM peer_admissions WHERE gate_id = ? AND seq > ? AND event_id = ?"
    " AND ticket_id = ? LIMIT 1"
)
_ANNULLED = "UPDATE peer_admissions SET annul_seq = ? WHERE gate_id = ? AND seq = ?"
# An annulled admission: the ticket goes back to where it was, if that admission is still its
# latest movement here (gate.store.syncstate undoes the feed's annulments by the same rule, with
# ?4 NULL: the gate name only). ?4: the local time the peer's admission was applied at.
UNDO_ENTRY = """UPDATE entry_state SET inside = 0, entries = max(entries - 1, 0),
    last_in_at = CASE WHEN entries <= 1 THEN NULL ELSE last_in_at END,
    last_in_gate = CASE WHEN entries <= 1 THEN NULL ELSE last_in_gate END
WHERE event_id = ?1 AND ticket_id = ?2 AND inside = 1 AND last_in_gate = ?3
  AND (?4 IS NULL OR last_in_at = ?4)"""
UNDO_EXIT = """UPDATE entry_state SET inside = 1
WHERE event_id = ?1 AND ticket_id = ?2 AND inside = 0 AND last_out_gate = ?3
  AND (?4 IS NULL OR last_out_at = ?4)"""


@dataclass(frozen=True, slots=True)
class KnownPeer:
    gate_id: int
    name: str
    cert: GateCertificate | None
    urls: tuple[str, ...]
    revoked: bool


def event_keyring(store: Store, event_id: int) -> dict[bytes, Ed25519PublicKey]:
    """The event's signing keys (active or retired): they certify its gates."""
    return {k.kid: k.public_key for k in store.keys.values() if k.event_id == event_id}


async def own_certificate(store: Store) -> GateCertificate | None:
    rows = list(await store.conn.execute_fetchall("SELECT peer_cert FROM sync_state"))
    raw = rows[0][0] if rows else None
    if raw is None:
        return None
    try:
        return parse_certificate(bytes(raw))
    except PeerError:
        log.warning("this gate's stored peer certificate is unreadable: enrol again")
        return None


async def save_own_certificate(store: Store, text: str | None) -> None:
    raw = unb64(text, 400) if text else None
    async with store.transaction() as conn:
        await conn.execute("UPDATE sync_state SET peer_cert = ?", (raw,))


async def read_peers(store: Store) -> dict[int, KnownPeer]:
    rows = await store.conn.execute_fetchall(
        "SELECT gate_id, name, cert, urls, revoked FROM peers ORDER BY gate_id"
    )
    found = {}
    for gate_id, name, cert, urls, revoked in rows:
        parsed = None
        if cert is not None:
            try:
                parsed = parse_certificate(bytes(cert))
            except PeerError:
                parsed = None
        found[gate_id] = KnownPeer(gate_id, name, parsed, tuple(json.loads(urls)), bool(revoked))
    return found


async def put_gate(
    conn: aiosqlite.Connection,
    event_id: int,
    change: GateChange,
    keys: Mapping[bytes, Ed25519PublicKey],
    urls: Iterable[str] | None = None,
) -> None:
    """Record one gate from syncd (feed or peers page) inside the caller's transaction. A
    certificate that does not verify with the event's keys is not kept (and logged)."""
    cert: GateCertificate | None = None
    if change.certificate:
        try:
            cert = verify_certificate(change.certificate, event_id, keys)
        except PeerError as exc:
            log.warning("syncd sent a gate certificate that does not verify: %s", exc)
        if cert is not None and cert.gate_id != change.gate_id:
            log.warning("syncd sent gate %d a certificate of gate %d", change.gate_id, cert.gate_id)
            cert = None
    await conn.execute(
        "INSERT INTO peers (gate_id, name) VALUES (?, ?) ON CONFLICT (gate_id)"
        " DO UPDATE SET name = excluded.name",
        (change.gate_id, change.gate_name),
    )
    if change.revoked:
        await conn.execute("UPDATE peers SET revoked = 1 WHERE gate_id = ?", (change.gate_id,))
    if cert is not None:
        await _newer_cert(conn, cert)
    if urls is not None:
        await conn.execute(
            "UPDATE peers SET urls = ? WHERE gate_id = ?", (json.dumps(list(urls)), change.gate_id)
        )


async def _newer_cert(conn: aiosqlite.Connection, cert: GateCertificate) -> None:
    await conn.execute(
        "UPDATE peers SET cert = ?, issued_at = ? WHERE gate_id = ? AND issued_at <= ?",
        (cert.raw, cert.issued_at, cert.gate_id, cert.issued_at),
    )


async def save_peers(store: Store, event_id: int, page: PeersPage) -> None:
    """The event's gates from syncd's peers page, in one transaction."""
    keys = event_keyring(store, event_id)
    async with store.transaction() as conn:
        for gate in page.gates:
            urls = page.urls.get(str(gate.gate_id), [])
            await put_gate(conn, event_id, gate, keys, urls)


async def note_certificate(store: Store, cert: GateCertificate) -> None:
    """A verified certificate a peer presented: kept if it is the newest known for its gate."""
    async with store.transaction() as conn:
        await conn.execute(
            "INSERT INTO peers (gate_id, name) VALUES (?, ?) ON CONFLICT (gate_id) DO NOTHING",
            (cert.gate_id, cert.name),
        )
        await _newer_cert(conn, cert)


async def mark_of(store: Store, gate_id: int) -> int:
    return await _mark(store.conn, gate_id)


@dataclass(slots=True)
class Applied:
    """What one batch from a peer changed."""

    admissions: int = 0  # new admissions (each moved the mark)
    annulments: int = 0  # annulments that put a ticket back
    ignored: list[str] = field(default_factory=list)  # why an annulment changed nothing


async def apply_records(
    store: Store,
    cert: GateCertificate,
    records: Sequence[Admission | Annulment],
    skew_here: float,
) -> Applied:
    """Apply a peer's verified admissions and annulments, in seq order, in one transaction."""
    done = Applied()
    async with store.transaction() as conn:
        for record in records:
            if isinstance(record, Annulment):
                await _annul(conn, cert, record, done)
            else:
                done.admissions += await _admit(conn, cert, record, skew_here)
    return done


async def _admit(
    conn: aiosqlite.Connection, cert: GateCertificate, a: Admission, skew_here: float
) -> int:
    cursor = await conn.execute(ADVANCE_MARK, (cert.gate_id, a.seq))
    if cursor.rowcount == 0:
        return 0
    at = a.at + a.skew - skew_here
    sql = _ENTER if a.direction == "in" else _LEAVE
    await conn.execute(sql, (a.event_id, a.ticket_id, at, cert.name))
    row = (cert.gate_id, a.seq, a.event_id, a.ticket_id, a.direction, at, cert.name)
    await conn.execute(_KEEP, row)
    return 1


@dataclass(frozen=True, slots=True)
class _Kept:
    """A peer's admission as it was applied here (``peer_admissions``)."""

    event_id: int
    ticket_id: int
    direction: str
    at: float
    gate: str
    annul_seq: int | None

    def names(self, u: Annulment) -> bool:
        return (self.event_id, self.ticket_id, self.direction) == (
            u.event_id,
            u.ticket_id,
            u.direction,
        )


async def _kept(conn: aiosqlite.Connection, gate_id: int, seq: int) -> _Kept | None:
    rows = list(await conn.execute_fetchall(_KEPT, (gate_id, seq)))
    return _Kept(*rows[0]) if rows else None


async def _annul(
    conn: aiosqlite.Connection, cert: GateCertificate, u: Annulment, done: Applied
) -> None:
    mark = await _mark(conn, cert.gate_id)
    if u.seq <= mark:  # applied before, or the feed brought a later row of that gate
        return
    await conn.execute(ADVANCE_MARK, (cert.gate_id, u.seq))
    what = f"annulment {u.seq} of gate #{cert.gate_id} ({cert.name})"
    kept = await _kept(conn, cert.gate_id, u.ref_seq)
    if kept is None and (u.ref_seq >= u.seq or u.ref_seq > mark):
        done.ignored.append(f"{what} names admission {u.ref_seq}, never received here")
    elif kept is not None and not kept.names(u):
        done.ignored.append(
            f"{what} names ticket {u.ticket_id} {u.direction}, but admission {u.ref_seq}"
            f" was ticket {kept.ticket_id} {kept.direction}"
        )
    else:  # kept: the peer brought the admission; None: the feed did
        done.annulments += await _put_back(conn, u, kept, cert.name)


async def apply_feed_annulment(conn: aiosqlite.Connection, event_id: int, c: CheckinChange) -> int:
    """syncd's feed says gate ``c.gate_id`` annulled its admission ``c.ref_seq`` (inside the
    caller's transaction): undone by the same rules as a peer's annulment, so the two ways
    never undo it twice nor undo a later entry the peer brought first. Returns 1 if the ticket
    went back."""
    u = Annulment(
        event_id, c.gate_id, c.seq or 0, c.ref_seq or 0, c.ticket_id, c.direction, c.at, 0.0
    )
    if not c.ref_seq:  # an older syncd: the gate name only
        return await _undo(conn, u, c.gate_name, None)
    kept = await _kept(conn, c.gate_id, c.ref_seq)
    if kept is not None and not kept.names(u):
        return 0
    return await _put_back(conn, u, kept, c.gate_name)


async def _put_back(conn: aiosqlite.Connection, u: Annulment, kept: _Kept | None, name: str) -> int:
    """Undo the admission ``u`` annuls, if it is still the ticket's latest movement here: the
    very movement a peer brought (``kept``), or else (the feed brought it) the latest movement
    in that direction at gate ``name`` unless a peer brought a later one of that gate."""
    if kept is not None:
        if kept.annul_seq is not None:  # undone already (by the peer or the feed)
            return 0
        await conn.execute(_ANNULLED, (u.seq, u.gate_id, u.ref_seq))
        return await _undo(conn, u, kept.gate, kept.at)
    later = (u.gate_id, u.ref_seq, u.event_id, u.ticket_id)
    if list(await conn.execute_fetchall(_LATER_KEPT, later)):
        return 0
    return await _undo(conn, u, name, None)


async def _undo(conn: aiosqlite.Connection, u: Annulment, gate: str, at: float | None) -> int:
    """Put the ticket back if the admission is still its latest movement here; 1 if it was."""
    sql = UNDO_ENTRY if u.direction == "in" else UNDO_EXIT
    cursor = await conn.execute(sql, (u.event_id, u.ticket_id, gate, at))
    return cursor.rowcount


async def _mark(conn: aiosqlite.Connection, gate_id: int) -> int:
    rows = list(await conn.execute_fetchall(_MARK, (gate_id,)))
    return int(rows[0][0]) if rows else 0


@dataclass(frozen=True, slots=True)
class OwnRecord:
    """A row of this gate's journal a follower gets: an admission, or (``ref_seq`` set) the
    annulment of admission ``ref_seq``."""

    seq: int
    ticket_id: int
    direction: str
    at: float
    ref_seq: int | None


async def own_records(
    conn: aiosqlite.Connection, event_id: int, after: int, limit: int, *, annulments: bool
) -> list[OwnRecord]:
    """This gate's admissions (and, with ``annulments``, its annulments) after journal seq
    ``after``, in seq order (for the peers that follow it)."""
    rows = await conn.execute_fetchall(_OWN_RECORDS, (after, event_id, limit, annulments))
    return [
        OwnRecord(int(r[0]), int(r[1]), str(r[2]), float(r[3]), None if r[4] is None else int(r[4]))
        for r in rows
    ]
