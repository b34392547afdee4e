"""Postgres LISTEN/NOTIFY for this replica: feed advances wake long-polls and streams, outbox
rows the relay, credential changes the principal cache and the revoked gate's open streams.

One dedicated connection (outside the pool) listens on ``tessera_feed`` (payload: event id,
sent by the ``events`` trigger at commit) and ``tessera_outbox``. Because every writer's commit
notifies every listening replica, a gate long-polling replica 2 hears about a check-in pushed
to replica 1. When the connection drops it is reopened with capped backoff, and every waiter is
woken on reconnect (a notification may have been missed while away): waiters always re-read
the feed, so a spurious wake costs one query and a missed one at most the waiter's timeout.

Streams (``syncd.feed.stream``) ``subscribe``: a stream catching up has its own wake flag, set
at every advance of its event's feed (a per-event ``generation`` counts them, so the streams
woken by the same advance share one feed read); a stream that caught up is *live*: an advance
calls ``on_advance`` (the broadcaster) once for the event instead of waking each stream. A
stream's flag is also set when its gate's credential changes (``recheck``). A gate holds
at most ``max_streams_per_gate`` streams per replica: a newer one closes the oldest.

``tessera_credentials`` (payload ``gate:<id>`` or ``token:<id>``, migration 0008) calls every
``on_credentials`` callback with the kind and id, and sets that gate's ``credential_flag``; on a
reconnect the callbacks get ``("*", 0)`` (anything may have changed meanwhile) and every gate's
flag is set, so each open stream checks its credential once.

``tessera_figures`` (payload: event id, migration 0013) and every feed advance call each
``on_figures`` callback with the event id (the organisers' dashboard, syncd/dashboard/hub.py);
on a reconnect they get 0: any event's figures may have changed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web

from shared.tasks import stop
from syncd.keys import NOTIFIER, PRINCIPALS

log = logging.getLogger("syncd.notify")
FEED_CHANNEL = "tessera_feed"
OUTBOX_CHANNEL = "tessera_outbox"
CREDENTIALS_CHANNEL = "tessera_credentials"
FIGURES_CHANNEL = "tessera_figures"
CredentialCallback = Callable[[str, int], None]
FiguresCallback = Callable[[int], None]


@dataclass(eq=False)
class Subscription:
    """One open feed stream of one gate, registered with the notifier."""

    event_id: int
    gate_id: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    recheck: bool = False  # the gate's credential may have changed: look it up again
    closed: bool = False  # replaced by a newer stream of the gate, or the replica stops
    live: bool = False  # caught up: the broadcaster writes its pages (syncd.feed.stream)
    cursor: str = ""  # what it has been sent up to, while live
    last_write: float = 0.0  # monotonic time of its last write
    write: Callable[[bytes], Awaitable[None]] | None = None  # the stream's writer, while live


class Notifier:
    def __init__(self, url: str, heartbeat: float = 2.0, max_streams_per_gate: int = 4) -> None:
        self._url = url
        self._heartbeat = heartbeat
        self.max_streams_per_gate = max_streams_per_gate
        self._streams: dict[int, set[Subscription]] = {}  # by event
        self._gate_streams: dict[int, list[Subscription]] = {}  # by gate, oldest first
        self.generation: dict[int, int] = {}  # feed advances heard, per event
        self.on_advance: Callable[[int], None] | None = None  # the broadcaster's kick
        self._feed: dict[int, asyncio.Event] = {}
        self._credentials: dict[int, asyncio.Event] = {}
        self.on_credentials: list[CredentialCallback] = []
        self.on_figures: list[FiguresCallback] = []
        self.outbox = asyncio.Event()
        self.connected = False

    def feed_event(self, event_id: int) -> asyncio.Event:
        """The flag that is set at the next advance of ``event_id``'s feed. Take it *before*
        reading the feed, then wait on it, so an advance in between is never missed."""
        return self._feed.setdefault(event_id, asyncio.Event())

    def subscribe(self, event_id: int, gate_id: int) -> Subscription:
        """Register a stream; a gate's oldest stream closes beyond ``max_streams_per_gate``."""
        sub = Subscription(event_id, gate_id)
        self._streams.setdefault(event_id, set()).add(sub)
        mine = self._gate_streams.setdefault(gate_id, [])
        mine.append(sub)
        while len(mine) > self.max_streams_per_gate:
            old = mine.pop(0)
            old.closed = True
            old.wake.set()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if (streams := self._streams.get(sub.event_id)) is not None:
            streams.discard(sub)
            if not streams:
                del self._streams[sub.event_id]
        if (mine := self._gate_streams.get(sub.gate_id)) is not None:
            if sub in mine:
                mine.remove(sub)
            if not mine:
                del self._gate_streams[sub.gate_id]

    def close_streams(self) -> None:
        """The replica stops: every stream ends (its gate reconnects to another replica)."""
        for streams in self._streams.values():
            for sub in streams:
                sub.closed = True
                sub.wake.set()

    @property
    def streams(self) -> int:
        return sum(len(s) for s in self._streams.values())

    def streaming_gates(self) -> list[int]:
        """The gates holding a feed stream on this replica now."""
        return list(self._gate_streams)

    def _on_feed(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if not payload.isdigit():
            return
        event_id = int(payload)
        if (flag := self._feed.pop(event_id, None)) is not None:
            flag.set()
        self.generation[event_id] = self.generation.get(event_id, 0) + 1
        live = False
        for sub in self._streams.get(event_id, ()):
            if sub.live:
                live = True
            else:
                sub.wake.set()
        if live and self.on_advance is not None:
            self.on_advance(event_id)
        self._figures(event_id)

    def _on_figures(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit():
            self._figures(int(payload))

    def _figures(self, event_id: int) -> None:
        for callback in self.on_figures:
            try:
                callback(event_id)
            except Exception:
                log.exception("figures callback failed")

    def live_streams(self, event_id: int) -> list[Subscription]:
        return [s for s in self._streams.get(event_id, ()) if s.live and not s.closed]

    def credential_flag(self, gate_id: int) -> asyncio.Event:
        """The flag set at the next change of ``gate_id``'s credential (revoked, replaced)."""
        return self._credentials.setdefault(gate_id, asyncio.Event())

    def _on_outbox(self, *_args: object) -> None:
        self.outbox.set()

    def _on_credentials(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        kind, _, number = payload.partition(":")
        if not number.isdigit():
            return
        subject = int(number)
        self._changed(kind, subject)
        if kind == "gate" and (flag := self._credentials.pop(subject, None)) is not None:
            flag.set()
        for sub in self._gate_streams.get(subject, ()) if kind == "gate" else ():
            sub.recheck = True
            sub.wake.set()

    def _changed(self, kind: str, subject: int) -> None:
        for callback in self.on_credentials:
            try:
                callback(kind, subject)
            except Exception:
                log.exception("credential callback failed")

    def wake_all(self) -> None:
        flags, self._feed = self._feed, {}
        for flag in flags.values():
            flag.set()
        self._changed("*", 0)
        credentials, self._credentials = self._credentials, {}
        for flag in credentials.values():
            flag.set()
        for event_id, streams in self._streams.items():
            self.generation[event_id] = self.generation.get(event_id, 0) + 1
            for sub in streams:
                sub.recheck, sub.live = True, False  # each reads for itself again
                sub.wake.set()
        self.outbox.set()
        self._figures(0)

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
            await conn.add_listener(CREDENTIALS_CHANNEL, self._on_credentials)
            await conn.add_listener(FIGURES_CHANNEL, self._on_figures)
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
        notifier.on_credentials.append(app[PRINCIPALS].forget)
        app[NOTIFIER] = notifier
        task = asyncio.create_task(notifier.run(), name="syncd-notifier")
        yield
        notifier.close_streams()
        await stop(task)

    return ctx


async def close_streams(app: web.Application) -> None:
    """``on_shutdown``: end every open feed stream, so the server need not wait for them."""
    if NOTIFIER in app:
        app[NOTIFIER].close_streams()
