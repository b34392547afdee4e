"""Postgres LISTEN/NOTIFY for this replica: feed advances wake long-polls, outbox rows the relay.

One dedicated connection (outside the pool) listens on ``tessera_feed`` (payload: event id,
sent by the ``events`` trigger at commit) and ``tessera_outbox``. Because every writer's commit
notifies every listening replica, a gate long-polling replica 2 hears about a check-in pushed
to replica 1. When the connection drops it is reopened with capped backoff, and every waiter is
woken on reconnect (a notification may have been missed while away): waiters always re-read
the feed, so a spurious wake costs one query and a missed one at most the waiter's timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from shared.tasks import stop
from syncd.keys import NOTIFIER

log = logging.getLogger("syncd.notify")
FEED_CHANNEL = "tessera_feed"
OUTBOX_CHANNEL = "tessera_outbox"


class Notifier:
    def __init__(self, url: str, heartbeat: float = 2.0) -> None:
        self._url = url
        self._heartbeat = heartbeat
        self._feed: dict[int, asyncio.Event] = {}
        self.outbox = asyncio.Event()
        self.connected = False

    def feed_event(self, event_id: int) -> asyncio.Event:
        """The flag that is set at the next advance of ``event_id``'s feed. Take it *before*
        reading the feed, then wait on it, so an advance in between is never missed."""
        return self._feed.setdefault(event_id, asyncio.Event())

    def _on_feed(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit() and (flag := self._feed.pop(int(payload), None)) is not None:
            flag.set()

    def _on_outbox(self, *_args: object) -> None:
        self.outbox.set()

    def wake_all(self) -> None:
        flags, self._feed = self._feed, {}
        for flag in flags.values():
            flag.set()
        self.outbox.set()

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._session()
                attempt = 0
            except Exception as exc:  # any failure: reconnect, never stop listening
                log.warning("LISTEN connection lost: %s", type(exc).__name__)
            self.connected = False
            attempt += 1
            await asyncio.sleep(random.uniform(0, min(5.0, 0.2 * 2**attempt)))

    async def _session(self) -> None:
        conn = await asyncpg.connect(self._url, timeout=5)
        try:
            await conn.add_listener(FEED_CHANNEL, self._on_feed)
            await conn.add_listener(OUTBOX_CHANNEL, self._on_outbox)
            self.connected = True
            self.wake_all()
            while not conn.is_closed():
                await asyncio.sleep(self._heartbeat)
                await asyncio.wait_for(conn.fetchval("SELECT 1"), self._heartbeat)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)


def notifier_ctx(url: str):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        notifier = Notifier(url)
        app[NOTIFIER] = notifier
        task = asyncio.create_task(notifier.run(), name="syncd-notifier")
        yield
        await stop(task)

    return ctx
