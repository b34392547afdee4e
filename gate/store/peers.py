"""The store's side of the peer mesh: this gate's certificate, what it knows of the event's
other gates, and applying their admissions (docs/design.md section 6).

A peer's admission moves the entry state only, never this gate's journal: it reaches syncd from
the gate that made it. Each source gate has a high-water mark (``peer_marks``): its admissions
arrive in journal order from the peer itself and again, later, from syncd's feed (which carries
the same gate + seq), and whichever comes first moves the entry state; the other is a no-op.
Times move to this gate's clock through both gates' skews to syncd
(``local = at + skew_maker - skew_here``), as feed times do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import aiosqlite
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gate.store.db import _ENTER, _LEAVE, Store
from shared.peering import (
    Admission,
    GateCertificate,
    PeerError,
    parse_certificate,
    unb64,
    verify_certificate,
)
from shared.protocol import GateChange, PeersPage

log = logging.getLogger(__name__)
ADVANCE_MARK = (
    "INSERT INTO peer_marks (gate_id, seq) VALUES (?, ?) ON CONFLICT (gate_id)"
    " DO UPDATE SET seq = excluded.seq WHERE excluded.seq > peer_marks.seq"
)
_OWN_ADMISSIONS = (
    "SELECT seq, ticket_id, direction, scanned_at FROM journal WHERE seq > ? AND event_id = ?"
    " AND decision = 'admit' AND ticket_id IS NOT NULL ORDER BY seq LIMIT ?"
)


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
    rows = list(
        await store.conn.execute_fetchall(
            "SELECT seq FROM peer_marks WHERE gate_id = ?", (gate_id,)
        )
    )
    return int(rows[0][0]) if rows else 0


async def apply_admissions(
    store: Store, cert: GateCertificate, items: list[Admission], skew_here: float
) -> int:
    """Apply a peer's verified admissions (one transaction); returns how many were new."""
    applied = 0
    async with store.transaction() as conn:
        for a in items:
            cursor = await conn.execute(ADVANCE_MARK, (cert.gate_id, a.seq))
            if cursor.rowcount == 0:
                continue
            sql = _ENTER if a.direction == "in" else _LEAVE
            await conn.execute(sql, (a.event_id, a.ticket_id, a.at + a.skew - skew_here, cert.name))
            applied += 1
    return applied


async def own_admissions(
    conn: aiosqlite.Connection, event_id: int, after: int, limit: int
) -> list[tuple[int, int, str, float]]:
    """This gate's admissions after journal seq ``after`` (for the peers that follow it)."""
    rows = await conn.execute_fetchall(_OWN_ADMISSIONS, (after, event_id, limit))
    return [(int(r[0]), int(r[1]), str(r[2]), float(r[3])) for r in rows]
