"""The change feed pushed to a gate: one long-lived server-sent-event stream per gate.

Long-polling cost a gate one HTTP request, one authentication and one feed read per wake-up;
with 20 gates an event and every admission waking 19 of them, 10,000 gates broke one replica
(issue 22). A stream is authenticated once, then::

    event: page            one ``ChangesPage`` as JSON (the long-poll's answer, unchanged)
    data: {...}

    : keepalive            after ``heartbeat`` seconds without a write (no feed read for it)

    event: revoked         the gate's credential was revoked or replaced; the stream ends
    data: {}

A stream first catches up from the gate's cursor by itself (``FeedStream``: pages until the
head). Then it is *live*: at each advance of the event's feed the ``Broadcaster`` reads the new
changes once (one ``FeedReads`` slice for all the event's live streams at the same cursor) and
writes each gate its page without its own check-ins; no task per gate wakes, and nothing is
read while the event is quiet. A live stream whose client stops reading (its socket's buffer
fills) goes back to writing by itself, where a write that stalls beyond ``write_timeout`` closes
it; so does a page the broadcaster does not handle (``more``, ``snapshot_required``). A stream
ends after ``snapshot_required`` (the gate fetches the snapshot and opens a new one), when the
gate's credential no longer resolves, when a newer stream of the same gate replaces it, and
when the replica shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from syncd.feed.notify import Notifier, Subscription
from syncd.feed.read import FeedReads, Reader
from syncd.keys import BROADCASTER, FEED_READS, NOTIFIER, POOL, SETTINGS

log = logging.getLogger(__name__)
KEEPALIVE = b": keepalive\n\n"
REVOKED = b"event: revoked\ndata: {}\n\n"
BUSY_BUFFER = 64 * 1024  # bytes unsent to a gate: it is not keeping up, stop writing for it
Recheck = Callable[[], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class StreamConfig:
    heartbeat: float = 15.0
    write_timeout: float = 30.0


class Closed(Exception):
    """The stream is over (replaced, revoked, stalled, or the replica stops)."""


def event(page_json: bytes) -> bytes:
    return b"event: page\ndata: " + page_json + b"\n\n"


class Broadcaster:
    """Writes each feed advance to the event's live streams, one read per event and cursor."""

    def __init__(
        self, notifier: Notifier, reads: FeedReads, pool: asyncpg.Pool, reader: Reader
    ) -> None:
        self.notifier = notifier
        self.reads = reads
        self.pool = pool
        self.reader = reader  # page size and lag limit; event and gate are set per read
        self._dirty: set[int] = set()
        self._running: dict[int, asyncio.Task[None]] = {}
        notifier.on_advance = self.kick

    def kick(self, event_id: int) -> None:
        """The event's feed advanced (or a stream just went live): broadcast, once at a time."""
        self._dirty.add(event_id)
        if event_id not in self._running:
            task = asyncio.create_task(self._run(event_id), name=f"broadcast-{event_id}")
            self._running[event_id] = task

    async def close(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _run(self, event_id: int) -> None:
        try:
            while event_id in self._dirty:
                self._dirty.discard(event_id)
                try:
                    await self._broadcast(event_id)
                except Exception:
                    log.exception("broadcast failed: its streams read for themselves")
                    self._hand_back(self.notifier.live_streams(event_id))
        finally:
            del self._running[event_id]

    async def _broadcast(self, event_id: int) -> None:
        by_cursor: dict[str, list[Subscription]] = {}
        for sub in self.notifier.live_streams(event_id):
            by_cursor.setdefault(sub.cursor, []).append(sub)
        generation = ("stream", event_id, self.notifier.generation.get(event_id))
        reader = Reader(event_id, 0, self.reader.page_size, self.reader.max_behind)
        for cursor, subs in by_cursor.items():
            found = await self.reads.slice(self.pool, reader, cursor, generation)
            if found is None or found.more:
                self._hand_back(subs)
                continue
            for sub in subs:
                page = found.page_for(sub.gate_id)
                if sub.live and page.cursor != sub.cursor:
                    await self._send(sub, page.cursor, event(page.json()))

    async def _send(self, sub: Subscription, cursor: str, data: bytes) -> None:
        """Write without waiting for the gate; a gate that is not reading is handed back."""
        write = sub.write
        if write is None or not sub.live:
            return
        try:
            await write(data)
        except RuntimeError:  # not reading: its own task writes, and times out
            self._hand_back([sub])
            return
        except ConnectionError:
            sub.closed = True
            sub.wake.set()
            return
        sub.cursor, sub.last_write = cursor, time.monotonic()

    @staticmethod
    def _hand_back(subs: list[Subscription]) -> None:
        for sub in subs:
            sub.live = False
            sub.wake.set()


class FeedStream:
    """One gate's stream: catch up from its cursor, then live under the broadcaster."""

    def __init__(
        self,
        response: web.StreamResponse,
        transport: asyncio.BaseTransport | None,
        reads: FeedReads,
        pool: asyncpg.Pool,
        notifier: Notifier,
        config: StreamConfig,
        broadcaster: Broadcaster,
    ) -> None:
        self.response = response
        self.transport = transport
        self.reads = reads
        self.pool = pool
        self.notifier = notifier
        self.config = config
        self.broadcaster = broadcaster

    async def run(self, reader: Reader, cursor: str, still_valid: Recheck) -> None:
        sub = self.notifier.subscribe(reader.event_id, reader.gate_id)
        sub.write = self._write_now
        try:
            while True:
                if not sub.live:
                    cursor = await self._send_pages(reader, sub.cursor or cursor, sub)
                    self._go_live(sub, cursor)
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
            sub.live, sub.write = False, None
            self.notifier.unsubscribe(sub)

    def _go_live(self, sub: Subscription, cursor: str) -> None:
        sub.cursor, sub.live = cursor, True
        self.broadcaster.kick(sub.event_id)  # an advance between the read and now is not lost

    async def _send_pages(self, reader: Reader, cursor: str, sub: Subscription) -> str:
        """Every page after ``cursor`` there is now; returns the cursor reached."""
        while True:
            sub.wake.clear()  # before the read: an advance during it wakes the next wait
            generation = ("stream", reader.event_id, self.notifier.generation.get(reader.event_id))
            page = await self.reads.page(self.pool, reader, cursor, generation)
            if not (page.changes or page.snapshot_required or page.cursor != cursor):
                return cursor
            await self._write(event(page.json()))
            sub.last_write = time.monotonic()
            if page.snapshot_required:
                raise Closed
            cursor = page.cursor
            if not page.more:
                return cursor

    async def _wait(self, sub: Subscription) -> None:
        """Until woken (handed back, replaced, recheck); a keepalive after a silent heartbeat.

        The flag is cleared on the way out, also when it was already set on the way in (an
        advance during the catch-up read: the broadcaster, kicked when the stream went live,
        delivers it); returning with it still set made ``run`` spin without ever yielding,
        which froze the replica (an e2e test's organiser call timed out)."""
        while not sub.wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sub.wake.wait(), self.config.heartbeat)
                break
            if time.monotonic() - sub.last_write >= self.config.heartbeat * 0.9:
                await self._write(KEEPALIVE)
                sub.last_write = time.monotonic()
        sub.wake.clear()

    async def _write_now(self, data: bytes) -> None:
        """The broadcaster's write: never waits for the gate (``RuntimeError`` when it would)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("stream closed")
        if transport.get_write_buffer_size() > BUSY_BUFFER:  # type: ignore[attr-defined]
            raise RuntimeError("gate not reading")
        await self.response.write(data)

    async def _write(self, data: bytes) -> None:
        try:
            await asyncio.wait_for(self.response.write(data), self.config.write_timeout)
        except TimeoutError:
            log.warning("feed stream stalled: closed")
            raise Closed from None


def broadcaster_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` after the pool and the notifier: the replica's one broadcaster."""
    return _broadcaster(app)


async def _broadcaster(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    reader = Reader(0, 0, settings.feed_page, settings.feed_max_behind)
    broadcaster = Broadcaster(app[NOTIFIER], app[FEED_READS], app[POOL], reader)
    app[BROADCASTER] = broadcaster
    yield
    await broadcaster.close()
