"""The outbox relay on a real RabbitMQ, the snapshot and presence, live stats and readiness."""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any

import aio_pika
import asyncpg
from aiohttp.test_utils import TestClient

from shared.bundle import BundleReader
from shared.protocol import ROUTING_KEYS, PresencePage
from syncd.settings import SyncdSettings
from tests.conftest import Rabbit
from tests.syncd.api.test_tickets import keyring
from tests.syncd.conftest import Org, push
from tests.syncd.gatekit import HEADER, create_gate, enrolled_gate, event_with_tickets, send


async def _consume(
    rabbit: Rabbit, exchange: str, want: int, ready: asyncio.Event
) -> list[aio_pika.IncomingMessage]:
    """Bind a fresh queue to every routing key and collect ``want`` messages."""
    conn = await aio_pika.connect(rabbit.url)
    got: list[aio_pika.IncomingMessage] = []
    async with conn:
        channel = await conn.channel()
        queue = await channel.declare_queue(
            rabbit.queue(f"watch{want}"), arguments={"x-dead-letter-exchange": f"{exchange}.dlx"}
        )
        await queue.bind(exchange, "#")
        ready.set()
        async with queue.iterator() as it:
            async for message in it:
                async with message.process():
                    got.append(message)
                if len(got) >= want:
                    break
    return got


async def _outbox(db_url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch("SELECT id, routing_key FROM outbox ORDER BY id")
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def test_every_checkin_is_published_once_confirmed(
    client: TestClient, org_a: Org, rabbit: Rabbit, settings: SyncdSettings, db_url: str
) -> None:
    eid, tickets = await event_with_tickets(client, org_a)
    a = await enrolled_gate(client, org_a, eid, "A")
    b = await enrolled_gate(client, org_a, eid, "B")
    ready = asyncio.Event()
    consumer = asyncio.create_task(_consume(rabbit, settings.amqp_exchange, 7, ready))
    await ready.wait()
    now = time.time()
    first = await _next_outbox_id(db_url)
    await send(client, a, [a.checkin(tickets[0], at=now - 10), a.checkin(tickets[1])])
    await send(client, a, [a.checkin(None, outcome="deny", reason="bad_signature")])
    await send(client, b, [b.checkin(tickets[0], at=now - 20), b.checkin(tickets[1], "out")])
    await push(client, org_a, eid, HEADER + "NEW1,New,,GA,,,\nNEW2,New,,GA,,,\n")
    messages = await asyncio.wait_for(consumer, 60)
    keys = sorted(m.routing_key or "" for m in messages)
    assert keys == sorted(
        ["checkin.performed"] * 3
        + ["checkin.invalid", "checkout.performed", "checkin.conflict", "tickets.updated"]
    )
    # Every key but those of door operations and automatic check-out, published end to end in
    # tests/e2e/test_door_ops_e2e.py and tests/syncd/checkout/test_timer.py.
    elsewhere = {"checkin.annulled", "checkin.passed", "checkin.tailgate", "checkout.automatic"}
    assert set(keys) == set(ROUTING_KEYS) - elsewhere
    ids = {int(m.message_id or 0) for m in messages}
    assert len(ids) == 7 and min(ids) >= first  # message_id = the outbox row id
    for m in messages:
        assert m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert (m.content_type, m.app_id) == ("application/json", "syncd")
        body = json.loads(m.body)
        assert body["type"] == m.routing_key and body["event_id"] == eid
    conflict = next(json.loads(m.body) for m in messages if m.routing_key == "checkin.conflict")
    assert conflict["gate_name"] == "A" and conflict["entry"]["gate_name"] == "B"
    listed = next(json.loads(m.body) for m in messages if m.routing_key == "tickets.updated")
    assert listed["to_seq"] - listed["from_seq"] == 1  # one message for the whole push
    for _ in range(100):  # each row is deleted once the broker confirmed it
        if not await _outbox(db_url):
            break
        await asyncio.sleep(0.1)
    assert await _outbox(db_url) == []


async def _next_outbox_id(db_url: str) -> int:
    """The lowest id an outbox row written from now on can get."""
    conn = await asyncpg.connect(db_url)
    try:
        return int(await conn.fetchval("SELECT last_value + is_called::int FROM outbox_id_seq"))
    finally:
        await conn.close()


async def test_snapshot_presence_and_stats(client: TestClient, org_a: Org) -> None:
    eid, tickets = await event_with_tickets(client, org_a, n=4)
    await create_gate(client, org_a, eid, "VIP door", zone="VIP")
    a = await enrolled_gate(client, org_a, eid, "A")
    await send(
        client, a, [a.checkin(tickets[0]), a.checkin(tickets[1]), a.checkin(tickets[1], "out")]
    )
    await send(client, a, [a.checkin(None, outcome="deny", reason="not_on_list")])
    resp = await client.get("/api/v1/gate/snapshot", headers=a.h())
    assert resp.status == 200
    reader = BundleReader(io.BytesIO(await resp.read()), await keyring(client, org_a, eid))
    assert reader.header.cursor is not None and int(reader.header.cursor) >= 4
    assert sorted(t.ticket_id for t in reader.tickets()) == tickets
    reader.finish()
    presence = PresencePage.model_validate(
        await (await client.get("/api/v1/gate/presence", headers=a.h())).json()
    )
    assert [c.ticket_id for c in presence.inside] == [tickets[0]]
    resp = await client.get(f"/api/v1/events/{eid}/stats", headers=org_a.h("viewer"))
    stats = await resp.json()
    assert (stats["admitted"], stats["exits"], stats["inside"], stats["denied"]) == (2, 1, 1, 1)
    assert stats["denials"] == {"not_on_list": 1} and stats["conflicts"] == 0
    assert [g["name"] for g in stats["gates"]] == ["VIP door", "A"]
    assert stats["zones"][""]["inside"] == 1 and stats["zones"]["VIP"]["admitted"] == 0
    assert sum(c["inside"] for c in stats["categories"].values()) == 1
    assert sum(m["scans"] for m in stats["per_minute"]) == 4
    resp = await client.get("/readyz")
    assert (await resp.json())["checks"]["broker"] == "ok"
