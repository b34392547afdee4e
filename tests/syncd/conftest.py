"""syncd fixtures: a migrated database per test, an in-process app, two organisations with a
token of every role. Everything is real: Postgres via ``pg_url``, RabbitMQ at the test URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from syncd.api.tokens import insert_token
from syncd.app import create_app
from syncd.migrate import migrate
from syncd.settings import SyncdSettings
from tests.conftest import AMQP_URL, Rabbit

MASTER_KEY = "test-master-key-0123456789-abcdefghijklmnop"


@dataclass
class Org:
    org_id: int
    name: str
    tokens: dict[str, str] = field(default_factory=dict)

    def h(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture
async def db_url(pg_url: str) -> str:
    conn = await asyncpg.connect(pg_url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return pg_url


def relay_exchange(rabbit: Rabbit, base: str = "events") -> str:
    """A per-test exchange for the outbox relay, its companions registered for clean-up."""
    name = rabbit.exchange(base)
    for suffix in ("dlx", "unrouted"):
        rabbit.exchange(f"{base}.{suffix}")
    for suffix in ("dead", "unrouted"):
        rabbit.queue(f"{base}.{suffix}")
    return name


@pytest.fixture
def settings(db_url: str, rabbit: Rabbit) -> SyncdSettings:
    return SyncdSettings(
        database_url=db_url,
        amqp_url=AMQP_URL,
        master_key=MASTER_KEY,
        amqp_exchange=relay_exchange(rabbit),
    )


@pytest.fixture
async def client(settings: SyncdSettings) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


async def make_org(db_url: str, name: str) -> Org:
    conn = await asyncpg.connect(db_url)
    try:
        org_id = await conn.fetchval("INSERT INTO orgs (name) VALUES ($1) RETURNING org_id", name)
        org = Org(org_id, name)
        for role in ("admin", "organiser", "viewer"):
            org.tokens[role] = (await insert_token(conn, org_id, f"{role} token", role))[1]
        return org
    finally:
        await conn.close()


@pytest.fixture
async def org_a(db_url: str) -> Org:
    return await make_org(db_url, "Org A")


@pytest.fixture
async def org_b(db_url: str) -> Org:
    return await make_org(db_url, "Org B")


async def create_event(client: TestClient, org: Org, **fields: object) -> dict:
    body = {
        "name": "Festival",
        "venue": "Park",
        "zones": ["Main", "VIP", "Backstage"],
        "timezone": "Europe/Berlin",
        **fields,
    }
    resp = await client.post("/api/v1/events", json=body, headers=org.h("organiser"))
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def push(
    client: TestClient,
    org: Org,
    event_id: int,
    body: str | bytes,
    content_type: str = "text/csv",
    **params: str,
) -> tuple[int, dict]:
    resp = await client.post(
        f"/api/v1/events/{event_id}/list",
        data=body,
        params=params,
        headers={**org.h("organiser"), "Content-Type": content_type},
    )
    return resp.status, await resp.json()
