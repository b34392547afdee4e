"""Open dashboards, and one computation of an event's figures for all of them.

Each open dashboard is one server-sent-event stream (``Viewer``)::

    event: figures         the event's figures as JSON (api/dashboard.py makes them)
    data: {...}

    : keepalive            after ``refresh`` seconds without a write (when figures could not
                           be computed: Postgres away)

    event: closed          the stream ends: replaced (the token opened one too many), revoked
    data: {"reason": ...}  (the token no longer resolves), slow, or shutdown

Nothing is read per viewer. The notifier calls ``kick`` when an event's figures may have
changed (a feed advance, or ``tessera_figures``: any check-in, drill, capacity); the hub
computes that event's figures once, at most once every ``interval`` seconds (advances in
between are folded into the next computation), and writes the same bytes to every open
dashboard of the event. Events with no open dashboard are never computed. Every ``refresh``
seconds an event with open dashboards is computed again even when quiet, so a gate that
stopped talking turns offline on screen. A dashboard whose socket buffer holds more than
``busy_bytes`` unsent (it is not reading) is dropped rather than waited for; so is one whose
write takes longer than ``write_timeout``. One token holds at most ``per_token`` streams on a
replica: a newer one closes the oldest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

log = logging.getLogger("syncd.dashboard")
KEEPALIVE = b": keepalive\n\n"
Compute = Callable[[int], Awaitable[bytes]]
StillValid = Callable[[str], Awaitable[int | None]]  # credential -> token id, or None


def frame(kind: str, data: object) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@dataclass(frozen=True, slots=True)
class HubConfig:
    interval: float = 1.0
    refresh: float = 10.0
    per_token: int = 8
    busy_bytes: int = 256 * 1024
    write_timeout: float = 5.0


@dataclass(eq=False)
class Viewer:
    """One open dashboard: an event, the token that opened it and its response."""

    event_id: int
    token_id: int
    credential: str  # looked up again after the LISTEN connection was lost
    response: web.StreamResponse
    transport: asyncio.BaseTransport | None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""
    last_write: float = 0.0


class DashboardHub:
    def __init__(self, compute: Compute, config: HubConfig, still_valid: StillValid) -> None:
        self._compute = compute
        self.config = config
        self._still_valid = still_valid
        self._viewers: dict[int, set[Viewer]] = {}  # by event
        self._by_token: dict[int, list[Viewer]] = {}  # oldest first
        self._latest: dict[int, bytes] = {}  # the last figures frame per watched event
        self._computed: dict[int, float] = {}  # monotonic time of the last computation
        self._dirty: set[int] = set()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.computations = 0  # figures computed (tests and the bench count them)

    @property
    def viewers(self) -> int:
        return sum(len(v) for v in self._viewers.values())

    async def watch(self, viewer: Viewer) -> None:
        """Serve ``viewer`` until it is closed; returns then (the handler ends the response)."""
        self._join(viewer)
        try:
            latest = self._latest.get(viewer.event_id)
            if latest is not None:
                await self._send(viewer, latest)
            else:
                self.kick(viewer.event_id)
            await viewer.closed.wait()
            if viewer.reason and viewer.reason != "gone":
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        viewer.response.write(frame("closed", {"reason": viewer.reason})), 1.0
                    )
        finally:
            self._leave(viewer)

    def _join(self, viewer: Viewer) -> None:
        self._viewers.setdefault(viewer.event_id, set()).add(viewer)
        mine = self._by_token.setdefault(viewer.token_id, [])
        mine.append(viewer)
        while len(mine) > self.config.per_token:
            self.close(mine.pop(0), "replaced")

    def _leave(self, viewer: Viewer) -> None:
        if (here := self._viewers.get(viewer.event_id)) is not None:
            here.discard(viewer)
            if not here:
                del self._viewers[viewer.event_id]
                self._latest.pop(viewer.event_id, None)  # no one watches: no notifications kept
        if (mine := self._by_token.get(viewer.token_id)) is not None:
            if viewer in mine:
                mine.remove(viewer)
            if not mine:
                del self._by_token[viewer.token_id]

    @staticmethod
    def close(viewer: Viewer, reason: str) -> None:
        if not viewer.closed.is_set():
            viewer.reason = reason
            viewer.closed.set()

    def close_all(self, reason: str = "shutdown") -> None:
        for viewers in list(self._viewers.values()):
            for viewer in list(viewers):
                self.close(viewer, reason)

    # -- what changed -------------------------------------------------------------------------
    def kick(self, event_id: int) -> None:
        """The event's figures may have changed (0: any event's): compute them, once at a time,
        if anyone watches."""
        for eid in list(self._viewers) if event_id == 0 else [event_id]:
            if eid not in self._viewers:
                continue
            self._dirty.add(eid)
            if eid not in self._running:
                self._running[eid] = asyncio.create_task(self._run(eid), name=f"dashboard-{eid}")

    def credentials_changed(self, kind: str, subject: int) -> None:
        """The notifier's credential callback: a revoked token's dashboards close at once; after
        a lost LISTEN connection (``"*"``) every open dashboard's token is looked up again."""
        if kind == "token":
            for viewer in list(self._by_token.get(subject, ())):
                self.close(viewer, "revoked")
        elif kind == "*" and self._by_token:
            self._spawn(self._recheck())

    async def _recheck(self) -> None:
        for viewers in list(self._by_token.values()):
            for viewer in list(viewers):
                if await self._still_valid(viewer.credential) != viewer.token_id:
                    self.close(viewer, "revoked")

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- computing and writing ----------------------------------------------------------------
    async def _run(self, event_id: int) -> None:
        try:
            while event_id in self._dirty and event_id in self._viewers:
                wait = self._computed.get(event_id, -1e18) + self.config.interval
                if (left := wait - time.monotonic()) > 0:
                    await asyncio.sleep(left)  # advances meanwhile fold into this computation
                self._dirty.discard(event_id)
                self._computed[event_id] = time.monotonic()
                try:
                    data = await self._compute(event_id)
                except Exception:
                    log.exception("dashboard figures not computed; next at the next change")
                    continue
                self.computations += 1
                if event_id in self._viewers:
                    self._latest[event_id] = data
                    await self._send_all(list(self._viewers[event_id]), data)
        finally:
            del self._running[event_id]
            if event_id not in self._viewers:
                self._computed.pop(event_id, None)

    async def _send_all(self, viewers: list[Viewer], data: bytes) -> None:
        await asyncio.gather(*(self._send(v, data) for v in viewers))

    async def _send(self, viewer: Viewer, data: bytes) -> None:
        """Write without waiting on a dashboard that does not read: drop it instead."""
        transport = viewer.transport
        if viewer.closed.is_set():
            return
        if transport is None or transport.is_closing():
            self.close(viewer, "gone")
            return
        if transport.get_write_buffer_size() > self.config.busy_bytes:  # type: ignore[attr-defined]
            log.info("slow dashboard dropped", extra={"event_id": viewer.event_id})
            self.close(viewer, "slow")
            return
        try:
            await asyncio.wait_for(viewer.response.write(data), self.config.write_timeout)
        except TimeoutError:
            self.close(viewer, "slow")
        except (ConnectionError, RuntimeError):
            self.close(viewer, "gone")
        else:
            viewer.last_write = time.monotonic()

    async def tick(self) -> None:
        """Every event with open dashboards, computed again after ``refresh`` quiet seconds; a
        keepalive to any dashboard that got nothing for as long (figures not computable)."""
        now = time.monotonic()
        for event_id in list(self._viewers):
            if now - self._computed.get(event_id, -1e18) >= self.config.refresh:
                self.kick(event_id)
        quiet = [
            v
            for viewers in self._viewers.values()
            for v in viewers
            if now - v.last_write >= self.config.refresh * 1.5
        ]
        if quiet:
            await self._send_all(quiet, KEEPALIVE)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.config.refresh / 4))
            try:
                await self.tick()
            except Exception:
                log.exception("dashboard tick failed")

    async def stop(self) -> None:
        """The replica stops: every dashboard closes, computations end."""
        self.close_all()
        tasks = [*self._running.values(), *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
