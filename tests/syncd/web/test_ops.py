"""Operations: health, readiness against the real database and broker, metrics, migrations,
request ids, and that no token or key material ever reaches a log line."""

from __future__ import annotations

import base64
import logging

import aio_pika
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import SecretStr, ValidationError

from shared.errors import ConfigError
from syncd.app import create_app
from syncd.keys import POOL, VAULT
from syncd.migrate import load_migrations, migrate, pending
from syncd.outbox.topology import declare_topology
from syncd.settings import SyncdSettings
from syncd.signing import private_keys
from syncd.web.logs import JsonFormatter
from tests.conftest import AMQP_URL, Rabbit
from tests.syncd.conftest import MASTER_KEY, Org, create_event, push, relay_exchange


async def test_health_ready_metrics(client: TestClient, org_a: Org) -> None:
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    resp = await client.get("/readyz")
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["checks"] == {"database": "ok", "broker": "ok"}
    await client.get("/api/v1/events", headers=org_a.h())
    text = await (await client.get("/metrics")).text()
    assert 'syncd_http_requests_total{method="GET",route="/api/v1/events",status="200"}' in text


async def test_readyz_reports_a_missing_broker(settings: SyncdSettings) -> None:
    bad = settings.model_copy(update={"amqp_url": SecretStr("amqp://guest:guest@127.0.0.1:1/")})
    async with TestClient(TestServer(create_app(bad))) as client:
        resp = await client.get("/readyz")
        body = await resp.json()
        assert resp.status == 503 and body["checks"]["database"] == "ok"
        assert body["checks"]["broker"] != "ok"
        assert (await client.get("/healthz")).status == 200


async def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    resp = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert resp.headers["X-Request-Id"] == "abc-123"
    resp = await client.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
    assert len(resp.headers["X-Request-Id"]) == 32


async def test_migrations_are_idempotent_and_checked(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        assert len(await pending(conn)) == len(load_migrations())
        assert len(await migrate(conn)) == len(load_migrations())
        assert await migrate(conn) == [] and await pending(conn) == []
        await conn.execute("UPDATE schema_migrations SET checksum = 'x'")
        with pytest.raises(ConfigError, match="changed after it was applied"):
            await pending(conn)
    finally:
        await conn.close()


async def test_app_refuses_to_start_on_an_old_schema(pg_url: str) -> None:
    settings = SyncdSettings(database_url=pg_url, master_key=MASTER_KEY)
    runner = web.AppRunner(create_app(settings))
    try:
        with pytest.raises(ConfigError, match="syncd migrate"):
            await runner.setup()
    finally:
        await runner.cleanup()


def test_settings_need_a_master_key(pg_url: str) -> None:
    with pytest.raises(ConfigError, match="SYNCD_MASTER_KEY"):
        create_app(SyncdSettings(database_url=pg_url))
    with pytest.raises(ConfigError, match="at least"):
        create_app(SyncdSettings(database_url=pg_url, master_key="short"))


async def test_exchange_names_fit_amqp(rabbit: Rabbit) -> None:
    """Names the broker would refuse (too long with a suffix, odd characters) are refused at
    start; the longest allowed one declares its whole topology on a real RabbitMQ."""
    for bad in ("x" * 119, "tessera events", "tessera/prod", ""):
        with pytest.raises(ValidationError, match="amqp_exchange"):
            SyncdSettings(amqp_exchange=bad)
    longest = relay_exchange(rabbit, "x" * (118 - len(rabbit.namespace) - 1))
    assert SyncdSettings(amqp_exchange=longest).amqp_exchange == longest and len(longest) == 118
    async with await aio_pika.connect(AMQP_URL) as conn:
        exchange = await declare_topology(await conn.channel(), longest)
        assert exchange.name == longest


async def test_no_secret_in_any_log_line(
    client: TestClient, org_a: Org, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Drives tokens, key generation, rotation, signing and failures, then searches every
    formatted log line for token text, private keys (raw, hex, base64, PEM) and the master key."""
    caplog.set_level(logging.DEBUG)
    event = await create_event(client, org_a)
    eid = event["event_id"]
    await client.post(f"/api/v1/events/{eid}/keys", headers=org_a.h("organiser"))
    await push(client, org_a, eid, "external_ref\nA\n")
    resp = await client.post(
        "/api/v1/tokens", json={"name": "n", "role": "viewer"}, headers=org_a.h("admin")
    )
    new_token = (await resp.json())["token"]
    await client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {new_token}"})
    await client.get("/api/v1/whoami", headers={"Authorization": "Bearer tsr_guess-secret"})
    await client.get(f"/api/v1/events/{eid}/bundle", headers=org_a.h("organiser"))
    await client.get(f"/api/v1/events/{eid}/export.csv", headers=org_a.h("organiser"))
    async with client.app[POOL].acquire() as conn:
        keys = await private_keys(conn, client.app[VAULT], eid)

    secrets = [new_token, "tsr_guess-secret", MASTER_KEY, *org_a.tokens.values()]
    for key in keys.values():
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        secrets += [
            raw.hex(),
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode().rstrip("="),
        ]
        secrets.append(
            key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
            .decode()
            .splitlines()[1]
        )
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    assert any('"msg": "list pushed"' in line for line in lines)
    assert any('"request_id"' in line for line in lines)
    for line in lines:
        for secret in secrets:
            assert secret not in line
            assert secret[:16] not in line
