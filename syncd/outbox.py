"""The outbox relay: one replica at a time publishes outbox rows to RabbitMQ and deletes each row
once the broker confirmed it.

Topology (declared at every connect, idempotently), for ``SYNCD_AMQP_EXCHANGE=<x>``::

    <x>            topic, durable; alternate-exchange <x>.unrouted; routing keys from
                   shared.protocol.ROUTING_KEYS; consumers bind their own queues
    <x>.unrouted   fanout, durable -> queue <x>.unrouted (messages no queue wanted are kept)
    <x>.dlx        topic, durable  -> queue <x>.dead bound "#" (consumers' queues set
                   x-dead-letter-exchange=<x>.dlx, so rejected poison messages land here)

**Leadership.** Every replica's relay connects to the broker and opens a Postgres connection of
its own (not a pool one), on which it tries ``pg_try_advisory_lock`` about once a second
(jittered). The replica holding the lock relays; the others stand by, broker connected, so
/readyz reads the same on all of them (``syncd_outbox_relay_leader`` in /metrics tells them
apart). The lock lives and dies with that connection: when the leader's process or connection
goes, a standby takes over within about a second. Reads and deletes run on the same connection,
so a relay that lost the lock cannot read rows any more; at worst it finishes publishing what
it had read, and the new leader publishes those again (duplicates, never losses).

**Rounds.** The leader reads the oldest rows (``ORDER BY id``, no row locks: it is alone), up to
``relay_batch``, leaving out those still in flight; publishes them as one write (persistent,
``mandatory``, ``message_id`` = outbox id; see syncd/amqp_batch.py); and reads the next round
while up to ``relay_depth`` rounds wait for their confirms. A round the broker acked completely
is deleted. A nack, a return, a confirm slower than 30 s or a lost channel ends the broker
session; whatever was not confirmed is still in the table and published again by the next
session: delivery is at least once, consumers dedupe by ``message_id``. Rows that commit late
with lower ids are found by a later read. The leader wakes at the ``tessera_outbox``
notification of each writer's commit, so light traffic gets small, immediate rounds; a read
every second covers a notification missed while the listener reconnected.

**Stopping.** On shutdown the leader first drains (``SYNCD_RELAY_DRAIN_SECONDS``, default 5):
it reads no more rows, waits for the rounds in flight to be answered and deletes the rows
they confirmed, so a deploy does not hand the next leader messages that were already
delivered. Whatever is still unanswered when the time is up is published again later.

**Dead rows.** Deleted rows are dead tuples, and in a queue table their index entries sit
exactly where each read starts (measured: a read takes +0.5 ms over 100,000 of them, +1.7 ms
over 300,000). The relay does not count on autovacuum (nor get in its way): after
``relay_vacuum_rows`` deletions (default 20,000; such a VACUUM takes ~5 ms) the leader runs
``VACUUM (SKIP_LOCKED) outbox`` on a pool connection, which returns at once while autovacuum is
at it. Deletes commit with ``synchronous_commit = off``: a deletion lost in a database crash
only means a message published twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.tasks import stop
from syncd.amqp_batch import (
    BrokerTrouble,
    ConfirmReader,
    Confirms,
    Frames,
    Outgoing,
    publish_batch,
)
from syncd.db import POOL
from syncd.middleware import METRICS
from syncd.notify import NOTIFIER, Notifier
from syncd.ops import BROKER, Broker
from syncd.settings import SyncdSettings

log = logging.getLogger("syncd.outbox")

LEADER_LOCK = 0x7E55E2B  # session advisory lock of the relaying replica (db.py's is 0x7E55E2A)
_TRY_LEAD = "SELECT pg_try_advisory_lock($1)"
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
_VACUUM = "VACUUM (SKIP_LOCKED) outbox"
_SESSION = {
    "application_name": "syncd-relay",
    "synchronous_commit": "off",
    # A leader whose host vanished must not hold the lock for the kernel's two hours.
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}
_QUERY_TIMEOUT = 10.0
_CONFIRM_TIMEOUT = 30.0
_POLL = 1.0  # read even without a notification this often; standbys retry the lock as often
# Reads after a partial round are this far apart at least: under steady traffic each round then
# carries every commit of the last 10 ms instead of one commit's rows, and the broker answers
# bigger rounds with fewer confirm frames. bench_relay --rate 5000: syncd 28 % -> 23 % of a
# core for +8 ms at p50 (20 ms: 20 %, +18 ms). Light traffic is not delayed: its last read is
# long past.
_GAP = 0.01


async def declare_topology(channel: AbstractChannel, name: str) -> AbstractExchange:
    """Declare the exchange, its dead-letter and unrouted companions; returns the exchange."""
    dlx = await channel.declare_exchange(f"{name}.dlx", aio_pika.ExchangeType.TOPIC, durable=True)
    dead = await channel.declare_queue(f"{name}.dead", durable=True)
    await dead.bind(dlx, "#")
    unrouted = await channel.declare_exchange(
        f"{name}.unrouted", aio_pika.ExchangeType.FANOUT, durable=True
    )
    kept = await channel.declare_queue(f"{name}.unrouted", durable=True)
    await kept.bind(unrouted)
    return await channel.declare_exchange(
        name,
        aio_pika.ExchangeType.TOPIC,
        durable=True,
        arguments={"alternate-exchange": f"{name}.unrouted"},
    )


class ConfirmTimeout(BrokerTrouble):
    """The broker left a round unconfirmed for too long."""


@dataclass(frozen=True, slots=True)
class RelayConfig:
    amqp_url: str
    database_url: str
    exchange: str
    batch: int = 2000
    depth: int = 3
    vacuum_rows: int = 20_000
    drain_seconds: float = 5.0

    @classmethod
    def from_settings(cls, s: SyncdSettings) -> RelayConfig:
        return cls(
            amqp_url=s.amqp_url.get_secret_value(),
            database_url=s.database_url.get_secret_value(),
            exchange=s.amqp_exchange,
            batch=s.relay_batch,
            depth=s.relay_depth,
            vacuum_rows=s.relay_vacuum_rows,
            drain_seconds=s.relay_drain_seconds,
        )


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.leader = Gauge(
            "syncd_outbox_relay_leader",
            "1 while this replica's relay holds the leader lock and publishes",
            registry=registry,
        )
        self.published = Counter(
            "syncd_outbox_published", "Outbox messages confirmed and deleted", registry=registry
        )
        self.confirm = Histogram(
            "syncd_outbox_confirm_seconds",
            "Publish to last confirm of one relay round",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
            registry=registry,
        )


@dataclass(slots=True)
class Round:
    ids: list[int]
    confirms: Confirms
    started: float


class Relay:
    """One replica's relay task. ``connected``, ``leader`` and ``last_error`` feed /readyz and
    /metrics; ``published`` counts messages confirmed and deleted by this replica."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        notifier: Notifier,
        config: RelayConfig,
        metrics: RelayMetrics | None = None,
    ) -> None:
        self._pool, self.notifier, self.config = pool, notifier, config
        self._metrics = metrics or RelayMetrics(CollectorRegistry())
        self._connection: AbstractConnection | None = None
        self.tried = asyncio.Event()  # set after the first connection attempt, either way
        self.last_error: str | None = "not connected yet"
        self.leader = False
        self.role: bool | None = None
        self.published = 0
        self._deleted = 0  # since the last VACUUM
        self._vacuum: asyncio.Task[None] | None = None
        self.draining = False
        self.drained = asyncio.Event()  # set by a draining term once nothing is in flight

    @property
    def exchange(self) -> str:
        return self.config.exchange

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def run(self) -> None:
        attempt = 0
        try:
            while True:
                try:
                    await self._broker_session()
                except Exception as exc:  # any failure: back off and start a new session
                    self.last_error = f"{type(exc).__name__}: {exc}"[:200]
                    log.warning("outbox relay interrupted: %s", type(exc).__name__)
                attempt = 1 if self._connection is not None else attempt + 1
                self._connection = None
                self.tried.set()
                await asyncio.sleep(random.uniform(0.1, min(5.0, 0.2 * 2**attempt)))
        finally:
            if self._vacuum is not None:
                await stop(self._vacuum)

    async def _broker_session(self) -> None:
        connection = await aio_pika.connect(self.config.amqp_url, timeout=5)
        async with connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            await declare_topology(channel, self.exchange)
            raw = await channel.get_underlay_channel()
            assert isinstance(raw, aiormq.Channel)
            ConfirmReader(raw)
            self._connection, self.last_error = connection, None
            self.tried.set()
            log.info("outbox relay connected", extra={"exchange": self.exchange})
            await self._database_sessions(raw)

    async def _database_sessions(self, channel: aiormq.Channel) -> None:
        """Contend for the lead over Postgres connections of our own, reconnecting while the
        broker connection lives; broker trouble ends the broker session."""
        attempt = 0
        while True:
            try:
                await self._contend(channel)
            except Exception as exc:
                if channel.is_closed or isinstance(exc, BrokerTrouble | aiormq.AMQPError):
                    raise
                self.last_error = f"database: {type(exc).__name__}"
                log.warning("outbox relay lost Postgres: %s", type(exc).__name__)
            attempt += 1
            await asyncio.sleep(random.uniform(0.5, min(5.0, 0.5 * 2**attempt)))

    async def _contend(self, channel: aiormq.Channel) -> None:
        db = await asyncpg.connect(self.config.database_url, timeout=5, server_settings=_SESSION)
        try:
            while not channel.is_closed:
                if await db.fetchval(_TRY_LEAD, LEADER_LOCK, timeout=_QUERY_TIMEOUT):
                    await self._lead(db, channel)
                self._set_leader(False)
                await asyncio.sleep(random.uniform(0.7 * _POLL, 1.3 * _POLL))
            raise BrokerTrouble("broker channel closed")
        finally:
            self._set_leader(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(db.close(), 2)
            db.terminate()

    async def drain(self) -> bool:
        """Publish nothing more; wait (up to ``drain_seconds``) until the rounds in flight are
        answered and the rows they confirmed deleted. True if nothing was left in flight."""
        self.draining = True
        if not self.leader:
            return True
        self.notifier.outbox.set()  # wake a term waiting for work
        try:
            await asyncio.wait_for(self.drained.wait(), self.config.drain_seconds)
        except TimeoutError:
            log.warning("outbox relay stopped with rounds unconfirmed; they will be sent again")
            return False
        return True

    def observe_confirm(self, seconds: float) -> None:
        self._metrics.confirm.observe(seconds)

    def _set_leader(self, leader: bool | None) -> None:
        """True: leads; False: stands by (another replica leads); None: neither (offline)."""
        if leader != self.role:
            log.info(
                "outbox relay %s", {True: "leads", False: "stands by", None: "is offline"}[leader]
            )
        self.role = leader
        self.leader = bool(leader)
        self._metrics.leader.set(int(self.leader))

    async def _lead(self, db: asyncpg.Connection, channel: aiormq.Channel) -> None:
        """Relay until something fails (the lock is held until ``db`` closes)."""
        self._set_leader(True)
        await Term(self, db, channel).run()

    def count(self, confirmed: int) -> None:
        """``confirmed`` more rows were deleted after their confirm."""
        self._metrics.published.inc(confirmed)
        self.published += confirmed
        self._deleted += confirmed
        due = self.config.vacuum_rows and self._deleted >= self.config.vacuum_rows
        if due and (self._vacuum is None or self._vacuum.done()):
            self._deleted = 0
            self._vacuum = asyncio.create_task(self._vacuum_outbox(), name="outbox-vacuum")

    async def _vacuum_outbox(self) -> None:
        started = time.monotonic()
        try:
            async with self._pool.acquire() as conn:
                await conn.execute(_VACUUM)
        except Exception as exc:
            log.warning("VACUUM outbox failed: %s", type(exc).__name__)
            return
        log.debug("VACUUM outbox took %.0f ms", (time.monotonic() - started) * 1000)


class Term:
    """One leadership term: rounds in flight on one broker channel, rows read and deleted over
    the connection that holds the lock. Every database round trip both deletes the rows of the
    rounds acked since the last one and reads the next round."""

    def __init__(self, relay: Relay, db: asyncpg.Connection, channel: aiormq.Channel) -> None:
        self.relay, self.db, self.channel = relay, db, channel
        self.config = relay.config
        self.frames = Frames.for_channel(channel, relay.exchange)
        self.rounds: list[Round] = []  # published, not answered
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
        return BrokerTrouble("broker channel closed") if closing.done() else None

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
                raise ConfirmTimeout("publishing stalled") from exc
            self.rounds.append(Round([r["id"] for r in rows], confirms, time.monotonic()))
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
            raise ConfirmTimeout(f"no confirm within {_CONFIRM_TIMEOUT:g} s")
        await asyncio.wait(waits, timeout=_POLL, return_when=asyncio.FIRST_COMPLETED)


class RelayBroker(Broker):
    """/readyz's broker check answers from the relay's live connection (leader or standby)."""

    def __init__(self, url: str, relay: Relay) -> None:
        super().__init__(url)
        self.relay = relay

    async def check(self) -> str | None:
        return None if self.relay.connected else (self.relay.last_error or "not connected")


RELAY = web.AppKey("relay", Relay)


def relay_ctx(settings: SyncdSettings):  # type: ignore[no-untyped-def]
    """Start the relay after the pool and the notifier; stop it first."""
    config = RelayConfig.from_settings(settings)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        metrics = RelayMetrics(app[METRICS].registry)
        relay = Relay(app[POOL], app[NOTIFIER], config, metrics)
        app[RELAY] = relay
        app[BROKER] = RelayBroker(config.amqp_url, relay)
        task = asyncio.create_task(relay.run(), name="syncd-outbox-relay")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(relay.tried.wait(), 10)
        if not relay.connected:
            log.warning("RabbitMQ not reachable at start; /readyz will say so until it is")
        yield
        await relay.drain()
        await stop(task)

    return ctx
