"""Storing a gate's pushed check-ins: once each, in the feed, in the outbox, conflicts flagged.

One push is one call of ``tessera_store_push`` (``store_push.sql`` beside this module, a
repeatable script that ``syncd migrate`` re-applies when it changes): one round trip and one
short transaction whose steps are ordered so that the event row lock (which serialises every
writer of the event's feed) is taken last and held only for the feed insert and the commit:

1. the gate row is locked (pushes of one gate queue up) and its skew recorded;
2. the batch is inserted ``ON CONFLICT (gate_id, seq) DO NOTHING``; in the same statement every
   new row gets its outbox message (with ``stored_at``, syncd's clock just before commit);
3. transaction-scoped advisory locks are taken on the admitted tickets, keyed by event and
   ticket (sorted, so pushes never deadlock): pushes touching the same ticket of an event
   recompute its conflicts one after the other, and never wait for another event's pushes;
4. the admissions of the tickets touched are re-ordered by corrected time and their
   ``conflict`` flags recomputed (a later "in" while the ticket is already inside is a conflict;
   an earlier admission pushed late turns the one stored before it into the conflict); each
   row that becomes a conflict gets a ``checkin.conflict`` outbox message;
5. the gate's highest contiguous seq is advanced;
6. the new admissions get feed seqs from ``events.change_seq``; its row lock is held until
   commit, so the feed stays gap-free and its seqs become visible in order.

A stored seq whose ``scan_id`` differs is ``JournalClashError`` (HTTP 409) and nothing of the batch
is kept. Retrying a batch stores nothing new and answers the same ``acked_seq``.

Group commit (``Pusher``): pushes that arrive while a push transaction runs are stored
together in the next one, each by its own call, their feed entries appended once at the end,
so a burst of pushes from many gates costs one commit, one WAL flush and one short hold of the
event row lock instead of one each, and two group transactions overlap until their last step.
(With one transaction per push, pushes queued on each other's event row lock, held through
the WAL flush.) A replica runs at most ``SYNCD_PUSH_CONCURRENCY`` such transactions at once. A
push whose seq clashes is answered ``JournalClashError`` and the others are stored again without
it; a deadlock between two transactions (possible only when they touch the same tickets in
opposite orders) is retried.

One push's error never fails another's. ``shared.protocol.CheckinIn`` bounds every field to its
column, so Postgres should refuse nothing; if it still refuses a group (a value that slipped
past the model, a gate deleted while its push waited), the group is split in halves and each
half stored again, down to the one push at fault, which alone is answered ``PushRefusedError`` (its
values: HTTP 422) or ``PushFailedError`` (anything else: 503, the gate retries). Bisecting keeps the
others' group commit: one bad push among n costs about 2·log2(n) extra transactions. Only a
database that is gone (connection lost, shut down, cancelled) fails the whole group at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import asyncpg

from shared.protocol import PushRequest
from syncd.db import DB_DOWN

_STORE = """SELECT acked, stored, conflicts, event_id, adm_seqs, adm_tickets, adm_kinds
FROM tessera_store_push($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"""
_FEED = "SELECT tessera_append_feed($1, $2, $3, $4, $5)"
_CLASH_STATE = "TS409"  # raised by tessera_store_push, the seq in DETAIL
_GROUP_ROWS = 5000  # check-ins stored by one group transaction at most
_DEADLOCK_RETRIES = 5
log = logging.getLogger("syncd.checkins")


class JournalClashError(Exception):
    """A pushed seq is already stored with another scan_id (the gate's journal was replaced)."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"seq {seq} is already stored with a different scan_id")
        self.seq = seq


class PushRefusedError(Exception):
    """Postgres refused a value of this push alone (SQLSTATE class 22 or 23); nothing of it
    is kept. ``state`` is the SQLSTATE (or the driver's error name): no value is echoed."""

    def __init__(self, state: str) -> None:
        super().__init__(f"a value of this batch cannot be stored ({state})")
        self.state = state


class PushFailedError(Exception):
    """This push alone failed in Postgres for a reason other than its values; retry later."""

    def __init__(self, state: str) -> None:
        super().__init__(f"the batch could not be stored ({state}), retry")
        self.state = state


def _database_gone(exc: BaseException) -> bool:
    """Whether ``exc`` says nothing about the pushes (every member fails alike, no bisecting):
    ``db.DB_DOWN`` (shut down, cancelled, statement timeout, connection lost), except asyncpg's
    client-side DataError, which is an InterfaceError but a ValueError about one value."""
    return not isinstance(exc, Exception) or (
        isinstance(exc, DB_DOWN) and not isinstance(exc, ValueError)
    )


def _member_error(exc: Exception) -> Exception:
    """What one push alone answers when its own transaction failed with ``exc``."""
    state = getattr(exc, "sqlstate", None) or type(exc).__name__
    if isinstance(exc, ValueError) or state[:2] in ("22", "23"):
        return PushRefusedError(state)
    if isinstance(exc, asyncpg.PostgresError):
        return PushFailedError(state)
    return exc  # a bug: the handler's 500 and its log line, for this push only


@dataclass(frozen=True, slots=True)
class Stored:
    acked_seq: int
    stored: int
    conflicts: int
    committed_at: float  # syncd's clock just after the transaction that stored the batch


def _stored(row: asyncpg.Record, committed_at: float) -> Stored:
    return Stored(int(row["acked"]), int(row["stored"]), int(row["conflicts"]), committed_at)


def _columns(push: PushRequest) -> list[list]:
    rows = push.checkins
    return [
        [c.seq for c in rows],
        [bytes.fromhex(c.scan_id) for c in rows],
        [c.ticket_id for c in rows],  # bounded to bigint by CheckinIn
        [c.direction for c in rows],
        [c.outcome for c in rows],
        [c.reason for c in rows],
        [c.via for c in rows],
        [c.scanned_at for c in rows],
        [c.ref_seq for c in rows],
    ]


async def store_push(
    conn: asyncpg.Connection, gate_id: int, push: PushRequest, skew: float
) -> Stored:
    """Store one batch in one transaction (see the module docstring)."""
    row = await _store(conn, gate_id, push, skew, feed=True)  # one statement: its own transaction
    return _stored(row, time.time())


async def _store(
    conn: asyncpg.Connection, gate_id: int, push: PushRequest, skew: float, *, feed: bool
) -> asyncpg.Record:
    try:
        row = await conn.fetchrow(_STORE, gate_id, skew, *_columns(push), feed)
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == _CLASH_STATE:
            raise JournalClashError(int(exc.detail or 0)) from None
        raise
    assert row is not None
    return row


@dataclass(slots=True)
class _Waiting:
    gate_id: int
    push: PushRequest
    skew: float
    done: asyncio.Future[Stored] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Pusher:
    """Stores pushes with group commit (see the module docstring); one per replica."""

    def __init__(self, concurrency: int) -> None:
        self._queue: list[_Waiting] = []
        self._free = concurrency
        self._tasks: set[asyncio.Task[None]] = set()
        self.groups = 0  # transactions committed, for /metrics-style introspection and tests
        self.pushes = 0

    async def store(
        self, pool: asyncpg.Pool, gate_id: int, push: PushRequest, skew: float
    ) -> Stored:
        waiting = _Waiting(gate_id, push, skew)
        self._queue.append(waiting)
        if self._free > 0:
            self._free -= 1
            task = asyncio.create_task(self._drain(pool), name="syncd-push-group")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await waiting.done

    async def _drain(self, pool: asyncpg.Pool) -> None:
        try:
            while self._queue:
                group: list[_Waiting] = []
                rows = 0
                while self._queue and (
                    not group or rows + len(self._queue[0].push.checkins) <= _GROUP_ROWS
                ):
                    waiting = self._queue.pop(0)
                    rows += len(waiting.push.checkins)
                    group.append(waiting)
                await self._store_group(pool, group)
        finally:
            self._free += 1

    async def _store_group(self, pool: asyncpg.Pool, group: list[_Waiting]) -> None:
        attempts, pipelined = 0, True
        while group:
            try:
                results = await self._transaction(pool, group, pipelined)
            except _Unattributed:  # rare (a gate whose journal was replaced): find whose
                pipelined = False
                continue
            except _Clash as clash:  # that push is refused; the others go again without it
                clash.waiting.done.set_exception(JournalClashError(clash.seq))
                group = [w for w in group if w is not clash.waiting]
                continue
            except asyncpg.DeadlockDetectedError:
                attempts += 1
                if attempts <= _DEADLOCK_RETRIES:
                    log.info("push group deadlocked; retrying", extra={"pushes": len(group)})
                    continue
                self._fail(group, JournalBusyError())
                return
            except BaseException as exc:
                await self._isolate(pool, group, exc)
                return
            self.groups += 1
            self.pushes += len(group)
            for waiting, stored in zip(group, results, strict=True):
                if not waiting.done.done():
                    waiting.done.set_result(stored)
            return

    async def _isolate(self, pool: asyncpg.Pool, group: list[_Waiting], exc: BaseException) -> None:
        """The group failed with ``exc``: a database gone fails every member (and a
        cancellation goes on up); otherwise each half is stored again on its own, so only the
        push at fault learns of it (see the module docstring)."""
        if _database_gone(exc):
            self._fail(group, exc)
            if not isinstance(exc, Exception):
                raise exc
            return
        assert isinstance(exc, Exception)
        if len(group) == 1:
            log.warning(
                "push refused by Postgres",
                extra={"gate_id": group[0].gate_id, "error": type(exc).__name__},
            )
            self._fail(group, _member_error(exc))
            return
        half = len(group) // 2
        await self._store_group(pool, group[:half])
        await self._store_group(pool, group[half:])

    @staticmethod
    def _fail(group: list[_Waiting], exc: BaseException) -> None:
        for waiting in group:
            if not waiting.done.done():
                waiting.done.set_exception(exc)

    @staticmethod
    async def _transaction(
        pool: asyncpg.Pool, group: list[_Waiting], pipelined: bool = True
    ) -> list[Stored]:
        """One group transaction. The pushes' calls are pipelined (one round trip for all:
        with 10,000 gates of 500 events pushing one admission each, a call per push and a
        feed append per event were the group's time); a clash in the pipeline does not say
        whose it was, so that group is stored again a call at a time, which does."""
        feeds: dict[int, tuple[list[int], list[int], list[int], list[str]]] = {}
        async with pool.acquire() as conn, conn.transaction():
            if len(group) > 1 and pipelined:
                try:
                    rows = await conn.fetchmany(_STORE, [_args(w) for w in group])
                except asyncpg.PostgresError as exc:
                    if exc.sqlstate != _CLASH_STATE:
                        raise
                    raise _Unattributed from None
            else:
                rows = [await _one(conn, waiting) for waiting in group]
            for waiting, row in zip(group, rows, strict=True):
                if row["adm_seqs"]:
                    gates, seqs, tickets, kinds = feeds.setdefault(
                        row["event_id"], ([], [], [], [])
                    )
                    gates += [waiting.gate_id] * len(row["adm_seqs"])
                    seqs += row["adm_seqs"]
                    tickets += row["adm_tickets"]
                    kinds += row["adm_kinds"]
            # Last, in event order: each event's row lock is held only from here to the commit.
            await conn.executemany(_FEED, [(e, *feeds[e]) for e in sorted(feeds)])
        committed_at = time.time()
        return [_stored(row, committed_at) for row in rows]


def _args(waiting: _Waiting) -> tuple[object, ...]:
    return (waiting.gate_id, waiting.skew, *_columns(waiting.push), False)


async def _one(conn: asyncpg.Connection, waiting: _Waiting) -> asyncpg.Record:
    try:
        return await _store(conn, waiting.gate_id, waiting.push, waiting.skew, feed=False)
    except JournalClashError as exc:
        raise _Clash(waiting, exc.seq) from None


class _Unattributed(Exception):
    """A clash somewhere in a pipelined group: store its pushes one by one to find it."""


class _Clash(Exception):
    def __init__(self, waiting: _Waiting, seq: int) -> None:
        super().__init__(seq)
        self.waiting, self.seq = waiting, seq


class JournalBusyError(Exception):
    """The push kept deadlocking with others on the same tickets; the gate retries later."""
