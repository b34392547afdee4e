"""The outbox relay: one replica at a time publishes outbox rows to RabbitMQ and deletes each row
once the broker confirmed it (``leader`` holds what one leadership term does, ``topology`` the
exchanges and queues, ``frames`` the wire).

**Leadership.** Every replica's relay connects to the broker and opens a Postgres connection of
its own (not a pool one), on which it tries ``pg_try_advisory_lock`` about once a second
(jittered). The replica holding the lock relays; the others stand by, broker connected, so
/readyz reads the same on all of them (``syncd_outbox_relay_leader`` in /metrics tells them
apart). The lock lives and dies with that connection: when the leader's process or connection
goes, a standby takes over within about a second. Reads and deletes run on the same connection,
so a relay that lost the lock cannot read rows any more; at worst it finishes publishing what
it had read, and the new leader publishes those again (duplicates, never losses).

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

import aio_pika
import aiormq
import asyncpg
from aio_pika.abc import AbstractConnection
from aiohttp import web
from prometheus_client import CollectorRegistry

from shared.tasks import stop
from syncd.feed.notify import Notifier
from syncd.keys import BROKER, METRICS, NOTIFIER, POOL, RELAY
from syncd.outbox.broker import RelayBroker
from syncd.outbox.frames import BrokerError, ConfirmReader
from syncd.outbox.leader import _POLL, _QUERY_TIMEOUT, LeaderTerm
from syncd.outbox.metrics import RelayMetrics
from syncd.outbox.topology import declare_topology
from syncd.settings import SyncdSettings

log = logging.getLogger("syncd.outbox")

LEADER_LOCK = 0x7E55E2B  # session advisory lock of the relaying replica (migrate's is 0x7E55E2A)
_TRY_LEAD = "SELECT pg_try_advisory_lock($1)"
_VACUUM = "VACUUM (SKIP_LOCKED) outbox"
_SESSION = {"application_name": "syncd-relay", "synchronous_commit": "off"}


def session_settings(failover: int) -> dict[str, str]:
    """The leader's Postgres session settings for ``SYNCD_RELAY_FAILOVER_SECONDS``.

    A leader whose host vanished must not hold the lock for the kernel's two hours: keepalives
    end an idle session after ``idle + 3 x interval`` = ``failover`` seconds; while Postgres has
    data unacknowledged on it (a NOTIFY to the dead listener) keepalives pause and
    retransmissions would go on for about 15 minutes, so ``tcp_user_timeout`` ends the session
    after ``failover`` seconds of that too. A live host answers keepalives from its kernel, so
    a leader busy or idle for long keeps its lock; only a silent network for that long ends it.
    """
    interval = max(1, round(failover / 5))
    idle = max(1, round(failover - 3 * interval))
    return {
        **_SESSION,
        "tcp_keepalives_idle": str(idle),
        "tcp_keepalives_interval": str(interval),
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": str(failover * 1000),
    }


@dataclass(frozen=True, slots=True)
class RelayConfig:
    amqp_url: str
    database_url: str
    exchange: str
    batch: int = 2000
    depth: int = 3
    vacuum_rows: int = 20_000
    drain_seconds: float = 5.0
    failover_seconds: int = 10

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
            failover_seconds=s.relay_failover_seconds,
        )


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
                if channel.is_closed or isinstance(exc, BrokerError | aiormq.AMQPError):
                    raise
                self.last_error = f"database: {type(exc).__name__}"
                log.warning("outbox relay lost Postgres: %s", type(exc).__name__)
            attempt += 1
            await asyncio.sleep(random.uniform(0.5, min(5.0, 0.5 * 2**attempt)))

    async def _contend(self, channel: aiormq.Channel) -> None:
        session = session_settings(self.config.failover_seconds)
        db = await asyncpg.connect(self.config.database_url, timeout=5, server_settings=session)
        try:
            while not channel.is_closed:
                if await db.fetchval(_TRY_LEAD, LEADER_LOCK, timeout=_QUERY_TIMEOUT):
                    await self._lead(db, channel)
                self._set_leader(False)
                await asyncio.sleep(random.uniform(0.7 * _POLL, 1.3 * _POLL))
            raise BrokerError("broker channel closed")
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
        await LeaderTerm(self, db, channel).run()

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
