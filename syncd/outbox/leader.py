"""One leadership term of the outbox relay: rounds read, published and confirmed.

**Rounds.** The leader reads the oldest rows (``ORDER BY id``, no row locks: it is alone), up to
``relay_batch``, leaving out those still in flight; publishes them as one write (persistent,
``mandatory``, ``message_id`` = outbox id; see frames.py); and reads the next round
while up to ``relay_depth`` rounds wait for their confirms. A round the broker acked completely
is deleted. A nack, a return, a confirm slower than 30 s or a lost channel ends the broker
session; whatever was not confirmed is still in the table and published again by the next
session: delivery is at least once, consumers dedupe by ``message_id``. Rows that commit late
with lower ids are found by a later read. The leader wakes at the ``tessera_outbox``
notification of each writer's commit, so light traffic gets small, immediate rounds; a read
every second covers a notification missed while the listener reconnected.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiormq
import asyncpg

from syncd.outbox.frames import BrokerError, Confirms, MessageFrames, Outgoing, publish_batch

if TYPE_CHECKING:
    from syncd.outbox.relay import Relay

_READ = "SELECT id, routing_key, body::text AS body FROM outbox ORDER BY id LIMIT $1"
# Deletes the rows ($3) of the rounds acked since the last read, and reads the oldest rows but
# those ($2: in flight, or deleted by this very statement, whose snapshot still has them): ids
# first (a set difference, not a per-row array scan), then the bodies of the rest by key.
_READ_PAST = """WITH gone AS (DELETE FROM outbox WHERE id = ANY($3::bigint[]))
SELECT id, routing_key, body::text AS body FROM outbox
WHERE id = ANY(ARRAY(
    SELECT id FROM (SELECT id FROM outbox ORDER BY id LIMIT $1) head
    EXCEPT SELECT unnest($2::bigint[])))
ORDER BY id"""
_DELETE = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"
_QUERY_TIMEOUT = 10.0
_CONFIRM_TIMEOUT = 30.0
_POLL = 1.0  # read even without a notification this often; standbys retry the lock as often
# Reads after a partial round are this far apart at least: under steady traffic each round then
# carries every commit of the last 10 ms instead of one commit's rows, and the broker answers
# bigger rounds with fewer confirm frames. bench_relay --rate 5000: syncd 28 % -> 23 % of a
# core for +8 ms at p50 (20 ms: 20 %, +18 ms). Light traffic is not delayed: its last read is
# long past.
_GAP = 0.01


class ConfirmTimeoutError(BrokerError):
    """The broker left a round unconfirmed for too long."""


@dataclass(slots=True)
class InFlightRound:
    """One published round waiting for its confirms."""

    ids: list[int]
    confirms: Confirms
    started: float


class LeaderTerm:
    """One leadership term: rounds in flight on one broker channel, rows read and deleted over
    the connection that holds the lock. Every database round trip both deletes the rows of the
    rounds acked since the last one and reads the next round."""

    def __init__(self, relay: Relay, db: asyncpg.Connection, channel: aiormq.Channel) -> None:
        self.relay, self.db, self.channel = relay, db, channel
        self.config = relay.config
        self.frames = MessageFrames.for_channel(channel, relay.exchange)
        self.rounds: list[InFlightRound] = []  # published, not answered
        self.acked: list[int] = []  # confirmed, not deleted yet
        self.last_read, self.full = 0.0, False

    async def run(self) -> None:
        closing = self.channel.closing
        woken: asyncio.Future[Any] | None = None
        notified = self.relay.notifier.outbox
        try:
            while True:
                if (trouble := self._settle(closing)) is not None:
                    await self._delete()
                    raise trouble
                if self.relay.draining:
                    await self._delete()
                    if not self.rounds:
                        self.relay.drained.set()
                    if woken is not None:
                        woken.cancel()
                        woken = None
                elif len(self.rounds) < self.config.depth:
                    await self._pace()
                    notified.clear()
                    if await self._next_round():
                        continue
                    if woken is None or woken.done():
                        woken = asyncio.ensure_future(notified.wait())
                else:
                    await self._delete()
                await self._wait(woken, closing)
        finally:
            for future in (woken, closing):
                if future is not None:
                    future.cancel()

    def _settle(self, closing: asyncio.Future) -> Exception | None:
        """Take the answered rounds off the pipeline; the trouble if any was not all acked."""
        answered = [r for r in self.rounds if r.confirms.done.done()]
        now = time.monotonic()
        for r in answered:
            self.rounds.remove(r)
            if r.confirms.acked():
                self.acked += r.ids
                self.relay.observe_confirm(now - r.started)
        for r in answered:
            try:
                r.confirms.raise_unless_acked()
            except Exception as exc:
                return exc
        return BrokerError("broker channel closed") if closing.done() else None

    async def _pace(self) -> None:
        """After a partial round, read again no sooner than ``_GAP`` after it."""
        if not self.full and (wait := self.last_read + _GAP - time.monotonic()) > 0:
            await asyncio.sleep(wait)

    async def _next_round(self) -> bool:
        """Delete the acked rows, read and publish the next round; True if it was full."""
        batch, gone = self.config.batch, self.acked
        skip = [i for r in self.rounds for i in r.ids] + gone
        if skip:
            rows = await self.db.fetch(
                _READ_PAST, batch + len(skip), skip, gone, timeout=_QUERY_TIMEOUT
            )
            rows = rows[:batch]
        else:
            rows = await self.db.fetch(_READ, batch, timeout=_QUERY_TIMEOUT)
        self.acked, self.last_read, self.full = [], time.monotonic(), len(rows) == batch
        self.relay.count(len(gone))
        if rows:
            out = [Outgoing(r["routing_key"], r["body"].encode(), str(r["id"])) for r in rows]
            try:
                async with asyncio.timeout(_CONFIRM_TIMEOUT):  # a write queue that never drains
                    confirms = await publish_batch(self.channel, self.frames, out)
            except TimeoutError as exc:
                raise ConfirmTimeoutError("publishing stalled") from exc
            self.rounds.append(InFlightRound([r["id"] for r in rows], confirms, time.monotonic()))
        return self.full

    async def _delete(self) -> None:
        if self.acked:
            gone, self.acked = self.acked, []
            await self.db.execute(_DELETE, gone, timeout=_QUERY_TIMEOUT)
            self.relay.count(len(gone))

    async def _wait(self, woken: asyncio.Future[Any] | None, closing: asyncio.Future) -> None:
        """Until a round is answered, the channel closes, or (with room for another round) a
        notification or the poll interval."""
        waits: set[asyncio.Future] = {r.confirms.done for r in self.rounds} | {closing}
        if len(self.rounds) < self.config.depth and woken is not None:
            waits.add(woken)
        if self.rounds and time.monotonic() - self.rounds[0].started > _CONFIRM_TIMEOUT:
            raise ConfirmTimeoutError(f"no confirm within {_CONFIRM_TIMEOUT:g} s")
        await asyncio.wait(waits, timeout=_POLL, return_when=asyncio.FIRST_COMPLETED)
