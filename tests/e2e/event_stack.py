"""The end-to-end stack: syncd as a real process behind cuttable proxies (to Postgres, RabbitMQ,
and between the gates and syncd), an organiser client, an event with a 40-ticket list, and a
queue bound to the test's private exchange."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest

from tessera_dev.netproxy import TcpProxy, _free_port
from tests.conftest import AMQP_URL, Rabbit
from tests.e2e.stack import MASTER_KEY, Gate, Syncd, proxy, syncd_command


@dataclass
class Stack:
    db_url: str
    syncd: Syncd
    pg: TcpProxy
    amqp: TcpProxy
    net: TcpProxy  # gates -> syncd
    api: httpx.Client
    event_id: int
    codes: list[str]  # ticket QR texts
    queue: str
    tmp: Path

    def gate(self, name: str, start: bool = True, **env: str) -> Gate:
        """A gate enrolled (through the gates' proxy to syncd) and, unless ``start=False``,
        running; ``env`` adds GATE_* settings."""
        created = self.api.post(f"/api/v1/events/{self.event_id}/gates", json={"name": name})
        g = Gate(name, self.tmp / name, f"http://127.0.0.1:{self.net.port}", env=env)
        g.enroll(created.json()["code"])
        if start:
            g.start()
        return g

    def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.db_url)
            try:
                return list(await conn.fetch(query, *args))
            finally:
                await conn.close()

        return asyncio.run(run())


async def _bind_queue(rabbit: Rabbit, exchange: str) -> str:
    name = rabbit.queue("e2e-consumer")
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        channel = await conn.channel()
        await channel.declare_exchange(exchange, passive=True)
        q = await channel.declare_queue(name, durable=True)
        await q.bind(exchange, "#")
    return name


async def drain_queue(queue: str) -> list[tuple[str, str]]:
    """Every message waiting in ``queue``: (message_id, routing_key), duplicates included."""
    got = []
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        channel = await conn.channel()
        q = await channel.declare_queue(queue, durable=True)
        while (m := await q.get(fail=False, no_ack=True)) is not None:
            got.append((m.message_id or "", m.routing_key or ""))
    return got


@pytest.fixture
def stack(pg_url: str, rabbit: Rabbit, tmp_path: Path) -> Iterator[Stack]:
    direct = {"SYNCD_DATABASE_URL": pg_url, "SYNCD_MASTER_KEY": MASTER_KEY}
    env = {**os.environ, **direct}
    syncd_command(env, "migrate")
    syncd_command(env, "create-org", "E2E")
    token = syncd_command(env, "create-token", "--org", "E2E", "--role", "organiser")
    exchange = rabbit.exchange("events")
    for suffix in ("dlx", "unrouted"):
        rabbit.exchange(f"events.{suffix}")
    for suffix in ("dead", "unrouted"):
        rabbit.queue(f"events.{suffix}")
    port = _free_port()
    with proxy(5432) as pg, proxy(5672) as amqp, proxy(port) as net:
        db_name = pg_url.rsplit("/", 1)[1]
        env.update(
            SYNCD_DATABASE_URL=f"postgresql://postgres:postgres@127.0.0.1:{pg.port}/{db_name}",
            SYNCD_AMQP_URL=f"amqp://guest:guest@127.0.0.1:{amqp.port}/",
            SYNCD_AMQP_EXCHANGE=exchange,
            SYNCD_PORT=str(port),
            SYNCD_LOG_LEVEL="WARNING",
        )
        syncd = Syncd(env, port)
        syncd.start()
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        try:
            eid = api.post("/api/v1/events", json={"name": "E2E", "zones": ["Main"]}).json()[
                "event_id"
            ]
            rows = "external_ref,holder_name\n" + "".join(f"R{i},P{i}\n" for i in range(40))
            api.post(
                f"/api/v1/events/{eid}/list",
                content=rows,
                headers={"Content-Type": "text/csv"},
            ).raise_for_status()
            tickets = api.get(f"/api/v1/events/{eid}/tickets", params={"limit": "100"}).json()
            codes = [
                api.get(f"/api/v1/events/{eid}/tickets/{t['ticket_id']}/qr").text.strip()
                for t in tickets["tickets"]
            ]
            queue = asyncio.run(_bind_queue(rabbit, exchange))
            yield Stack(pg_url, syncd, pg, amqp, net, api, eid, codes, queue, tmp_path)
        finally:
            api.close()
            syncd.stop()
