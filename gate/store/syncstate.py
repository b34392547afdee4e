"""The store's side of sync: the journal backlog, the sync state row and change-feed pages.

Everything here writes through ``Store.transaction()`` (one writer), so a page of changes, a
presence page or an acknowledgement applies all or nothing. Other gates' check-ins move the
entry state once per gate + seq (``gate.store.peers``: a peer may have delivered them first) and
"newer wins" by this gate's clock: the feed carries syncd's clock, so their times
are shifted back by the skew syncd measured for this gate (``local = at - skew``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gate.store.carry import Carried, carry_journal
from gate.store.db import _ENTER, _LEAVE, Store
from gate.store.importer import ticket_insert
from gate.store.peers import ADVANCE_MARK, apply_feed_annulment, event_keyring, put_gate
from gate.store.records import STATUSES, JournalRow
from gate.store.search import fold
from shared.peering import unb64
from shared.protocol import (
    ChangesPage,
    CheckinChange,
    EnrollResponse,
    EventChange,
    KeyInfo,
    TicketChange,
)
from shared.ticket import key_id, public_key_from_b64, public_raw

_STATUS_CODE = {name: code for code, name in enumerate(STATUSES)}
_UNSYNCED = (
    "SELECT seq, scan_id, event_id, ticket_id, direction, decision, reason, scanned_at, via,"
    " synced, ref_seq FROM journal WHERE synced = 0 ORDER BY seq LIMIT ?"
)
_FIELDS = (
    "server_url, credential_file, gate_id, gate_name, event_id, enrolled_at, cursor, acked_seq,"
    " skew, clock_warning, last_push_at, last_pull_at, snapshot_at, last_error, revoked_at"
)


class ChangeError(ValueError):
    """A change from syncd that cannot be applied (bad key, unknown event); nothing changed."""


@dataclass(frozen=True, slots=True)
class SyncState:
    server_url: str | None = None
    credential_file: str | None = None
    gate_id: int | None = None
    gate_name: str | None = None
    event_id: int | None = None
    enrolled_at: float | None = None
    cursor: str = ""
    acked_seq: int = 0
    skew: float = 0.0
    clock_warning: str | None = None
    last_push_at: float | None = None
    last_pull_at: float | None = None
    snapshot_at: float | None = None
    last_error: str | None = None
    revoked_at: float | None = None


async def read_sync_state(store: Store) -> SyncState:
    rows = list(await store.conn.execute_fetchall(f"SELECT {_FIELDS} FROM sync_state"))
    return SyncState(*rows[0]) if rows else SyncState()


async def backlog(store: Store) -> int:
    """How many journal rows syncd has not acknowledged yet."""
    rows = await store.conn.execute_fetchall("SELECT count(*) FROM journal WHERE synced = 0")
    return int(next(iter(rows))[0])


async def unsynced_batch(store: Store, limit: int) -> list[JournalRow]:
    """The oldest unacknowledged journal rows, in seq order."""
    rows = await store.conn.execute_fetchall(_UNSYNCED, (limit,))
    return [
        JournalRow(r[0], bytes(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], bool(r[9]), r[10])
        for r in rows
    ]


async def mark_synced(
    store: Store, acked_seq: int, *, skew: float, warning: str | None, now: float
) -> None:
    """Record syncd's answer: rows up to ``acked_seq`` are synced, later ones are not.

    Rows above ``acked_seq`` that were marked before are sent again: syncd says it does not
    hold them (a restored database), so the gate is the only copy.
    """
    async with store.transaction() as conn:
        await conn.execute(
            "UPDATE journal SET synced = 1 WHERE synced = 0 AND seq <= ?", (acked_seq,)
        )
        await conn.execute(
            "UPDATE journal SET synced = 0 WHERE synced = 1 AND seq > ?", (acked_seq,)
        )
        await conn.execute(
            "UPDATE sync_state SET acked_seq = ?, skew = ?, clock_warning = ?, last_push_at = ?,"
            " last_error = NULL",
            (acked_seq, skew, warning, now),
        )


async def save_enrolment(
    store: Store,
    server_url: str,
    credential_file: Path,
    enrolled: EnrollResponse,
    *,
    carry_from: int | None = None,
) -> Carried | None:
    """Remember where this gate syncs and pin the event's keys (trusted to sign its bundles).

    ``carry_from``: the revoked gate id this device had; its journal is archived and its
    unsynced rows carried to the new identity in the same transaction (``gate.store.carry``)."""
    carried = None
    before = await read_sync_state(store)
    async with store.transaction() as conn:
        if carry_from is not None:
            same = before.event_id == enrolled.event_id
            carried = await carry_journal(conn, carry_from, time.time(), same_event=same)
        await conn.execute(
            "UPDATE sync_state SET server_url = ?, credential_file = ?, gate_id = ?,"
            " gate_name = ?, event_id = ?, enrolled_at = ?, cursor = '', acked_seq = 0,"
            " skew = 0, clock_warning = NULL, snapshot_at = NULL, last_error = NULL,"
            " revoked_at = NULL, wiped_at = NULL",
            (
                server_url,
                str(credential_file),
                enrolled.gate_id,
                enrolled.gate_name,
                enrolled.event_id,
                time.time(),
            ),
        )
        for key in enrolled.keys:
            await _put_key(conn, enrolled.event_id, key)
        cert = unb64(enrolled.certificate, 400) if enrolled.certificate else None
        await conn.execute("UPDATE sync_state SET peer_cert = ?", (cert,))
    await store.refresh()
    return carried


async def note_pull(store: Store, now: float) -> None:
    """An empty long-poll answer: syncd was reached, nothing changed."""
    async with store.transaction() as conn:
        await conn.execute("UPDATE sync_state SET last_pull_at = ?, last_error = NULL", (now,))


async def note_error(store: Store, message: str | None) -> None:
    """Why sync stopped working (None: it works again). A revocation is recorded by
    ``gate.store.wipe.mark_revoked``, and only a new enrolment clears it."""
    async with store.transaction() as conn:
        await conn.execute("UPDATE sync_state SET last_error = ?", (message,))


async def apply_changes(store: Store, page: ChangesPage, *, now: float) -> int:
    """Apply one page and move the cursor, in one transaction; returns how many changes applied.

    Raises ``ChangeError`` (and changes nothing) for a change that cannot apply.
    """
    state = await read_sync_state(store)
    if state.event_id is None:
        raise ChangeError("this gate is not enrolled in an event")
    keyring = event_keyring(store, state.event_id)
    async with store.transaction() as conn:
        categories = await _categories(conn)
        added = 0
        for change in page.changes:
            if change.ticket is not None:
                added += await _put_ticket(conn, state.event_id, change.ticket, categories)
            elif change.key is not None:
                await _put_key(conn, state.event_id, change.key)
            elif change.checkin is not None and change.checkin.gate_id != state.gate_id:
                if change.kind == "checkin.annulled":
                    await _put_annulment(conn, state.event_id, change.checkin)
                else:
                    await _put_checkin(conn, state.event_id, change.checkin, state.skew)
            elif change.gate is not None and change.gate.gate_id != state.gate_id:
                await put_gate(conn, state.event_id, change.gate, keyring)
            elif change.event is not None:
                await _put_event(conn, state.event_id, change.event)
        if added:
            await conn.execute(
                "UPDATE events SET ticket_count = ticket_count + ? WHERE event_id = ?",
                (added, state.event_id),
            )
        await conn.execute(
            "UPDATE sync_state SET cursor = ?, last_pull_at = ?, last_error = NULL",
            (page.cursor, now),
        )
    if any(c.key is not None or c.event is not None for c in page.changes):
        await store.refresh()
    return len(page.changes)


async def apply_presence(store: Store, inside: list[CheckinChange]) -> None:
    """Who is inside now, from syncd (after a snapshot), in one transaction."""
    state = await read_sync_state(store)
    if state.event_id is None:
        raise ChangeError("this gate is not enrolled in an event")
    async with store.transaction() as conn:
        for checkin in inside:
            if checkin.gate_id != state.gate_id:
                await _put_checkin(conn, state.event_id, checkin, state.skew)


async def _categories(conn: aiosqlite.Connection) -> dict[str, int]:
    rows = await conn.execute_fetchall("SELECT label, category_id FROM categories")
    return {label: cid for label, cid in rows}


async def _category(conn: aiosqlite.Connection, label: str, known: dict[str, int]) -> int:
    if label not in known:
        cursor = await conn.execute("INSERT INTO categories (label) VALUES (?)", (label,))
        assert cursor.lastrowid is not None
        known[label] = cursor.lastrowid
    return known[label]


async def _put_ticket(
    conn: aiosqlite.Connection, event_id: int, t: TicketChange, categories: dict[str, int]
) -> int:
    """Upsert one ticket with its current state; returns 1 if it is new to this gate."""
    if t.ticket_id >= 2**63:
        raise ChangeError(f"ticket id {t.ticket_id} is out of range")
    cid = await _category(conn, t.category, categories)
    values = (t.nonce, _STATUS_CODE[t.status], t.zone, cid, t.holder, t.valid_from, t.valid_until)
    row: tuple[Any, ...] = (*values, fold(t.holder), t.group or None)
    cursor = await conn.execute(
        f"{ticket_insert('tickets')} ON CONFLICT DO NOTHING", (event_id, t.ticket_id, *row)
    )
    if cursor.rowcount == 1:
        return 1
    await conn.execute(
        "UPDATE tickets SET nonce = ?, status = ?, zone = ?, category_id = ?, holder = ?,"
        " valid_from = ?, valid_until = ?, search = ?, group_ref = ?"
        " WHERE event_id = ? AND ticket_id = ?",
        (*row, event_id, t.ticket_id),
    )
    return 0


async def _put_event(conn: aiosqlite.Connection, event_id: int, e: EventChange) -> None:
    """The event's settings as syncd holds them now (re-entry, zones, rotation ...)."""
    await conn.execute(
        "UPDATE events SET name = ?, timezone = ?, reentry = ?, zones = ?, starts_at = ?,"
        " ends_at = ?, rotating = ?, rotation_period = ?, checkout_time = ? WHERE event_id = ?",
        (
            e.name,
            e.timezone,
            e.reentry,
            json.dumps(e.zones),
            e.starts_at,
            e.ends_at,
            e.rotating,
            e.rotation_period,
            e.checkout_time,
            event_id,
        ),
    )


async def _put_key(conn: aiosqlite.Connection, event_id: int, key: KeyInfo) -> None:
    try:
        raw = public_raw(public_key_from_b64(key.public_key))
    except ValueError as exc:
        raise ChangeError(f"bad public key for kid {key.kid}: {exc}") from exc
    kid = bytes.fromhex(key.kid)
    if key_id(Ed25519PublicKey.from_public_bytes(raw)) != kid:
        raise ChangeError(f"key {key.kid} does not match its kid")
    rows = list(
        await conn.execute_fetchall("SELECT public_key, event_id FROM keys WHERE kid = ?", (kid,))
    )
    if rows and (bytes(rows[0][0]) != raw or rows[0][1] not in (None, event_id)):
        raise ChangeError(f"key {key.kid} clashes with a key this gate already knows")
    await conn.execute(
        "INSERT INTO keys (kid, public_key, event_id, status, trusted) VALUES (?, ?, ?, ?, 1)"
        " ON CONFLICT (kid) DO UPDATE SET event_id = excluded.event_id,"
        " status = excluded.status, trusted = 1",
        (kid, raw, event_id, key.status),
    )


async def _put_checkin(
    conn: aiosqlite.Connection, event_id: int, c: CheckinChange, skew: float
) -> None:
    if c.ticket_id >= 2**63:
        raise ChangeError(f"ticket id {c.ticket_id} is out of range")
    if c.seq is not None:  # the gate's own peers may have delivered it already
        cursor = await conn.execute(ADVANCE_MARK, (c.gate_id, c.seq))
        if cursor.rowcount == 0:
            return
    sql = _ENTER if c.direction == "in" else _LEAVE
    await conn.execute(sql, (event_id, c.ticket_id, c.at - skew, c.gate_name))


async def _put_annulment(conn: aiosqlite.Connection, event_id: int, c: CheckinChange) -> None:
    if c.ticket_id >= 2**63:
        raise ChangeError(f"ticket id {c.ticket_id} is out of range")
    await apply_feed_annulment(conn, event_id, c)  # the peer mesh's rules (gate.store.peers)
