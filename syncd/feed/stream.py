"""The change feed pushed to a gate: one long-lived server-sent-event stream per gate.

Long-polling cost a gate one HTTP request, one authentication and one feed read per wake-up;
with 20 gates an event and every admission waking 19 of them, 10,000 gates broke one replica
(issue 22). A stream is authenticated once, then::

    event: page            one ``ChangesPage`` as JSON (the long-poll's answer, unchanged)
    data: {...}

    : keepalive            every ``heartbeat`` seconds of silence (no feed read while idle)

    event: revoked         the gate's credential was revoked or replaced; the stream ends
    data: {}

The stream starts from the gate's cursor and sends pages until it has caught up, then waits on
its ``Subscription`` (``syncd.feed.notify``). Every stream woken by the same feed advance reads
with the same generation, so ``FeedReads`` runs one query for all of the event's gates and each
gets the page without its own check-ins. A stream ends after ``snapshot_required`` (the gate
fetches the snapshot and opens a new one), when the gate's credential no longer resolves, when a
newer stream of the same gate replaces it, when a write stalls beyond ``write_timeout`` (a gate
that stopped reading must not hold memory), and when the replica shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from syncd.feed.notify import Notifier, Subscription
from syncd.feed.read import FeedReads, Reader

log = logging.getLogger(__name__)
KEEPALIVE = b": keepalive\n\n"
REVOKED = b"event: revoked\ndata: {}\n\n"
Recheck = Callable[[], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class StreamConfig:
    heartbeat: float = 15.0
    write_timeout: float = 30.0


class Closed(Exception):
    """The stream is over (replaced, revoked, stalled, or the replica stops)."""


class FeedStream:
    """One gate's stream: catch up from its cursor, then one page per feed advance."""

    def __init__(
        self,
        response: web.StreamResponse,
        reads: FeedReads,
        pool: asyncpg.Pool,
        notifier: Notifier,
        config: StreamConfig,
    ) -> None:
        self.response = response
        self.reads = reads
        self.pool = pool
        self.notifier = notifier
        self.config = config

    async def run(self, reader: Reader, cursor: str, still_valid: Recheck) -> None:
        sub = self.notifier.subscribe(reader.event_id, reader.gate_id)
        try:
            while True:
                cursor = await self._send_pages(reader, cursor, sub)
                await self._wait(sub)
                if sub.closed:
                    return
                if sub.recheck:
                    sub.recheck = False
                    if not await still_valid():
                        await self._write(REVOKED)
                        return
        except (Closed, ConnectionResetError):
            return
        finally:
            self.notifier.unsubscribe(sub)

    async def _send_pages(self, reader: Reader, cursor: str, sub: Subscription) -> str:
        """Every page after ``cursor`` there is now; returns the cursor reached."""
        while True:
            sub.wake.clear()  # before the read: an advance during it wakes the next wait
            generation = ("stream", reader.event_id, self.notifier.generation.get(reader.event_id))
            page = await self.reads.page(self.pool, reader, cursor, generation)
            if not (page.changes or page.snapshot_required or page.cursor != cursor):
                return cursor
            await self._write(b"event: page\ndata: " + page.json() + b"\n\n")
            if page.snapshot_required:
                raise Closed
            cursor = page.cursor
            if not page.more:
                return cursor

    async def _wait(self, sub: Subscription) -> None:
        """Until the feed advances or the subscription changes; a keepalive meanwhile."""
        while not sub.wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sub.wake.wait(), self.config.heartbeat)
                return
            await self._write(KEEPALIVE)

    async def _write(self, data: bytes) -> None:
        try:
            await asyncio.wait_for(self.response.write(data), self.config.write_timeout)
        except TimeoutError:
            log.warning("feed stream stalled: closed")
            raise Closed from None
