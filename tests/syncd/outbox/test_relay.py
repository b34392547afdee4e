"""The outbox relay against a real RabbitMQ and Postgres: confirms, refusals, outages, leaders.

Every scenario ends with the same check: each outbox row reached the consumer queue at least
once, and a row left the table only after the broker had confirmed it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aio_pika
import aiormq
import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from shared.tasks import stop
from syncd.feed.notify import Notifier
from syncd.outbox.broker import RelayBroker
from syncd.outbox.frames import ConfirmReader, Outgoing, publish_batch
from syncd.outbox.frames import MessageFrames as Frames
from syncd.outbox.frames import PublishRefusedError as PublishRefused
from syncd.outbox.metrics import RelayMetrics
from syncd.outbox.relay import Relay, RelayConfig, session_settings
from syncd.outbox.topology import declare_topology
from tessera_dev.netproxy import TcpProxy
from tests.conftest import AMQP_URL, Rabbit
from tests.syncd.conftest import relay_exchange

FILL = """INSERT INTO outbox (routing_key, event_id, body)
SELECT CASE WHEN n % 7 = 0 THEN 'checkin.invalid' ELSE 'checkin.performed' END, 1,
       jsonb_build_object('type', 'checkin.performed', 'seq', n, 'pad', repeat('x', 200))
FROM generate_series(1, $1) n RETURNING id"""


async def eventually(check: Callable[[], Awaitable[bool]], what: str, limit: float = 60) -> None:
    for _ in range(int(limit / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


@dataclass
class Bench:
    """A migrated database, the relay's exchange and a durable queue bound to all of it."""

    db_url: str
    rabbit: Rabbit
    exchange: str
    queue: str
    pool: asyncpg.Pool
    registries: dict[int, CollectorRegistry] = field(default_factory=dict)

    async def fill(self, n: int) -> set[int]:
        return {r["id"] for r in await self.pool.fetch(FILL, n)}

    async def outbox(self) -> set[int]:
        return {r["id"] for r in await self.pool.fetch("SELECT id FROM outbox")}

    async def queued(self, name: str | None = None) -> int:
        conn = await aio_pika.connect(AMQP_URL)
        async with conn:
            channel = await conn.channel()
            queue = await channel.declare_queue(name or self.queue, passive=True)
            return int(queue.declaration_result.message_count or 0)

    async def drain(self) -> list[int]:
        """Every message waiting in the queue (message ids, duplicates included)."""
        want = await self.queued()
        got: list[int] = []
        conn = await aio_pika.connect(AMQP_URL)
        async with conn:
            channel = await conn.channel()
            queue = await channel.declare_queue(self.queue, passive=True)
            if want:
                async with queue.iterator(no_ack=True) as it:
                    async for m in it:
                        got.append(int(m.message_id or 0))
                        if len(got) >= want:
                            break
        return got

    def relay(self, amqp_url: str = AMQP_URL, **config: int) -> Relay:
        settings = RelayConfig(amqp_url, self.db_url, self.exchange, **config)
        registry = CollectorRegistry()
        relay = Relay(self.pool, Notifier(self.db_url), settings, RelayMetrics(registry))
        self.registries[id(relay)] = registry
        return relay

    def leader_gauge(self, relay: Relay) -> float | None:
        return self.registries[id(relay)].get_sample_value("syncd_outbox_relay_leader")

    async def empty(self) -> bool:
        return not await self.outbox()


@pytest.fixture
async def bench(db_url: str, rabbit: Rabbit) -> AsyncIterator[Bench]:
    exchange = relay_exchange(rabbit)
    queue = rabbit.queue("consumer")
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        channel = await conn.channel()
        await declare_topology(channel, exchange)
        q = await channel.declare_queue(queue, durable=True)
        await q.bind(exchange, "#")
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    try:
        yield Bench(db_url, rabbit, exchange, queue, pool)
    finally:
        await pool.close()


@asynccontextmanager
async def running(relay: Relay) -> AsyncIterator[asyncio.Task[None]]:
    """The relay and its LISTEN connection, stopped (connections closed) on exit."""
    listening = asyncio.create_task(relay.notifier.run())
    task = asyncio.create_task(relay.run())
    try:
        yield task
    finally:
        await stop(task)
        await stop(listening)


async def test_confirms_resolve_acks_nacks_and_returns(bench: Bench, rabbit: Rabbit) -> None:
    """publish_batch + ConfirmReader on a real broker: many messages (multiple acks), messages
    nacked by a full reject-publish queue, messages returned as unroutable (mandatory)."""
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
        raw = await channel.get_underlay_channel()
        assert isinstance(raw, aiormq.Channel)
        reader = ConfirmReader(raw)
        many = [Outgoing("checkin.performed", b'{"n": %d}' % i, str(i)) for i in range(5000)]
        confirms = await publish_batch(raw, Frames.for_channel(raw, bench.exchange), many)
        assert await confirms.done and confirms.acked()
        assert reader.multiple > 0  # the broker answered some of them with one frame

        full = rabbit.exchange("full")
        await channel.declare_exchange(full, aio_pika.ExchangeType.FANOUT)
        small = await channel.declare_queue(
            rabbit.queue("small"), arguments={"x-max-length": 2, "x-overflow": "reject-publish"}
        )
        await small.bind(full)
        five = [Outgoing("k", b"{}", f"n{i}") for i in range(5)]
        confirms = await publish_batch(raw, Frames.for_channel(raw, full), five)
        assert await confirms.done is False and confirms.refused == 3
        with pytest.raises(PublishRefused):
            confirms.raise_unless_acked()

        nowhere = rabbit.exchange("nowhere")
        await channel.declare_exchange(nowhere, aio_pika.ExchangeType.TOPIC)
        three = [Outgoing("checkin.performed", b"{}", f"r{i}") for i in range(3)]
        confirms = await publish_batch(raw, Frames.for_channel(raw, nowhere), three)
        assert await confirms.done is False and confirms.refused == 3
        assert not raw.message_id_delivery_tag  # returned messages forgotten

        again = await publish_batch(raw, Frames.for_channel(raw, bench.exchange), many[:10])
        assert await again.done and raw.confirmations == {}
    assert sorted(await bench.drain()) == sorted([*range(5000), *range(10)])


async def test_large_bodies_arrive_whole(bench: Bench) -> None:
    """A body bigger than the negotiated frame_max travels split into several body frames."""
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        channel = await conn.channel(publisher_confirms=True)
        raw = await channel.get_underlay_channel()
        assert isinstance(raw, aiormq.Channel)
        ConfirmReader(raw)
        body = bytes(range(256)) * (3 * raw.max_content_size // 256 + 1)
        big = Outgoing("checkout.performed", body, "77")
        assert await (await publish_batch(raw, Frames.for_channel(raw, bench.exchange), [big])).done
        queue = await channel.declare_queue(bench.queue, passive=True)
        got = await queue.get(no_ack=True)
        assert got is not None and got.body == body and got.routing_key == "checkout.performed"
        assert (got.message_id, got.content_type, got.app_id) == ("77", "application/json", "syncd")
        assert got.delivery_mode == aio_pika.DeliveryMode.PERSISTENT


async def test_rows_are_deleted_only_after_the_broker_confirmed_them(
    bench: Bench, rabbit: Rabbit
) -> None:
    """A queue that refuses messages (nacks) keeps every row of the round in the outbox, round
    after round; once the broker takes them, the relay publishes them and empties the table."""
    async with await aio_pika.connect(AMQP_URL) as conn:
        channel = await conn.channel()
        small = await channel.declare_queue(
            rabbit.queue("small"), arguments={"x-max-length": 5, "x-overflow": "reject-publish"}
        )
        await small.bind(bench.exchange, "#")
    rows = await bench.fill(20)
    relay = bench.relay()
    async with running(relay):

        async def full() -> bool:
            return await bench.queued(small.name) == 5

        async def refused() -> bool:
            return "PublishRefused" in (relay.last_error or "")

        await eventually(full, "the small queue filled")
        await eventually(refused, "a round was refused")
        assert await bench.outbox() == rows and relay.published == 0
        await eventually(refused, "refused again")
        assert await bench.outbox() == rows
        async with await aio_pika.connect(AMQP_URL) as conn:
            await (await conn.channel()).queue_delete(small.name)
        await eventually(bench.empty, "outbox relayed")
    assert set(await bench.drain()) == rows


async def test_a_broker_cut_mid_round_loses_nothing(bench: Bench) -> None:
    """The broker connection is cut while rounds are in flight: rows already gone were in the
    queue, the rest stay in the outbox, and after the broker is back every row arrives."""
    rows = await bench.fill(20_000)
    with TcpProxy("127.0.0.1", 5672) as broker:
        relay = bench.relay(f"amqp://guest:guest@127.0.0.1:{broker.port}/", batch=500)
        async with running(relay):

            async def started() -> bool:
                return await bench.queued() >= 1500

            await eventually(started, "relaying began")
            broker.cut()

            async def cut_off() -> bool:
                return not relay.connected

            await eventually(cut_off, "the relay saw the cut")
            left = await bench.outbox()
            before = await bench.drain()
            assert left and rows - left <= set(before)  # gone only once in the queue
            broker.restore()
            await eventually(bench.empty, "outbox relayed after the cut")
    assert set(before) | set(await bench.drain()) == rows


async def test_one_leader_relays_and_a_standby_takes_over(bench: Bench) -> None:
    """Two relays on one database: one publishes, the other stands by (ready all the same);
    when the leader stops mid-backlog the standby takes over and nothing is lost."""
    rows = await bench.fill(20_000)
    a, b = bench.relay(batch=500), bench.relay(batch=500)
    async with running(a) as task_a, running(b) as task_b:

        async def elected() -> bool:
            return a.leader or b.leader

        await eventually(elected, "someone leads")
        leader, standby = (a, b) if a.leader else (b, a)

        async def ready() -> bool:
            return await RelayBroker(AMQP_URL, standby).check() is None

        await eventually(ready, "the standby is ready")
        assert bench.leader_gauge(leader) == 1 and bench.leader_gauge(standby) == 0

        async def relaying() -> bool:
            assert not (a.leader and b.leader)
            return await bench.queued() >= 2000

        await eventually(relaying, "the leader relays")
        assert standby.published == 0 and not standby.leader
        await stop(task_a if leader is a else task_b)

        async def took_over() -> bool:
            return standby.leader

        await eventually(took_over, "the standby took over")
        await eventually(bench.empty, "outbox relayed")
        assert standby.published > 0
    assert set(await bench.drain()) == rows


async def test_the_leader_vacuums_the_outbox(bench: Bench) -> None:
    """Without autovacuum the relay cleans the dead rows it leaves behind itself."""
    await bench.fill(600)
    relay = bench.relay(batch=100, vacuum_rows=300)
    async with running(relay):
        await eventually(bench.empty, "outbox relayed")

        async def vacuumed() -> bool:
            count = await bench.pool.fetchval(
                "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'outbox'"
            )
            return bool(count)

        await eventually(vacuumed, "VACUUM outbox ran")


async def test_a_stopping_leader_drains_what_it_has_in_flight(bench: Bench) -> None:
    """Stopped mid-backlog, the leader reads nothing more, waits for its rounds' confirms and
    deletes their rows: each row is then either delivered once or still in the outbox, never
    both (which would make the next leader publish it twice)."""
    rows = await bench.fill(20_000)
    relay = bench.relay(batch=500)
    async with running(relay):

        async def relaying() -> bool:
            return await bench.queued() >= 2000

        await eventually(relaying, "the leader relays")
        assert await relay.drain()
        left = await bench.outbox()
        assert left and relay.leader  # stopped mid-backlog, still leading: nothing went on
    delivered = await bench.drain()
    assert len(delivered) == len(set(delivered)) == relay.published
    assert not left & set(delivered) and left | set(delivered) == rows


@pytest.mark.parametrize("failover", [5, 7, 10, 11, 13, 25, 600])
async def test_the_leaders_session_gives_up_on_a_vanished_host_in_time(
    bench: Bench, failover: int
) -> None:
    """SYNCD_RELAY_FAILOVER_SECONDS: Postgres takes the leader's session settings as they are
    (over TCP, where keepalives apply) and ends a silent session within that many seconds:
    keepalives for an idle one, tcp_user_timeout for one with data unacknowledged. The
    deploy check measures the takeover after a real `podman kill`."""
    wanted = session_settings(failover)
    conn = await asyncpg.connect(bench.db_url, server_settings=wanted)
    try:
        shown = {name: await conn.fetchval(f"SHOW {name}") for name in wanted}
    finally:
        await conn.close()
    assert shown == wanted
    idle, interval = int(shown["tcp_keepalives_idle"]), int(shown["tcp_keepalives_interval"])
    silent = idle + int(shown["tcp_keepalives_count"]) * interval
    assert silent == failover and int(shown["tcp_user_timeout"]) == failover * 1000
