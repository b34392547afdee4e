"""Applying a checked list in the caller's single transaction: COPY, lock, apply by batches.

By the time this runs the body is complete, parsed and free of problems (``parse.check_list``),
so the transaction waits on Postgres only, never on a client. Its statements get their own,
longer ``statement_timeout`` (``SET LOCAL``): a million-row list fits, while the pool's default
stays short for every other request. A push is applied whole or not at all: any error rolls the
transaction back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from syncd.lists import apply

BATCH_ROWS = 50_000


@dataclass(frozen=True, slots=True)
class Checked:
    """A list that passed every check: ``rows`` records numbered 1..rows in ``copy_file``."""

    rows: int
    copy_file: Path
    phases: apply.Phases


@dataclass
class PushJob:
    conn: asyncpg.Connection
    event_id: int
    complete: bool
    checked: Checked
    lock: Callable[[], Awaitable[bytes]]  # locks the event row, returns the signer kid
    statement_timeout: float = 600.0
    batch_rows: int = BATCH_ROWS

    @property
    def phases(self) -> apply.Phases:
        return self.checked.phases


async def run(job: PushJob) -> apply.PushResult:
    """Stage the whole file, then apply it batch by batch under the event row lock."""
    conn, result = job.conn, apply.PushResult()
    await conn.execute(f"SET LOCAL statement_timeout = '{int(job.statement_timeout * 1000)}ms'")
    await apply.create_stage(conn)
    job.phases.mark("connect")
    await apply.copy_file(conn, job.checked.copy_file)
    job.phases.mark("copy")
    signer, base = await _lock(job)
    fresh = not await apply.has_tickets(conn, job.event_id)
    analyzed = False
    rows = job.checked.rows
    for first in range(1, rows + 1, job.batch_rows):
        batch = range(first, min(first + job.batch_rows, rows + 1))
        counts = await apply.apply_batch(conn, job.event_id, signer, base, batch, fresh)
        for key, n in counts.items():
            result.counts[key] = result.counts.get(key, 0) + n
        if not analyzed and counts.get("added"):
            await apply.refresh_statistics(conn)  # once: the planner scales by table size
            analyzed = True
        base += sum(counts.values()) - counts.get("same", 0)
        job.phases.mark("apply")
    result.rows = sum(result.counts.values())
    if job.complete:
        result.revoked = await apply.revoke_missing(conn, job.event_id, base)
        base += result.revoked
        job.phases.mark("revoke")
    await conn.execute("UPDATE events SET change_seq = $2 WHERE event_id = $1", job.event_id, base)
    return result


async def _lock(job: PushJob) -> tuple[bytes, int]:
    signer = await job.lock()
    base = await job.conn.fetchval(
        "SELECT change_seq FROM events WHERE event_id = $1", job.event_id
    )
    return signer, int(base)
