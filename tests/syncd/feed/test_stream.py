"""The pushed change feed (issue 22): one server-sent-event stream per gate, authenticated once,
woken by the notifier, never re-reading the feed while idle; a revoked gate's stream closes at
once; a gate cannot pile up streams; credentials are cached and the cache forgets at once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from syncd.app import create_app
from syncd.feed.notify import Notifier
from syncd.feed.stream import FeedStream, StreamConfig
from syncd.keys import FEED_READS, NOTIFIER, PRINCIPALS, RESOLVERS
from syncd.settings import SyncdSettings
from syncd.web.auth import Principal, PrincipalCache
from tests.syncd.conftest import Org
from tests.syncd.gatekit import Gate, enrolled_gate, event_with_tickets, send

STREAM = "/api/v1/gate/stream"


@pytest.fixture
async def quick(settings: SyncdSettings) -> AsyncIterator[TestClient]:
    """syncd with a short keepalive, to see one within a test."""
    fast = settings.model_copy(update={"stream_heartbeat": 0.3})
    async with TestClient(TestServer(create_app(fast))) as c:
        yield c


class Events:
    """Reads one SSE response: ``next()`` is the next event (name, data) or a comment."""

    def __init__(self, resp: ClientResponse) -> None:
        self.resp = resp

    async def next(self) -> tuple[str, Any]:
        return await asyncio.wait_for(self._next(), 5.0)

    async def _next(self) -> tuple[str, Any]:
        name, data = "message", ""
        while True:
            line = (await self.resp.content.readline()).decode()
            if line == "":
                return "eof", None
            line = line.rstrip("\n")
            if line.startswith(":"):
                return "comment", line[1:].strip()
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
            elif line == "" and data:
                return name, json.loads(data)

    async def page(self) -> dict[str, Any]:
        while True:
            name, data = await self.next()
            if name == "page":
                return dict(data)
            assert name == "comment", (name, data)


async def open_stream(client: TestClient, gate: Gate, cursor: str = "") -> Events:
    resp = await client.get(STREAM, params={"cursor": cursor}, headers=gate.h())
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/event-stream"
    return Events(resp)


async def caught_up(events: Events) -> str:
    """Read pages until one without ``more``: the stream is at the head; returns its cursor."""
    while True:
        page = await events.page()
        if not page["more"]:
            return str(page["cursor"])


async def test_a_stream_catches_up_then_gets_each_admission_but_its_own(
    client: TestClient, org_a: Org
) -> None:
    eid, ids = await event_with_tickets(client, org_a, 4)
    a = await enrolled_gate(client, org_a, eid, "A")
    b = await enrolled_gate(client, org_a, eid, "B")
    events = await open_stream(client, b)
    await caught_up(events)
    started = time.monotonic()
    assert (await send(client, a, [a.checkin(ids[0])]))[0] == 200
    page = await events.page()
    assert time.monotonic() - started < 2
    assert [(c["kind"], c["checkin"]["ticket_id"]) for c in page["changes"]] == [
        ("checkin.in", ids[0])
    ]
    # B's own admission advances B's cursor but carries no change for B
    assert (await send(client, b, [b.checkin(ids[1])]))[0] == 200
    page = await events.page()
    assert page["changes"] == [] and int(page["cursor"]) > 0
    events.resp.close()


async def test_an_idle_stream_reads_nothing_and_keeps_alive(quick: TestClient, org_a: Org) -> None:
    eid, _ = await event_with_tickets(quick, org_a, 2)
    gate = await enrolled_gate(quick, org_a, eid, "A")
    events = await open_stream(quick, gate)
    await caught_up(events)
    reads = quick.app[FEED_READS].queries
    assert await events.next() == ("comment", "keepalive")
    assert await events.next() == ("comment", "keepalive")
    assert quick.app[FEED_READS].queries == reads  # idle: no feed read at all
    events.resp.close()


async def test_gates_woken_together_share_one_read(client: TestClient, org_a: Org) -> None:
    eid, ids = await event_with_tickets(client, org_a, 2)
    pusher = await enrolled_gate(client, org_a, eid, "P")
    streams = []
    for i in range(6):
        gate = await enrolled_gate(client, org_a, eid, f"G{i}")
        streams.append(await open_stream(client, gate))
    for events in streams:
        await caught_up(events)
    before = client.app[FEED_READS].queries
    await send(client, pusher, [pusher.checkin(ids[0])])
    for events in streams:
        page = await events.page()
        assert [c["checkin"]["ticket_id"] for c in page["changes"]] == [ids[0]]
    assert client.app[FEED_READS].queries - before <= 2  # one shared read (two if split)
    for events in streams:
        events.resp.close()


async def test_a_revoked_gate_is_cut_off_at_once(client: TestClient, org_a: Org) -> None:
    eid, _ = await event_with_tickets(client, org_a, 1)
    gate = await enrolled_gate(client, org_a, eid, "A")
    events = await open_stream(client, gate)
    await caught_up(events)
    started = time.monotonic()
    resp = await client.delete(
        f"/api/v1/events/{eid}/gates/{gate.gate_id}", headers=org_a.h("organiser")
    )
    assert resp.status == 200
    name, _ = await events.next()
    while name in ("comment", "page"):
        name, _ = await events.next()
    assert name == "revoked"
    assert (await events.next())[0] == "eof"
    assert time.monotonic() - started < 1.0
    resp = await client.get(STREAM, headers=gate.h())
    assert resp.status == 401


async def test_a_gate_cannot_pile_up_streams(client: TestClient, org_a: Org) -> None:
    eid, _ = await event_with_tickets(client, org_a, 1)
    gate = await enrolled_gate(client, org_a, eid, "A")
    limit = client.app[NOTIFIER].max_streams_per_gate
    first = await open_stream(client, gate)
    await caught_up(first)
    others = [await open_stream(client, gate) for _ in range(limit)]
    for events in others:
        await caught_up(events)
    while (name := (await first.next())[0]) == "comment":
        pass
    assert name == "eof"  # the oldest was closed
    assert client.app[NOTIFIER].streams == limit
    for events in others:
        events.resp.close()


async def test_a_bad_cursor_asks_for_a_snapshot_and_ends(client: TestClient, org_a: Org) -> None:
    eid, _ = await event_with_tickets(client, org_a, 1)
    gate = await enrolled_gate(client, org_a, eid, "A")
    for cursor in ("abc", "99999999", "-1"):
        events = await open_stream(client, gate, cursor)
        page = await events.page()
        assert page["snapshot_required"] is True
        assert (await events.next())[0] == "eof"


async def test_streams_are_for_gates_only(client: TestClient, org_a: Org) -> None:
    assert (await client.get(STREAM)).status == 401
    assert (await client.get(STREAM, headers=org_a.h("admin"))).status == 403
    resp = await client.get(STREAM, headers={"Authorization": "Bearer tsg_nope"})
    assert resp.status == 401


async def test_credentials_are_cached_and_a_revoked_token_stops_at_once(
    client: TestClient, org_a: Org
) -> None:
    calls: list[str] = []
    resolvers = client.app[RESOLVERS]
    for prefix, resolver in list(resolvers.items()):

        async def counting(pool: Any, credential: str, resolver: Any = resolver) -> Any:
            calls.append(credential[:4])
            return await resolver(pool, credential)

        resolvers[prefix] = counting
    for _ in range(5):
        assert (await client.get("/api/v1/events", headers=org_a.h("viewer"))).status == 200
    assert calls == ["tsr_"]  # one look-up, four answers from the cache
    resp = await client.get("/api/v1/tokens", headers=org_a.h("admin"))
    viewer = next(t for t in (await resp.json())["tokens"] if t["role"] == "viewer")
    resp = await client.delete(f"/api/v1/tokens/{viewer['token_id']}", headers=org_a.h("admin"))
    assert resp.status == 200
    assert (await client.get("/api/v1/events", headers=org_a.h("viewer"))).status == 401


async def test_a_token_revoked_elsewhere_is_forgotten_through_postgres(
    client: TestClient, org_a: Org, db_url: str
) -> None:
    """Another replica (here: plain SQL) revokes: this replica hears it from Postgres."""
    assert (await client.get("/api/v1/events", headers=org_a.h("viewer"))).status == 200
    assert len(client.app[PRINCIPALS]) >= 1
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE role = 'viewer'")
    finally:
        await conn.close()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        status = (await client.get("/api/v1/events", headers=org_a.h("viewer"))).status
        if status == 401:
            break
        await asyncio.sleep(0.02)
    assert status == 401


def test_the_cache_expires_bounds_and_forgets() -> None:
    now = [0.0]
    cache = PrincipalCache(30, size=2, clock=lambda: now[0])
    gate = Principal("gate", 1, "gate", 7, 3)
    token = Principal("token", 1, "admin", 7)
    cache.put(b"g", gate)
    cache.put(b"t", token)
    assert cache.get(b"g") == gate and cache.get(b"t") == token
    cache.forget("gate", 7)  # the gate 7, not the token 7
    assert cache.get(b"g") is None and cache.get(b"t") == token
    now[0] = 31
    assert cache.get(b"t") is None
    for key in (b"a", b"b", b"c"):
        cache.put(key, token)
    assert len(cache) == 2 and cache.get(b"a") is None
    cache.forget("*", 0)
    assert len(cache) == 0
    off = PrincipalCache(0)
    off.put(b"x", token)
    assert off.get(b"x") is None


async def test_a_wake_left_from_the_catch_up_does_not_spin_the_stream() -> None:
    """Scenario: an advance lands while a stream reads its catch-up page, so its flag is set
    when it goes live. ``_wait`` returned at once without clearing it, and ``run`` looped on
    it without ever yielding: the replica froze (found by the e2e outage test)."""
    notifier = Notifier("postgresql://unused")
    sub = notifier.subscribe(1, 1)
    sub.wake.set()
    config = StreamConfig(heartbeat=5)
    stream = FeedStream(None, None, None, None, notifier, config, None)  # type: ignore[arg-type]
    await asyncio.wait_for(stream._wait(sub), 1)
    assert not sub.wake.is_set()
    waiting = asyncio.ensure_future(stream._wait(sub))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # now it waits, as it should
    sub.wake.set()
    await asyncio.wait_for(waiting, 1)
