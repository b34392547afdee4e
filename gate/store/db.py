"""The gate's SQLite store: one aiosqlite connection, the only writer in this process.

Durability contract: WAL with ``synchronous=FULL``, so a committed statement is on disk;
``record_scan``, ``check_in`` and every ``write`` commit before they return, and callers show a
result only after that. Journal writes go through ``write``: one ``BEGIN IMMEDIATE`` transaction
(one writer across processes, as `gate admit` or `gate import-list` may run beside `gate run`)
run whole on the connection's thread, one fsync; triggers move the entry state with each journal
row. Writes hold an asyncio lock (one writer per process); other multi-statement writes go
through ``transaction()``.

Keys and events are cached in memory; ``PRAGMA data_version`` (read with every look-up) tells
when another process changed them, and ``check_in`` then raises ``StaleCacheError`` after
reloading so the caller verifies again with the new keys.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gate.store.migrate import apply_migrations
from gate.store.records import (
    STATUSES,
    EntryState,
    EventInfo,
    JournalEntry,
    KeyInfo,
    ListEntry,
    LocalState,
)
from gate.store.search import MAX_TICKET_ID, fold, search_key, ticket_number
from shared.errors import ConfigError
from shared.ticket import key_id, public_raw

log = logging.getLogger(__name__)
T = TypeVar("T")

_LOOKUP = """
SELECT (SELECT data_version FROM pragma_data_version),
       t.nonce, t.status, t.zone, coalesce(c.label, ''), t.holder, t.valid_from, t.valid_until,
       s.inside, s.last_in_at, s.last_in_gate, s.last_out_at, s.last_out_gate, s.entries
FROM (SELECT ? AS e, ? AS i) AS k
LEFT JOIN tickets t ON t.event_id = k.e AND t.ticket_id = k.i
LEFT JOIN categories c ON c.category_id = t.category_id
LEFT JOIN entry_state s ON s.event_id = k.e AND s.ticket_id = k.i
"""
_INSERT_JOURNAL = """
INSERT INTO journal (seq, scan_id, event_id, ticket_id, direction, decision, reason,
                     scanned_at, via, gate, ref_seq)
VALUES ((SELECT coalesce(max(seq), 0) + 1 FROM journal), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_ENTER = """
INSERT INTO entry_state (event_id, ticket_id, inside, last_in_at, last_in_gate, entries,
                         updated_at)
VALUES (?1, ?2, 1, ?3, ?4, 1, ?3)
ON CONFLICT (event_id, ticket_id) DO UPDATE SET
    inside = 1, last_in_at = ?3, last_in_gate = ?4, entries = entries + 1, updated_at = ?3
WHERE ?3 > updated_at
"""
_LEAVE = """
INSERT INTO entry_state (event_id, ticket_id, inside, last_out_at, last_out_gate, updated_at)
VALUES (?1, ?2, 0, ?3, ?4, ?3)
ON CONFLICT (event_id, ticket_id) DO UPDATE SET
    inside = 0, last_out_at = ?3, last_out_gate = ?4, updated_at = ?3
WHERE ?3 > updated_at
"""
_MAX_ID = MAX_TICKET_ID
_FOUND = """SELECT t.event_id, t.ticket_id, t.nonce, t.status, t.zone, coalesce(c.label, ''),
       t.holder, t.valid_from, t.valid_until"""
_BY_NUMBER = f"""{_FOUND} FROM tickets t LEFT JOIN categories c ON c.category_id = t.category_id
WHERE t.event_id IN (SELECT event_id FROM events) AND t.ticket_id = ? LIMIT ?"""
# The inner query reads only the covering index of named tickets; the outer one fetches the rows.
_BY_NAME = f"""{_FOUND} FROM (SELECT event_id, ticket_id, search FROM tickets
      WHERE search IS NOT NULL AND instr(search, ?1) > 0 ORDER BY search LIMIT ?2) m
JOIN tickets t ON t.event_id = m.event_id AND t.ticket_id = m.ticket_id
LEFT JOIN categories c ON c.category_id = t.category_id
ORDER BY m.search"""


class Pulse:
    """A broadcast wake-up: every waiter wakes at the next ``fire()`` (an Event cleared by
    one consumer would lose another's wake-up). ``count`` read before a look lets ``wait``
    return at once for a fire that came during the look."""

    def __init__(self) -> None:
        self._next: asyncio.Future[None] | None = None
        self.count = 0

    def fire(self) -> None:
        self.count += 1
        if self._next is not None and not self._next.done():
            self._next.set_result(None)
        self._next = None

    async def wait(self, seen: int, within: float) -> None:
        """Until a ``fire()`` after ``count`` was ``seen``, or ``within`` seconds."""
        if self.count != seen:
            return
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        with suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._next), within)


class StaleCacheError(Exception):
    """Another process changed keys or events; the cache is reloaded, verify the code again."""


class StoreOpenError(ConfigError):
    """The database cannot be opened or brought up to date; names the file and the cause."""

    def __init__(self, path: Path, cause: BaseException) -> None:
        self.path = path
        super().__init__(f"cannot open the gate database {path}: {_cause(cause)}")


class StoreWriteError(ConfigError):
    """A write to the database failed (disk full, I/O error); the transaction changed nothing."""

    def __init__(self, path: Path, cause: BaseException) -> None:
        self.path = path
        super().__init__(f"could not write to the gate database {path}: {_cause(cause)}")


@asynccontextmanager
async def writes_to(path: Path) -> AsyncIterator[None]:
    """For commands: a failed write (``sqlite3.Error``, ``OSError``) is a ``StoreWriteError``."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise StoreWriteError(path, exc) from exc


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror  # the path is named already
    return str(exc) or type(exc).__name__


class Store:
    """The gate's local state. Open with ``await Store.open(path)``; ``close()`` when done."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._lock = asyncio.Lock()
        self._data_version = -1
        self.keys: dict[bytes, KeyInfo] = {}
        self.events: dict[int, EventInfo] = {}
        self.appended = asyncio.Event()
        """Set after every journal append: wakes the sync worker's push at once."""
        self.appends = Pulse()
        """Fired after every journal append: wakes each peer this gate serves."""
        self.revoked_at: float | None = None
        """When this gate learnt that syncd revoked it: every scan is refused (gate.store.wipe)."""
        self.wiped_at: float | None = None
        """When its holder data was deleted after that; None while the wipe has not finished."""

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        """Open (creating it and its folder if needed) and bring the schema up to date.

        Raises ``StoreOpenError`` naming the file and the cause (disk full, read-only, not a
        database ...) instead of a bare ``sqlite3``/``OSError`` traceback at start.
        """
        path = Path(path)
        try:
            return await cls._open(path)
        except (sqlite3.Error, OSError) as exc:
            raise StoreOpenError(path, exc) from exc

    @classmethod
    async def _open(cls, path: Path) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            await conn.create_function("tessera_fold", 1, fold, deterministic=True)
            for pragma in (
                "auto_vacuum = INCREMENTAL",  # only takes effect on a new, empty database
                "journal_mode = WAL",
                "synchronous = FULL",
                "busy_timeout = 15000",
                "cache_size = -8000",
            ):
                await conn.execute(f"PRAGMA {pragma}")
            await apply_migrations(conn)
            store = cls(conn, path)
            await store.refresh()
        except BaseException:
            await conn.close()
            raise
        return store

    async def close(self) -> None:
        await self.conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction; commits on success, rolls back on any exception.

        Cancel-safe: a BEGIN waiting for another process's write lock runs on in aiosqlite's
        thread after the await is cancelled, so a cancelled caller waits for it and rolls back
        what it opened instead of leaving the connection inside a transaction."""
        async with self._lock:
            begin = asyncio.ensure_future(self.conn.execute("BEGIN IMMEDIATE"))
            try:
                await asyncio.shield(begin)
            except asyncio.CancelledError:
                with suppress(Exception):
                    await begin
                    await self.conn.execute("ROLLBACK")
                raise
            try:
                yield self.conn
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            await self.conn.execute("COMMIT")

    async def refresh(self, *, force: bool = True) -> bool:
        """Reload keys and events if another connection changed the database (or ``force``)."""
        rows = await self.conn.execute_fetchall("PRAGMA data_version")
        version = int(next(iter(rows))[0])
        if version == self._data_version and not force:
            return False
        self._data_version = version
        self.keys = await self._load_keys()
        self.events = await self._load_events()
        rows = await self.conn.execute_fetchall("SELECT revoked_at, wiped_at FROM sync_state")
        self.revoked_at, self.wiped_at = next(iter(rows), (None, None))
        return True

    async def _load_keys(self) -> dict[bytes, KeyInfo]:
        rows = await self.conn.execute_fetchall(
            "SELECT kid, public_key, event_id, status FROM keys"
        )
        return {
            bytes(kid): KeyInfo(
                bytes(kid), Ed25519PublicKey.from_public_bytes(raw), event_id, status == "active"
            )
            for kid, raw, event_id, status in rows
        }

    async def _load_events(self) -> dict[int, EventInfo]:
        rows = await self.conn.execute_fetchall(
            "SELECT event_id, name, timezone, reentry, zones, ticket_count, list_issued_at,"
            " list_imported_at, rotating, rotation_period, checkout_time FROM events"
            " ORDER BY event_id"
        )
        return {row[0]: _event(row) for row in rows}

    async def lookup(self, event_id: int, ticket_id: int) -> LocalState:
        """The list row and entry state of one ticket (one indexed query)."""
        return (await self._lookup(event_id, ticket_id))[0]

    async def _lookup(self, event_id: int, ticket_id: int) -> tuple[LocalState, int]:
        if not 0 <= ticket_id <= _MAX_ID:
            return LocalState(None, None), self._data_version
        rows = list(await self.conn.execute_fetchall(_LOOKUP, (event_id, ticket_id)))
        return _local_state(event_id, ticket_id, rows[0][1:]), int(rows[0][0])

    async def check_in(
        self, event_id: int, ticket_id: int, judge: Callable[[LocalState], tuple[T, JournalEntry]]
    ) -> tuple[T, int]:
        """Look a ticket up, let ``judge`` decide (pure, no I/O) and record it durably.

        Returns what ``judge`` returned first and the committed journal ``seq``. Nothing else
        writes between the look-up and the record; raises ``StaleCacheError`` (recording
        nothing) when another process changed the keys or events since the cache.
        """

        def work(w: Writing) -> tuple[T, int]:
            result, entry = judge(w.look(event_id, ticket_id))
            return result, w.append(entry)

        return await self.write(work)

    async def record_scan(self, entry: JournalEntry) -> int:
        """Append one scan to the journal (the entry state follows an admit); durable."""
        return await self.write(lambda w: w.append(entry))

    async def write(self, work: Callable[[Writing], T]) -> T:
        """Run ``work`` in one write transaction on the connection's thread; durable on return.

        ``work`` (no awaits, no I/O but this database) reads and appends journal rows through
        its ``Writing``. It commits when ``work`` returns and rolls back when it raises (the
        exception goes on to the caller). Raises ``StaleCacheError`` (recording nothing, after
        reloading the cache) when a ``Writing.look`` found that another process changed the
        keys or events since they were cached. Wakes the sync worker and the peers after a
        commit.
        """
        known = self._data_version

        def run(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            try:
                done = work(Writing(db, known))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return done

        async with self._lock:
            try:
                done = await self._in_thread(run)
            except _Stale:
                await self.refresh()
                raise StaleCacheError from None
        self.appended.set()
        self.appends.fire()
        return done

    async def _in_thread(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the connection's own thread: one hand-off for a whole scan.

        aiosqlite has no public call for this; its ``_execute`` queues a function to the
        connection thread (pinned: aiosqlite < 0.23). A queued call runs to the end even if the
        awaiting task is cancelled, so a scan is either fully recorded or not at all.
        """
        return await self.conn._execute(work, self.conn._conn)

    async def apply_remote(
        self, event_id: int, ticket_id: int, direction: str, at: float, gate: str
    ) -> None:
        """Apply another gate's admit (for sync): newer by gate clock wins, older is ignored."""
        sql = _ENTER if direction == "in" else _LEAVE
        async with self._lock:
            await self.conn.execute(sql, (event_id, ticket_id, at, gate))

    async def search(self, query: str, *, limit: int = 20) -> list[ListEntry]:
        """Tickets by number (exact) or holder name (folded substring, see gate.store.search).

        Raises ``SearchError`` (``TicketIdError`` for a number no list can hold) for a query
        that cannot be answered; never an ``OverflowError``.
        """
        query = query.strip()
        number = ticket_number(query)
        if number is not None:
            rows = await self.conn.execute_fetchall(_BY_NUMBER, (number, limit))
        elif key := search_key(query):
            rows = await self.conn.execute_fetchall(_BY_NAME, (key, limit))
        else:
            return []
        return [_list_entry(r[0], r[1], r[2:]) for r in rows]

    async def trust(self, public_key: Ed25519PublicKey) -> bytes:
        """Pin a key as trusted to sign list bundles; returns its kid."""
        kid = key_id(public_key)
        async with self.transaction() as conn:
            rows = list(
                await conn.execute_fetchall("SELECT public_key FROM keys WHERE kid = ?", (kid,))
            )
            if rows and bytes(rows[0][0]) != public_raw(public_key):
                raise ValueError(f"another key with kid {kid.hex()} is already known")
            await conn.execute(
                "INSERT INTO keys (kid, public_key, trusted, pinned_at) VALUES (?, ?, 1, ?)"
                " ON CONFLICT (kid) DO UPDATE SET trusted = 1, pinned_at = excluded.pinned_at",
                (kid, public_raw(public_key), time.time()),
            )
        await self.refresh()
        return kid

    async def trusted_keyring(self) -> dict[bytes, Ed25519PublicKey]:
        """Keys that may sign list bundles: trusted and not retired."""
        rows = await self.conn.execute_fetchall(
            "SELECT kid, public_key FROM keys WHERE trusted = 1 AND status = 'active'"
        )
        return {bytes(k): Ed25519PublicKey.from_public_bytes(raw) for k, raw in rows}


class _Stale(Exception):
    """Raised inside a write: the cached keys and events are out of date."""


class Writing:
    """What ``Store.write``'s work sees, on the connection's thread inside its transaction:
    ``look`` up tickets, ``append`` journal rows, and ``db`` for any other statement."""

    def __init__(self, db: sqlite3.Connection, known: int) -> None:
        self.db = db
        self._known = known

    def look(self, event_id: int, ticket_id: int) -> LocalState:
        """The list row and entry state of one ticket (one indexed query); a ticket id no
        list can hold is simply unknown. Stops the write (``StaleCacheError``) when another
        process changed the keys or events since they were cached."""
        if not 0 <= ticket_id <= _MAX_ID:
            return LocalState(None, None)
        row = self.db.execute(_LOOKUP, (event_id, ticket_id)).fetchone()
        if int(row[0]) != self._known:
            raise _Stale
        return _local_state(event_id, ticket_id, row[1:])

    def append(self, entry: JournalEntry) -> int:
        """Append one journal row; returns its seq."""
        return _insert(self.db, entry)


def _insert(db: sqlite3.Connection, entry: JournalEntry) -> int:
    """Append one journal row; returns its seq."""
    cursor = db.execute(
        _INSERT_JOURNAL,
        (
            os.urandom(16),
            entry.event_id,
            entry.ticket_id,
            entry.direction,
            entry.outcome,
            entry.reason,
            entry.scanned_at,
            entry.via,
            entry.gate,
            entry.ref_seq,
        ),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _event(row: Any) -> EventInfo:
    zones = {int(bit): name for bit, name in json.loads(row[4]).items()}
    return EventInfo(
        row[0], row[1], row[2], row[3], zones, row[5], row[6], row[7], bool(row[8]), row[9], row[10]
    )


def _local_state(event_id: int, ticket_id: int, row: Any) -> LocalState:
    entry = None
    if row[0] is not None:
        entry = _list_entry(event_id, ticket_id, row[:7])
    state = None
    if row[7] is not None:
        state = EntryState(bool(row[7]), row[8], row[9], row[10], row[11], row[12])
    return LocalState(entry, state)


def _list_entry(event_id: int, ticket_id: int, r: Any) -> ListEntry:
    """From (nonce, status code, zone, category label, holder, valid_from, valid_until)."""
    return ListEntry(event_id, ticket_id, r[0], STATUSES[r[1]], r[2], r[3], r[4], r[5], r[6])
