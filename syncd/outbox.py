"""The outbox relay: publishes outbox rows to RabbitMQ and marks them sent after the confirm.

Topology (declared at every connect, idempotently), for ``SYNCD_AMQP_EXCHANGE=<x>``::

    <x>            topic, durable; alternate-exchange <x>.unrouted; routing keys from
                   shared.protocol.ROUTING_KEYS; consumers bind their own queues
    <x>.unrouted   fanout, durable -> queue <x>.unrouted (messages no queue wanted are kept)
    <x>.dlx        topic, durable  -> queue <x>.dead bound "#" (consumers' queues set
                   x-dead-letter-exchange=<x>.dlx, so rejected poison messages land here)

Each round takes up to ``relay_batch`` unsent rows ``FOR UPDATE SKIP LOCKED`` (replicas share
the work, never a row), publishes them all pipelined (persistent, ``mandatory``,
``message_id`` = outbox id) on a confirm channel, waits for every confirm, then marks the rows
sent in the same transaction. Anything failing (broker gone, a nack, a return, the database
gone) rolls the round back: the rows are published again later, so delivery is at least once
and consumers dedupe by ``message_id``. The relay reconnects with capped, jittered backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import aio_pika
import aiormq
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractExchange
from aiohttp import web
from pamqp import commands as spec

from shared.tasks import stop
from syncd.amqp_batch import Outgoing, publish_batch
from syncd.db import POOL
from syncd.notify import NOTIFIER, Notifier
from syncd.ops import BROKER, Broker

log = logging.getLogger("syncd.outbox")
# The ids are picked first, so even when the planner sorts every unsent row (stale estimates
# under a backlog) it sorts ids, not bodies; the bodies of the chosen rows are then read by key.
_TAKE = """WITH t AS (
    SELECT id FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
)
SELECT o.id, o.routing_key, o.body::text AS body FROM outbox o JOIN t ON o.id = t.id
ORDER BY o.id"""
_MARK = "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])"
_PURGE = """DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox WHERE sent_at < now() - $1::interval LIMIT 10000)"""


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


class PublishRefused(Exception):
    """The broker nacked a message; the round is rolled back and retried."""


class Relay:
    """One replica's relay task. ``connected`` and ``last_error`` feed /readyz."""

    def __init__(
        self, pool: asyncpg.Pool, notifier: Notifier, url: str, exchange: str, batch: int
    ) -> None:
        self._pool, self._notifier, self._url = pool, notifier, url
        self.exchange, self.batch = exchange, batch
        self.connected = False
        self.tried = asyncio.Event()  # set after the first connection attempt, either way
        self.last_error: str | None = "not connected yet"
        self.published = 0
        self._last_purge = 0.0

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: back off and start a new session
                self.last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.warning("outbox relay interrupted: %s", type(exc).__name__)
            self.tried.set()
            if self.connected:
                attempt = 0
            self.connected = False
            attempt += 1
            await asyncio.sleep(random.uniform(0.1, min(5.0, 0.2 * 2**attempt)))

    async def _session(self) -> None:
        connection = await aio_pika.connect(self._url, timeout=5)
        async with connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            await declare_topology(channel, self.exchange)
            raw = await channel.get_underlay_channel()  # see syncd/amqp_batch.py
            assert isinstance(raw, aiormq.Channel)
            self.connected, self.last_error = True, None
            self.tried.set()
            log.info("outbox relay connected", extra={"exchange": self.exchange})
            while not connection.is_closed:
                self._notifier.outbox.clear()
                if await self.publish_round(raw) < self.batch:
                    await self._idle()

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._notifier.outbox.wait(), 1.0)
        if time.monotonic() - self._last_purge > 600:
            self._last_purge = time.monotonic()
            await self._pool.execute(_PURGE, timedelta(days=7))

    async def publish_round(self, channel: aiormq.Channel) -> int:
        """Publish one batch and mark it sent; returns how many rows it took."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_TAKE, self.batch)
            if not rows:
                return 0
            batch = [Outgoing(r["routing_key"], r["body"].encode(), str(r["id"])) for r in rows]
            sends = await publish_batch(channel, self.exchange, batch)
            confirms = await asyncio.wait_for(asyncio.gather(*sends), 30)
            if not all(isinstance(c, spec.Basic.Ack) for c in confirms):
                raise PublishRefused("the broker refused (nacked) a message")
            await conn.execute(_MARK, [r["id"] for r in rows])
        self.published += len(rows)
        return len(rows)


class RelayBroker(Broker):
    """/readyz's broker check answers from the relay's live connection."""

    def __init__(self, url: str, relay: Relay) -> None:
        super().__init__(url)
        self.relay = relay

    async def check(self) -> str | None:
        return None if self.relay.connected else (self.relay.last_error or "not connected")


RELAY = web.AppKey("relay", Relay)


def relay_ctx(url: str, exchange: str, batch: int):  # type: ignore[no-untyped-def]
    """Start the relay after the pool and the notifier; stop it first."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        relay = Relay(app[POOL], app[NOTIFIER], url, exchange, batch)
        app[RELAY] = relay
        app[BROKER] = RelayBroker(url, relay)
        task = asyncio.create_task(relay.run(), name="syncd-outbox-relay")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(relay.tried.wait(), 10)
        if not relay.connected:
            log.warning("RabbitMQ not reachable at start; /readyz will say so until it is")
        yield
        await stop(task)

    return ctx
