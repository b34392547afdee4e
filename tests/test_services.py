"""The test set-up provides real Postgres and RabbitMQ; these prove each fixture works."""

from __future__ import annotations

import asyncio

import aio_pika
import asyncpg

from tests.conftest import Rabbit


async def test_postgres_fixture_gives_a_fresh_writable_database(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        assert tables == 0
        await conn.execute("CREATE TABLE t (x int)")
        await conn.execute("INSERT INTO t VALUES (42)")
        assert await conn.fetchval("SELECT x FROM t") == 42
    finally:
        await conn.close()


async def test_rabbitmq_fixture_routes_a_message_through_a_topic_exchange(rabbit: Rabbit) -> None:
    async with await aio_pika.connect(rabbit.url) as conn:
        channel = await conn.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            rabbit.exchange(), aio_pika.ExchangeType.TOPIC, auto_delete=True
        )
        queue = await channel.declare_queue(rabbit.queue("q"), exclusive=True)
        await queue.bind(exchange, "checkin.*")
        await exchange.publish(aio_pika.Message(b"hello", message_id="1"), "checkin.performed")
        message = await queue.get(timeout=5, fail=True)
        assert message is not None
        await message.ack()
        assert (message.body, message.message_id) == (b"hello", "1")
        await asyncio.sleep(0)
