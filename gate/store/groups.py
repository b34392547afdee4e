"""Groups in the local list: a ticket's fellow members, and a group check-in in one transaction.

A ticket may belong to a group (an order, a family: the list's ``group`` column, NULL = none).
``check_in_group`` is ``Store.check_in`` for a ticket whose group may follow it in: in one
``Store.write`` (the writer lock, the connection's own thread, one transaction), it
looks the ticket up, lets ``judge`` decide (pure, no I/O) and journals the result; when
``follow`` says so (the ticket was admitted), it reads the other members of its group in the
same event and does the same for each with ``judge_member``: every member is decided from its
own list row and entry state and gets a journal row of its own. One commit, one fsync, for the
whole group: a power cut keeps all of it or none, and nobody saw a result before it. A group
with more than ``limit`` other members is not expanded (``too_large``): one scan never writes
more than ``limit + 1`` rows, whatever a list holds.

Like ``Store.check_in`` it raises ``StaleCacheError`` (recording nothing, after reloading the
cache) when another process changed the database since the keys and events were cached.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from gate.store.db import Store, Writing
from gate.store.records import JournalEntry, LocalState
from gate.store.search import MAX_TICKET_ID

T = TypeVar("T")
M = TypeVar("M")

_GROUP_OF = "SELECT group_ref FROM tickets WHERE event_id = ? AND ticket_id = ?"
# The partial index tickets_group_a/_b (event_id, group_ref), ticket_id implied: one probe.
_MEMBERS = """SELECT ticket_id FROM tickets
WHERE event_id = ?1 AND group_ref = ?2 AND group_ref IS NOT NULL AND ticket_id != ?3
ORDER BY ticket_id LIMIT ?4"""
_SIZE = """SELECT count(*) FROM (SELECT 1 FROM tickets
WHERE event_id = ?1 AND group_ref = ?2 AND group_ref IS NOT NULL LIMIT ?3)"""


@dataclass(frozen=True, slots=True)
class GroupCheckIn(Generic[T, M]):
    """What ``check_in_group`` recorded: the ticket's result and journal seq, then each other
    member's (ticket id, result, seq) in ticket order. ``group`` is the ticket's group (None:
    it has none); ``too_large`` when the group has more than ``limit`` other members (none of
    them was checked)."""

    result: T
    seq: int
    group: str | None = None
    members: list[tuple[int, M, int]] = field(default_factory=list)
    too_large: bool = False


@dataclass(frozen=True, slots=True)
class GroupJudges(Generic[T, M]):
    """The pure parts of a group check-in: ``judge`` decides the scanned ticket, ``follow``
    says whether its group follows it (it was admitted), ``judge_member`` decides one other
    member (by ticket id). Each returns its result and the journal row to write."""

    judge: Callable[[LocalState], tuple[T, JournalEntry]]
    follow: Callable[[T], bool]
    judge_member: Callable[[int, LocalState], tuple[M, JournalEntry]]


async def check_in_group(
    store: Store, event_id: int, ticket_id: int, judges: GroupJudges[T, M], limit: int
) -> GroupCheckIn[T, M]:
    """Check ``ticket_id`` in and, when ``judges.follow`` says so, the others of its group
    (at most ``limit`` of them: a larger group is ``too_large``).

    Raises ``StaleCacheError`` as ``Store.check_in`` does; ``sqlite3.Error``/``OSError`` when
    the journal cannot be written (then nothing was: the transaction rolled back).
    """
    return await store.write(lambda w: _record(w, event_id, ticket_id, judges, limit))


def _record(
    w: Writing, event_id: int, ticket_id: int, judges: GroupJudges[T, M], limit: int
) -> GroupCheckIn[T, M]:
    """Inside the transaction: the ticket, then its group."""
    result, entry = judges.judge(w.look(event_id, ticket_id))
    seq = w.append(entry)
    group = _group_of(w.db, event_id, ticket_id)
    if group is None or not judges.follow(result):
        return GroupCheckIn(result, seq, group)
    others = [r[0] for r in w.db.execute(_MEMBERS, (event_id, group, ticket_id, limit + 1))]
    if len(others) > limit:
        return GroupCheckIn(result, seq, group, too_large=True)
    members = []
    for member in others:
        judged, member_entry = judges.judge_member(member, w.look(event_id, member))
        members.append((member, judged, w.append(member_entry)))
    return GroupCheckIn(result, seq, group, members)


def _group_of(db: sqlite3.Connection, event_id: int, ticket_id: int) -> str | None:
    if not 0 <= ticket_id <= MAX_TICKET_ID:
        return None
    found = db.execute(_GROUP_OF, (event_id, ticket_id)).fetchone()
    return found[0] if found is not None else None


async def group_size(store: Store, event_id: int, ticket_id: int, limit: int) -> int:
    """How many tickets the ticket's group has, itself included, counted up to ``limit + 1``
    (more means too large); 0 when it has no group (or is not on the list)."""
    if not 0 <= ticket_id <= MAX_TICKET_ID:
        return 0
    rows = list(await store.conn.execute_fetchall(_GROUP_OF, (event_id, ticket_id)))
    if not rows or rows[0][0] is None:
        return 0
    counted = await store.conn.execute_fetchall(_SIZE, (event_id, rows[0][0], limit + 1))
    return int(next(iter(counted))[0])
