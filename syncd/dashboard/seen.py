"""Which gates this replica saw lately, and the backlogs they reported, for the dashboard.

"Online" has to hold across replicas: a gate may stream from replica 2 while an organiser's
dashboard is served by replica 1. So each replica notes its sightings in memory (a push, with
the ``backlog`` the gate reported; a long-poll; every gate holding a feed stream here) and writes
them to ``gate_seen`` (migration 0013) in one statement every ``interval`` seconds, never one
per request. A gate that holds a stream is written again only every third of
``online_seconds``: enough to stay online, and 10,000 streaming gates cost one statement of a
few hundred rows a second on average. A replica that saw nothing writes nothing. A backlog
that differs from the one last written for its gate is written soon (within ``SOON`` seconds),
not at the interval: the gates draining after an outage count down on screen. Each write
notifies the dashboards of the events it touched (``tessera_figures``).

A gate is *online* when it was seen or pushed within ``online_seconds`` (``is_online``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

import asyncpg
from aiohttp import web

from shared.tasks import stop
from syncd.api.queries import dashboard as q
from syncd.keys import NOTIFIER, POOL, SEEN, SETTINGS

log = logging.getLogger("syncd.seen")
SOON = 0.5  # least seconds between two writes: however many backlogs change, two a second


def is_online(seen_at: float | None, pushed_at: float | None, now: float, window: float) -> bool:
    """Seen (a push, a long-poll, an open stream) within ``window`` seconds of ``now``."""
    last = max((t for t in (seen_at, pushed_at) if t is not None), default=None)
    return last is not None and now - last <= window


class SeenGates:
    """Sightings since the last write, and when each streaming gate was last written."""

    def __init__(
        self,
        streaming: Callable[[], list[int]],
        online_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._streaming = streaming
        self._restream = online_seconds / 3
        self._clock = clock
        self._pending: dict[int, tuple[float, int | None]] = {}
        self._written: dict[int, float] = {}  # streaming gates: when last written (clock)
        self._backlogs: dict[int, int] = {}  # each gate's backlog as last written
        self.soon = asyncio.Event()  # a changed backlog waits for no interval
        self.writes = 0  # statements written (tests, the bench)

    def saw(self, gate_id: int, backlog: int | None = None) -> None:
        """Note a request of ``gate_id``; ``backlog``: what it reported (None: nothing)."""
        if backlog is None and (earlier := self._pending.get(gate_id)) is not None:
            backlog = earlier[1]  # a later long-poll does not forget a reported backlog
        self._pending[gate_id] = (self._clock(), backlog)
        if backlog is not None and self._backlogs.get(gate_id) != backlog:
            self.soon.set()

    def take(self) -> dict[int, tuple[float, int | None]]:
        """The rows to write now (and forget): pending sightings, and streaming gates not
        written for a third of the online window."""
        rows, self._pending = self._pending, {}
        now = self._clock()
        streaming = set(self._streaming())
        self._written = {g: t for g, t in self._written.items() if g in streaming}
        for gate in streaming:
            if gate not in rows and now - self._written.get(gate, -1e18) >= self._restream:
                rows[gate] = (now, None)
        for gate in rows.keys() & streaming:
            self._written[gate] = now
        for gate, (_, backlog) in rows.items():
            if backlog is not None:
                self._backlogs[gate] = backlog
        return rows

    async def write(self, pool: asyncpg.Pool) -> int:
        rows = self.take()
        if not rows:
            return 0
        gates = sorted(rows)
        try:
            await q.record_seen(
                pool, gates, [rows[g][0] for g in gates], [rows[g][1] for g in gates]
            )
        except Exception:
            for gate in gates:  # written at the next interval instead (a backlog is not lost)
                self._pending.setdefault(gate, rows[gate])
                self._written.pop(gate, None)
                self._backlogs.pop(gate, None)
            raise
        self.writes += 1
        return len(gates)

    async def run(self, pool: asyncpg.Pool, interval: float) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.soon.wait(), interval)
            self.soon.clear()
            try:
                await self.write(pool)
            except Exception as exc:  # Postgres away: keep the sightings, try again
                log.warning("gate sightings not written: %s", type(exc).__name__)
            await asyncio.sleep(SOON)


def seen_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` after the pool and the notifier: this replica's sightings writer."""
    return _seen(app)


async def _seen(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    seen = SeenGates(app[NOTIFIER].streaming_gates, settings.gate_online_seconds)
    app[SEEN] = seen
    task = asyncio.create_task(seen.run(app[POOL], settings.gate_seen_interval), name="seen")
    yield
    await stop(task)
    try:
        await seen.write(app[POOL])  # the last sightings, so a restart does not blank them
    except Exception as exc:
        log.warning("last gate sightings not written: %s", type(exc).__name__)
