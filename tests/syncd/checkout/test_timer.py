"""``checkout.automatic``: once per event and boundary, whatever the number of replicas looking
at the same moment, across restarts, and after an outage only the latest missed boundary.
Real Postgres throughout; the last tests publish through the real relay to a real RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aio_pika
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from shared.checkout import latest_checkout, next_checkout
from shared.protocol import ROUTING_KEYS
from shared.tasks import stop
from syncd.app import create_app
from syncd.checkout.timer import CheckoutTimer, look
from syncd.settings import SyncdSettings
from tessera_dev.netproxy import TcpProxy
from tests.conftest import Rabbit
from tests.syncd.conftest import Org
from tests.syncd.gatekit import enrolled_gate, event_with_tickets, send

ZONE = "Asia/Kathmandu"  # no daylight saving: a day is 86,400 s
DAY = 86400.0


async def _event(client: TestClient, org: Org, hours_ago: float) -> tuple[int, list[int], float]:
    """An event whose check-out time was ``hours_ago`` hours ago, set three days ago; returns
    the event, its tickets and the boundary."""
    eid, tickets = await event_with_tickets(client, org, 4)
    now = time.time()
    checkout = datetime.fromtimestamp(now - hours_ago * 3600, ZoneInfo(ZONE)).strftime("%H:%M")
    resp = await client.patch(
        f"/api/v1/events/{eid}",
        json={"timezone": ZONE, "checkout_time": checkout},
        headers=org.h("organiser"),
    )
    assert resp.status == 200
    boundary = latest_checkout(now, ZONE, checkout)
    assert boundary is not None
    return eid, tickets, boundary


async def _set_three_days_ago(db_url: str, eid: int) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "UPDATE events SET checkout_since = now() - interval '3 days' WHERE event_id = $1",
            eid,
        )
    finally:
        await conn.close()


async def _announced(db_url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT body FROM outbox WHERE routing_key = 'checkout.automatic' ORDER BY id"
        )
    finally:
        await conn.close()
    return [json.loads(r["body"]) for r in rows]


@pytest.fixture
async def client(settings: SyncdSettings) -> AsyncIterator[TestClient]:
    """The app with no relay (outbox rows stay to be read) and a timer that sleeps: the tests
    call ``look`` themselves, with the ``now`` they choose."""
    quiet = settings.model_copy(update={"relay_enabled": False, "checkout_interval": 3600.0})
    async with TestClient(TestServer(create_app(quiet))) as c:
        yield c


@pytest.fixture
async def pools(db_url: str) -> AsyncIterator[list[asyncpg.Pool]]:
    """Two pools: two replicas' worth of connections."""
    made = [await asyncpg.create_pool(db_url, min_size=1, max_size=4) for _ in range(2)]
    yield made
    for p in made:
        await p.close()


async def test_concurrent_looks_announce_once_with_the_inside_count(
    client: TestClient, org_a: Org, db_url: str, pools: list[asyncpg.Pool]
) -> None:
    eid, (t0, t1, t2, t3), b = await _event(client, org_a, 2)
    gate = await enrolled_gate(client, org_a, eid, "A")
    rows = [
        gate.checkin(t0, "in", at=b - 3600),  # inside just before the boundary
        gate.checkin(t1, "in", at=b - DAY - 60),  # counted out at the boundary before
        gate.checkin(t2, "in", at=b - 7200),
        gate.checkin(t2, "out", at=b - 3600),  # left
        gate.checkin(t3, "in", at=b + 60),  # came today
    ]
    assert (await send(client, gate, rows))[0] == 200
    await _set_three_days_ago(db_url, eid)
    now = time.time()
    looks = await asyncio.gather(*(look(pools[i % 2], now) for i in range(8)))
    assert sum(len(found.announced) for found in looks) == 1
    [body] = await _announced(db_url)
    assert body == {
        "type": "checkout.automatic",
        "event_id": eid,
        "boundary": b,
        "since": b - DAY,
        "checkout_time": datetime.fromtimestamp(b, ZoneInfo(ZONE)).strftime("%H:%M"),
        "timezone": ZONE,
        "inside": 1,
        "stored_at": body["stored_at"],
    }
    assert b < body["stored_at"] <= time.time()
    assert {found.next_at for found in looks} == {next_checkout(now, ZONE, body["checkout_time"])}
    # A restarted replica (a new pool) finds it done.
    restarted = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    try:
        assert (await look(restarted, time.time())).announced == []
    finally:
        await restarted.close()
    assert len(await _announced(db_url)) == 1


async def test_after_an_outage_only_the_latest_boundary_is_announced(
    client: TestClient, org_a: Org, db_url: str, pools: list[asyncpg.Pool]
) -> None:
    eid, _, b = await _event(client, org_a, 2)
    await _set_three_days_ago(db_url, eid)
    assert len((await look(pools[0], b + 1)).announced) == 1
    # syncd down for three days: boundaries b+1d and b+2d pass unseen; b+3d is announced, once.
    later = b + 3 * DAY + 3600
    found = await asyncio.gather(look(pools[0], later), look(pools[1], later))
    assert [len(f.announced) for f in sorted(found, key=lambda f: len(f.announced))] == [0, 1]
    assert [a["boundary"] for a in await _announced(db_url)] == [b, b + 3 * DAY]
    assert (await look(pools[1], later)).announced == []


async def test_a_boundary_before_the_setting_is_never_announced(
    client: TestClient, org_a: Org, db_url: str, pools: list[asyncpg.Pool]
) -> None:
    """Turning the check-out on at 15:00 announces no check-out of that morning."""
    eid, _, b = await _event(client, org_a, 2)
    assert (await look(pools[0], time.time())).announced == []
    assert len((await look(pools[0], b + DAY)).announced) == 1  # the next one is
    await client.patch(
        f"/api/v1/events/{eid}", json={"checkout_time": None}, headers=org_a.h("organiser")
    )
    found = await look(pools[0], b + 5 * DAY)
    assert (found.announced, found.next_at) == ([], None)  # off: nothing, and nothing to wait for
    assert len(await _announced(db_url)) == 1


async def test_a_new_time_zone_announces_no_boundary_already_past(
    client: TestClient, org_a: Org, db_url: str, pools: list[asyncpg.Pool]
) -> None:
    """Moved from Kathmandu (+05:45) to Kolkata (+05:30), the same wall time comes 15 minutes
    later: that boundary is past already when the zone changes, and is not announced late."""
    eid, _, b = await _event(client, org_a, 2)
    await _set_three_days_ago(db_url, eid)
    assert len((await look(pools[0], time.time())).announced) == 1
    resp = await client.patch(
        f"/api/v1/events/{eid}", json={"timezone": "Asia/Kolkata"}, headers=org_a.h("organiser")
    )
    assert resp.status == 200
    assert (await look(pools[0], time.time())).announced == []
    assert len((await look(pools[0], b + DAY + 901)).announced) == 1
    assert [a["boundary"] for a in await _announced(db_url)] == [b, b + DAY + 900]


async def test_the_timer_outlives_a_database_outage(
    client: TestClient, org_a: Org, db_url: str
) -> None:
    """Postgres unreachable (a cut TCP proxy): the timer keeps its last error and goes on
    looking; once Postgres is back it announces the check-out it missed."""
    eid, _, b = await _event(client, org_a, 1)
    name = db_url.rpartition("/")[2]
    with TcpProxy("127.0.0.1", 5432) as proxy:
        pool = await asyncpg.create_pool(
            f"postgresql://postgres:postgres@127.0.0.1:{proxy.port}/{name}", min_size=0
        )
        timer = CheckoutTimer(pool, interval=0.2)
        task = asyncio.create_task(timer.run())
        try:
            proxy.cut()
            await _until(lambda: timer.looks >= 2 and timer.last_error is not None)
            await _set_three_days_ago(db_url, eid)
            proxy.restore()
            await _until(lambda: timer.last_error is None and timer.looks >= 4)
            assert [a["boundary"] for a in await _announced(db_url)] == [b]
        finally:
            await stop(task)
            await pool.close()


async def _until(check: Callable[[], bool]) -> None:
    for _ in range(600):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("gave up waiting")


async def _queue(rabbit: Rabbit, exchange: str) -> str:
    name = rabbit.queue("checkouts")
    conn = await aio_pika.connect(rabbit.url)
    async with conn:
        channel = await conn.channel()
        queue = await channel.declare_queue(name, durable=True)
        await queue.bind(exchange, "checkout.automatic")
    return name


async def _received(rabbit: Rabbit, queue: str, settle: float) -> list[aio_pika.IncomingMessage]:
    """Every message that reaches ``queue`` until none came for ``settle`` seconds."""
    got: list[aio_pika.IncomingMessage] = []
    conn = await aio_pika.connect(rabbit.url)
    async with conn:
        channel = await conn.channel()
        q = await channel.declare_queue(queue, durable=True)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle or not got:
            message = await q.get(fail=False, no_ack=True)
            if message is None:
                await asyncio.sleep(0.1)
                if time.monotonic() - quiet_since > 60:
                    break
                continue
            got.append(message)
            quiet_since = time.monotonic()
    return got


async def test_two_replicas_publish_it_once_to_the_exchange_and_not_after_a_restart(
    client: TestClient, org_a: Org, db_url: str, rabbit: Rabbit, settings: SyncdSettings
) -> None:
    """Two running syncd apps (each a timer and a relay) on one database and one broker."""
    assert "checkout.automatic" in ROUTING_KEYS
    eid, _, b = await _event(client, org_a, 1)
    fast = settings.model_copy(update={"checkout_interval": 1.0})
    first, second = (TestClient(TestServer(create_app(fast))) for _ in range(2))
    async with first, second:
        queue = await _queue(rabbit, settings.amqp_exchange)  # the relays declared it
        await _set_three_days_ago(db_url, eid)  # both timers see it due at their next look
        messages = await _received(rabbit, queue, settle=4)
    assert [m.routing_key for m in messages] == ["checkout.automatic"]
    body = json.loads(messages[0].body)
    assert (body["event_id"], body["boundary"], body["inside"]) == (eid, b, 0)
    assert messages[0].message_id and messages[0].delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    async with TestClient(TestServer(create_app(fast))):  # a restart: nothing again
        await asyncio.sleep(3)
    conn = await aio_pika.connect(rabbit.url)
    async with conn:
        channel = await conn.channel()
        q = await channel.declare_queue(queue, durable=True)
        assert await q.get(fail=False) is None
