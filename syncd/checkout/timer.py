"""``checkout.automatic``: one message per event and check-out boundary, through the outbox.

**Where it runs.** Every replica and worker runs a ``CheckoutTimer``; none is elected. The
database makes each announcement happen once: the first transaction to insert the row
(event, boundary) into ``checkouts`` writes the outbox message in the same transaction; any other
replica's insert waits for that commit and then inserts nothing. So a replica that dies
mid-way leaves nothing half done, a restart announces nothing twice, and the timer does not
depend on the broker (the relay publishes the row whenever RabbitMQ is there) nor on the relay's
leadership, whose holder changes with the broker connection.

**Which boundaries.** At each look the timer takes, per event with a check-out time, the
latest boundary at or before now (shared.checkout). It is announced if it is newer than the
last one announced and than the moment the check-out time or the time zone was last set
(``checkout_since``: turning the setting on at 15:00 announces no check-out of 04:00 that
morning). A syncd that was down
over several boundaries therefore announces the latest one once, late, and none of the missed
ones before it. The timer looks every ``SYNCD_CHECKOUT_INTERVAL`` seconds, and also wakes at
the next boundary of the events it saw, so an announcement follows its boundary within about
a second.

**The message.** ``{"type": "checkout.automatic", "event_id", "boundary", "since",
"checkout_time", "timezone", "inside", "stored_at"}``: ``boundary`` and ``since`` (the boundary
before it) are Unix seconds; ``inside`` is how many tickets were inside just before the
boundary, by what syncd held when it announced (an entry since ``since`` that was their latest
admission), and now count as outside. The relay sets ``message_id`` to the outbox id, as for
every message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from shared.checkout import latest_checkout, next_checkout
from shared.tasks import stop
from syncd.keys import POOL, SETTINGS

log = logging.getLogger("syncd.checkout")

_EVENTS = """SELECT e.event_id, e.timezone, to_char(e.checkout_time, 'HH24:MI') AS checkout,
       extract(epoch FROM e.checkout_since)::float8 AS since,
       (SELECT max(c.boundary) FROM checkouts c WHERE c.event_id = e.event_id) AS last
FROM events e WHERE e.checkout_time IS NOT NULL"""
_CLAIM = """INSERT INTO checkouts (event_id, boundary, inside) VALUES ($1, $2, 0)
ON CONFLICT (event_id, boundary) DO NOTHING RETURNING event_id"""
# Inside just before the boundary $2: the ticket's latest admission before it is an entry made
# since the boundary before, $3 (an older one was counted out then).
_ANNOUNCE = """WITH latest AS (
    SELECT DISTINCT ON (ticket_id) direction, at FROM checkins
    WHERE event_id = $1 AND outcome = 'admit' AND NOT annulled AND ticket_id IS NOT NULL
      AND at < $2
    ORDER BY ticket_id, at DESC, gate_id DESC, seq DESC
), counted AS (
    UPDATE checkouts SET inside = (SELECT count(*) FROM latest
                                   WHERE direction = 'in' AND at >= $3)
    WHERE event_id = $1 AND boundary = $2 RETURNING inside
)
INSERT INTO outbox (routing_key, event_id, body)
SELECT 'checkout.automatic', $1, jsonb_build_object(
    'type', 'checkout.automatic', 'event_id', $1::bigint, 'boundary', $2::float8,
    'since', $3::float8, 'checkout_time', $4::text, 'timezone', $5::text,
    'inside', counted.inside, 'stored_at', extract(epoch FROM clock_timestamp()))::text
FROM counted RETURNING body"""
_MIN_SLEEP = 0.05


@dataclass(frozen=True, slots=True)
class Due:
    """An event whose latest boundary has not been announced yet."""

    event_id: int
    boundary: float
    since: float  # the boundary before it
    checkout: str
    timezone: str


@dataclass(frozen=True, slots=True)
class Look:
    """What one look found: the bodies of the messages it wrote, and when the next boundary
    of the events it saw passes (None: no event has a check-out time)."""

    announced: list[str]
    next_at: float | None


async def look(pool: asyncpg.Pool, now: float) -> Look:
    """Announce every due boundary at ``now`` (each in its own transaction)."""
    rows = await pool.fetch(_EVENTS)
    announced = []
    for due in _due(rows, now):
        body = await announce(pool, due)
        if body is not None:
            announced.append(body)
    upcoming = [next_checkout(now, r["timezone"], r["checkout"]) for r in rows]
    return Look(announced, min((u for u in upcoming if u is not None), default=None))


def _due(rows: list[asyncpg.Record], now: float) -> list[Due]:
    found = []
    for r in rows:
        boundary = latest_checkout(now, r["timezone"], r["checkout"])
        if boundary is None or boundary <= r["since"]:
            continue
        if r["last"] is not None and boundary <= r["last"]:
            continue
        since = latest_checkout(boundary - 1, r["timezone"], r["checkout"])
        assert since is not None
        found.append(Due(r["event_id"], boundary, since, r["checkout"], r["timezone"]))
    return found


async def announce(pool: asyncpg.Pool, due: Due) -> str | None:
    """Claim (event, boundary) and write its message; None when another claim came first."""
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(_CLAIM, due.event_id, due.boundary) is None:
            return None
        body: str = await conn.fetchval(
            _ANNOUNCE, due.event_id, due.boundary, due.since, due.checkout, due.timezone
        )
    log.info("automatic check-out announced", extra={"event_id": due.event_id, "at": due.boundary})
    return body


class CheckoutTimer:
    """Looks for due check-outs every ``interval`` seconds and at each next boundary it knows.
    ``last_error`` is the last look's failure (None: it worked)."""

    def __init__(
        self, pool: asyncpg.Pool, interval: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._pool, self._interval, self._clock = pool, interval, clock
        self.last_error: str | None = None
        self.looks = 0

    async def run(self) -> None:
        while True:
            next_at = None
            try:
                next_at = (await look(self._pool, self._clock())).next_at
                self.last_error = None
            except Exception as exc:  # the database away, a timeout: look again later
                self.last_error = type(exc).__name__
                log.warning("automatic check-out look failed: %s", self.last_error)
            self.looks += 1
            await asyncio.sleep(self._delay(next_at))

    def _delay(self, next_at: float | None) -> float:
        wait = self._interval if next_at is None else next_at - self._clock()
        return max(_MIN_SLEEP, min(wait, self._interval))


def checkout_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` after the pool: this replica's check-out timer."""
    return _timer(app)


async def _timer(app: web.Application) -> AsyncIterator[None]:
    timer = CheckoutTimer(app[POOL], app[SETTINGS].checkout_interval)
    task = asyncio.create_task(timer.run(), name="syncd-checkout-timer")
    yield
    await stop(task)
