"""Load a signed list bundle (shared/bundle.py) into the store, all or nothing.

The whole import is one transaction: the old list stays in force until the new bundle has been
read to the end and its signature checked, and a refused or broken bundle changes nothing. Only
a key the gate already trusts may sign a bundle, and only for its own event (a pinned key that
no list has tied to an event yet may sign any). Active keys that a trusted bundle lists become
trusted in turn, so syncd can rotate keys without a visit to every gate.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import aiosqlite
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gate.store.db import Store
from gate.store.records import STATUSES
from gate.store.search import MAX_TICKET_ID, fold
from shared.bundle import BundleHeader, BundleReader, BundleTicket
from shared.checkout import parse_checkout_time
from shared.errors import BundleError
from shared.rotating import MAX_PERIOD, MIN_PERIOD
from shared.ticket import key_id, public_key_from_b64, public_raw

_STATUS_CODE = {name: code for code, name in enumerate(STATUSES)}
_BATCH = 20_000
_COLUMNS = (
    "event_id, ticket_id, nonce, status, zone, category_id, holder, valid_from, valid_until,"
    " search, group_ref"
)


def ticket_insert(table: str) -> str:
    """The INSERT for rows as ``_batch`` makes them, into ``tickets`` or its staging copy."""
    return f"INSERT INTO {table} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


@dataclass(frozen=True, slots=True)
class ImportResult:
    event_id: int
    event_name: str
    tickets: int
    signer: str  # kid hex
    seconds: float


class _SignerProbe(dict[bytes, Ed25519PublicKey]):
    """A keyring that remembers which kid the reader asked for (the bundle's signer)."""

    asked: bytes | None = None

    def get(self, kid: bytes, default: Any = None) -> Any:
        self.asked = kid
        return super().get(kid, default)


async def import_bundle(
    store: Store, stream: IO[bytes], *, progress: Callable[[int], object] | None = None
) -> ImportResult:
    """Stream a bundle into the store; raises ``BundleError`` and changes nothing if refused."""
    started = time.perf_counter()
    trusted = await trusted_keys(store)
    probe = _SignerProbe()
    reader = await asyncio.to_thread(BundleReader, stream, probe)
    event_id = reader.header.event.event_id
    admit_signers(probe, trusted, event_id)
    try:
        async with store.transaction() as conn:
            count = await _replace_tickets(conn, reader, progress)
            await asyncio.to_thread(reader.finish)
            await _store_event(conn, reader.header, count, probe.asked)
            await _store_keys(conn, reader.header)
    except sqlite3.IntegrityError as exc:
        raise BundleError(f"bundle breaks the list's rules: {exc}") from exc
    await store.conn.execute("PRAGMA incremental_vacuum")
    await store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    await store.refresh()
    signer = probe.asked.hex() if probe.asked else ""
    elapsed = time.perf_counter() - started
    return ImportResult(event_id, reader.header.event.name, count, signer, elapsed)


async def trusted_keys(store: Store) -> list[Any]:
    """Keys pinned or learnt as trusted to sign bundles; ``BundleError`` when there are none."""
    rows = list(
        await store.conn.execute_fetchall(
            "SELECT kid, public_key, event_id FROM keys WHERE trusted = 1 AND status = 'active'"
        )
    )
    if not rows:
        raise BundleError("this gate trusts no key yet: enrol it or pin a key with `gate trust`")
    return rows


def admit_signers(probe: _SignerProbe, trusted: list[Any], event_id: int) -> None:
    """Let the reader accept the trusted keys that may sign this event's bundle."""
    for kid, raw, key_event in trusted:
        if key_event in (None, event_id):
            probe[bytes(kid)] = Ed25519PublicKey.from_public_bytes(raw)


async def _replace_tickets(
    conn: aiosqlite.Connection, reader: BundleReader, progress: Callable[[int], object] | None
) -> int:
    event_id = reader.header.event.event_id
    indexes = await _drop_indexes(conn)  # one sorted build after the load beats 1M updates
    await conn.execute("DELETE FROM tickets WHERE event_id = ?", (event_id,))
    categories = {
        label: cid
        for cid, label in await conn.execute_fetchall("SELECT category_id, label FROM categories")
    }
    known = len(categories)
    batches = reader.batches(_BATCH)
    count = 0
    # Parse the next batch (a worker thread) while SQLite inserts this one (its own thread).
    parsing = asyncio.ensure_future(asyncio.to_thread(_batch, batches, event_id, categories))
    while rows := await parsing:
        parsing = asyncio.ensure_future(asyncio.to_thread(_batch, batches, event_id, categories))
        try:
            await conn.executemany(ticket_insert("tickets"), rows)
        except BaseException:
            await asyncio.gather(parsing, return_exceptions=True)
            raise
        count += len(rows)
        if progress:
            progress(len(rows))
    new = [(cid, label) for label, cid in categories.items() if cid > known]
    await conn.executemany("INSERT INTO categories VALUES (?, ?)", new)
    for ddl in indexes:
        await conn.execute(ddl)
    return count


async def _drop_indexes(conn: aiosqlite.Connection) -> list[str]:
    """Drop the tickets' secondary indexes (inside the import's transaction); their DDL."""
    rows = await conn.execute_fetchall(
        "SELECT name, sql FROM sqlite_master"
        " WHERE type = 'index' AND tbl_name = 'tickets' AND sql IS NOT NULL"
    )
    for name, _sql in rows:
        await conn.execute(f'DROP INDEX "{name}"')
    return [str(sql) for _name, sql in rows]


def _batch(
    batches: Iterator[list[BundleTicket]], event_id: int, categories: dict[str, int]
) -> list[tuple[Any, ...]]:
    rows = []
    for t in next(batches, []):
        _check(t)
        cid = categories.get(t.category)
        if cid is None:
            cid = categories[t.category] = len(categories) + 1
        holder = t.holder or None
        head = (event_id, t.ticket_id, t.nonce, _STATUS_CODE[t.status], t.zone, cid, holder)
        rows.append((*head, t.valid_from, t.valid_until, fold(holder), t.group or None))
    return rows


def _check(t: BundleTicket) -> None:
    """The reader checked types and ranges; a gate list also needs a signed 64-bit id."""
    if not 0 <= t.ticket_id <= MAX_TICKET_ID:
        raise BundleError(f"ticket id {t.ticket_id} is beyond what a gate list can hold")


async def _store_event(
    conn: aiosqlite.Connection, header: BundleHeader, count: int, signer: bytes | None
) -> None:
    e = header.event
    if e.reentry not in ("never", "after_exit", "always"):
        raise BundleError(f"bad re-entry policy {e.reentry!r}")
    period = e.rotation_period
    if not isinstance(e.rotating, bool):
        raise BundleError(f"bad rotation flag {e.rotating!r}")
    if not isinstance(period, int) or not MIN_PERIOD <= period <= MAX_PERIOD:
        raise BundleError(f"bad rotation period {period!r}")
    if e.checkout_time is not None:
        try:
            parse_checkout_time(e.checkout_time)
        except ValueError as exc:
            raise BundleError(f"bad check-out time {e.checkout_time!r}: {exc}") from None
    await conn.execute(
        "INSERT OR REPLACE INTO events (event_id, name, timezone, reentry, zones, starts_at,"
        " ends_at, ticket_count, list_issued_at, list_imported_at, list_cursor, list_signer,"
        " rotating, rotation_period, checkout_time)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            e.event_id,
            e.name,
            e.timezone,
            e.reentry,
            json.dumps(e.zones),
            e.starts_at,
            e.ends_at,
            count,
            header.issued_at,
            time.time(),
            header.cursor,
            signer,
            e.rotating,
            period,
            e.checkout_time,
        ),
    )


async def _store_keys(conn: aiosqlite.Connection, header: BundleHeader) -> None:
    for key in header.keys:
        try:
            raw = public_raw(public_key_from_b64(key.public_key))
            kid = bytes.fromhex(key.kid)
        except ValueError as exc:
            raise BundleError(f"bad key {key.kid!r} in bundle: {exc}") from exc
        if key.status not in ("active", "retired"):
            raise BundleError(f"bad status {key.status!r} for key {key.kid}")
        if key_id(Ed25519PublicKey.from_public_bytes(raw)) != kid:
            raise BundleError(f"key {key.kid} does not match its kid")
        sql = "SELECT public_key, event_id FROM keys WHERE kid = ?"
        rows = list(await conn.execute_fetchall(sql, (kid,)))
        if rows and bytes(rows[0][0]) != raw:
            raise BundleError(f"key {key.kid} clashes with a different key already known")
        if rows and rows[0][1] not in (None, header.event.event_id):
            raise BundleError(f"key {key.kid} already signs event {rows[0][1]}")
        await conn.execute(
            "INSERT INTO keys (kid, public_key, event_id, status, trusted) VALUES (?, ?, ?, ?, 1)"
            " ON CONFLICT (kid) DO UPDATE SET event_id = excluded.event_id,"
            " status = excluded.status, trusted = 1",
            (kid, raw, header.event.event_id, key.status),
        )
