"""End to end with real processes: syncd, two gates, Postgres, RabbitMQ, and real outages.

In every scenario each admitted check-in ends up exactly once in Postgres (same gate + seq the
gate printed) and at least once on the exchange (deduplicated by message_id), and the counts
agree. Outages are a few seconds long: they prove the same as long ones.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
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
from tests.e2e.stack import MASTER_KEY, Gate, Syncd, eventually, proxy, syncd_command


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

    def gate(self, name: str) -> Gate:
        created = self.api.post(f"/api/v1/events/{self.event_id}/gates", json={"name": name})
        g = Gate(name, self.tmp / name, f"http://127.0.0.1:{self.net.port}")
        g.enroll(created.json()["code"])
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


async def _drain(queue: str) -> list[tuple[str, str]]:
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


def _feed_seq(stack: Stack, gate_name: str) -> int:
    rows = stack.sql(
        "SELECT max(f.seq) AS s FROM change_feed f JOIN gates g ON g.gate_id = f.gate_id"
        " WHERE g.name = $1",
        gate_name,
    )
    return int(rows[0]["s"] or 0)


def _cursor(gate: Gate) -> int:
    db = sqlite3.connect(f"file:{gate.data_dir / 'gate.sqlite3'}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT cursor FROM sync_state").fetchone()[0] or 0)
    finally:
        db.close()


def _settle_and_count(stack: Stack, gates: list[Gate]) -> None:
    """Stop the gates, then: Postgres holds exactly what they decided; the exchange has it all."""
    for g in gates:
        g.stop()
    printed = {(g.name, d["seq"]): d["decision"] for g in gates for d in g.decisions}
    stored = {
        (r["name"], r["seq"]): r["outcome"]
        for r in stack.sql(
            "SELECT g.name, c.seq, c.outcome FROM checkins c JOIN gates g USING (gate_id)"
        )
    }
    assert stored == printed  # exactly once each, same outcome
    # A row leaves the outbox only once the broker confirmed its message.
    eventually(lambda: not stack.sql("SELECT 1 FROM outbox"), "outbox relayed")
    seen = dict(asyncio.run(_drain(stack.queue)))  # message_id -> key: duplicates folded
    per_key = {k: sum(1 for v in seen.values() if v == k) for k in set(seen.values())}
    admitted = sum(1 for v in printed.values() if v == "admit")
    assert per_key.get("checkin.performed", 0) + per_key.get("checkout.performed", 0) == admitted
    assert per_key.get("checkin.invalid", 0) == len(printed) - admitted


def test_gates_online_offline_conflict_and_sigkill(stack: Stack) -> None:
    a, b = stack.gate("A"), stack.gate("B")
    assert a.scan(stack.codes[0])["decision"] == "admit"
    eventually(lambda: _cursor(b) >= _feed_seq(stack, "A") > 0, "B applied A's admission")
    refused = b.scan(stack.codes[0])
    assert refused["decision"] == "deny" and "A" in refused["message"]  # online: refused at B
    stack.net.cut()  # both gates offline
    for code in stack.codes[1:6]:
        assert a.scan(code)["decision"] == "admit"
    for code in [stack.codes[1], *stack.codes[6:9]]:
        assert b.scan(code)["decision"] == "admit"  # ticket 1 admitted at both while apart
    a.scan("T1:not-a-ticket")
    a.kill()  # SIGKILL: its journal is on disk
    stack.net.restore()
    a.start()
    assert a.scan(stack.codes[9])["decision"] == "admit"
    eventually(lambda: stack.sql("SELECT 1 FROM checkins WHERE conflict"), "conflict flagged")
    conflicts = stack.api.get(f"/api/v1/events/{stack.event_id}/conflicts").json()["conflicts"]
    assert len(conflicts) == 1
    _settle_and_count(stack, [a, b])


def test_broker_database_and_syncd_outages_lose_nothing(stack: Stack) -> None:
    a, b = stack.gate("A"), stack.gate("B")
    stack.amqp.cut()  # broker unreachable: check-ins still stored, messages wait in the outbox
    for code in stack.codes[:5]:
        a.scan(code)
    eventually(lambda: stack.syncd.get("/readyz").status_code == 503, "readyz says broker down")
    eventually(lambda: len(stack.sql("SELECT 1 FROM checkins")) == 5, "stored while broker down")
    assert stack.sql("SELECT 1 FROM outbox")
    stack.amqp.restore()
    eventually(lambda: stack.syncd.get("/readyz").status_code == 200, "relay reconnected")
    stack.pg.cut()  # database gone: pushes get 503, gates keep scanning and retry
    for code in stack.codes[5:10]:
        b.scan(code)
    stack.pg.restore()
    eventually(lambda: len(stack.sql("SELECT 1 FROM checkins")) == 10, "stored after Postgres")
    for code in stack.codes[10:20]:
        a.scan(code)
    stack.syncd.kill()  # in the middle of A's pushes
    for code in stack.codes[20:25]:
        b.scan(code)
    stack.syncd.start()
    eventually(lambda: len(stack.sql("SELECT 1 FROM checkins")) == 25, "stored after restart")
    _settle_and_count(stack, [a, b])
