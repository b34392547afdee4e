"""One list push as a two-stage pipeline: parse batches while Postgres applies the last one.

The producer task reads and checks the body into batches of records; the consumer COPYs each
batch into ``stage`` and applies it, all in the caller's single transaction. Python parsing
and Postgres work overlap (the loop parses while it awaits Postgres). Any problem, anywhere in
the file, makes the caller roll the whole transaction back: a push is applied whole or not at
all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from syncd.lists import apply
from syncd.lists.rows import Problem, Record, RowChecker

BATCH_ROWS = 50_000
_DONE = object()


@dataclass
class PushJob:
    conn: asyncpg.Connection
    event_id: int
    complete: bool
    checker: RowChecker
    lock: Callable[[], Awaitable[bytes]]  # locks the event row, returns the signer kid
    batch_rows: int = BATCH_ROWS
    phases: apply.Phases = field(default_factory=apply.Phases)
    duplicates: apply.Duplicates = field(default_factory=apply.Duplicates)


async def _produce(records: AsyncIterator[Record], queue: asyncio.Queue, size: int) -> None:
    batch: list[Record] = []
    try:
        async for record in records:
            batch.append(record)
            if len(batch) >= size:
                await queue.put(batch)
                batch = []
        if batch:
            await queue.put(batch)
        await queue.put(_DONE)
    except Exception as exc:
        await queue.put(exc)


async def _batches(job: PushJob, records: AsyncIterator[Record]) -> AsyncIterator[list[Record]]:
    queue: asyncio.Queue = asyncio.Queue(maxsize=1)
    producer = asyncio.create_task(_produce(job.duplicates.watch(records), queue, job.batch_rows))
    try:
        while (item := await queue.get()) is not _DONE:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer


async def run(job: PushJob, records: AsyncIterator[Record]) -> apply.PushResult:
    """Stage and apply every batch; raises nothing for bad rows (see ``problems``)."""
    await apply.create_stage(job.conn)
    result = apply.PushResult()
    signer: bytes | None = None
    base, analyzed, fresh, stopped = 0, False, False, False
    job.phases.mark("start")
    async for batch in _batches(job, records):
        job.phases.mark("wait_for_parse")
        await apply.copy_batch(job.conn, batch)
        job.phases.mark("copy")
        if job.checker.problem_count or stopped:
            continue  # the push will be refused; keep staging only to find duplicates
        if signer is None:
            signer, base = await _lock(job)
            fresh = not await apply.has_tickets(job.conn, job.event_id)
        try:
            async with job.conn.transaction():  # a savepoint: a fresh batch may hit a duplicate
                counts = await apply.apply_batch(job.conn, job.event_id, signer, base, batch, fresh)
        except asyncpg.UniqueViolationError:
            stopped = True  # a reference repeats within the file; ``problems`` will name it
            continue
        for key, n in counts.items():
            result.counts[key] = result.counts.get(key, 0) + n
        if not analyzed and counts.get("added"):
            await apply.refresh_statistics(job.conn)  # once: the planner scales by table size
            analyzed = True
        base += sum(counts.values()) - counts.get("same", 0)
        job.phases.mark("apply")
    if signer is None:
        signer, base = await _lock(job)
    result.rows = sum(result.counts.values())
    if stopped and not await problems(job):
        raise RuntimeError("unique violation without a duplicate in the file")
    if job.complete and not await problems(job):
        result.revoked = await apply.revoke_missing(job.conn, job.event_id, base)
        base += result.revoked
        job.phases.mark("revoke")
    await job.conn.execute(
        "UPDATE events SET change_seq = $2 WHERE event_id = $1", job.event_id, base
    )
    return result


async def _lock(job: PushJob) -> tuple[bytes, int]:
    signer = await job.lock()
    base = await job.conn.fetchval(
        "SELECT change_seq FROM events WHERE event_id = $1", job.event_id
    )
    return signer, int(base)


async def problems(job: PushJob) -> list[Problem]:
    """Row problems plus duplicates; cached after the first call."""
    if not hasattr(job, "_problems"):
        found = await job.duplicates.problems(job.conn, job.checker.max_problems)
        for p in found:
            job.checker.add(p.row, p.column, p.problem)
        job._problems = sorted(job.checker.problems, key=lambda p: (p.row, p.column))  # type: ignore[attr-defined]
    return job._problems  # type: ignore[attr-defined,no-any-return]
