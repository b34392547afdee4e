"""Issue 12.7: bad input that used to be a 500 is one named 4xx, and a database that cannot be
reached is a 503 with Retry-After on every endpoint that needs it (the credential lookup runs
before any handler, so it is the usual place to find out)."""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from syncd.app import OPERATIONS, create_app
from syncd.settings import SyncdSettings
from tessera_dev.netproxy import TcpProxy
from tests.conftest import AMQP_URL
from tests.syncd.conftest import MASTER_KEY, Org, create_event

DEEP = b"[" * 100_000 + b"]" * 100_000


async def _expect(resp, status: int, error: str) -> dict:  # type: ignore[no-untyped-def]
    body = await resp.json()
    assert (resp.status, body["error"]) == (status, error), body
    assert body["message"] and body["request_id"]
    return dict(body)


@pytest.mark.parametrize("field", ["name", "reentry", "zones", "venue", "timezone"])
async def test_patch_with_null_for_a_required_field_is_422(
    client: TestClient, org_a: Org, field: str
) -> None:
    """Scenario: ``PATCH {"name": null}`` hit the NOT NULL constraint and answered 500."""
    event = await create_event(client, org_a)
    url = f"/api/v1/events/{event['event_id']}"
    resp = await client.patch(url, json={field: None}, headers=org_a.h("organiser"))
    body = await _expect(resp, 422, "invalid")
    assert body["problems"][0]["field"].startswith(field)
    after = await (await client.get(url, headers=org_a.h())).json()
    assert after[field] == event[field]  # nothing changed
    resp = await client.patch(url, json={"starts_at": None}, headers=org_a.h("organiser"))
    assert resp.status == 200  # a time may be unknown


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00+00:00",
        "0001-01-01T00:00:00-23:59",
        "1969-12-31T23:59:59+00:00",
        "9999-12-31T23:59:59+23:59",
        "2106-02-08T00:00:00+00:00",
    ],
)
async def test_event_times_a_gate_cannot_hold_are_422(
    client: TestClient, org_a: Org, when: str
) -> None:
    """Scenario: ``PATCH {"starts_at": "0001-01-01T00:00:00+00:00"}`` was stored, and then the
    event's bundle and every gate's snapshot answered 500 ("year 0 is out of range" turning
    it into Unix seconds). Times outside 1970..2106 (T1's range) are refused up front."""
    event = await create_event(client, org_a)
    url = f"/api/v1/events/{event['event_id']}"
    for body in ({"starts_at": when}, {"ends_at": when}):
        resp = await client.patch(url, json=body, headers=org_a.h("organiser"))
        problems = (await _expect(resp, 422, "invalid"))["problems"]
        assert "1970" in problems[0]["problem"], problems
    body = {"name": "Old", "starts_at": when}
    resp = await client.post("/api/v1/events", json=body, headers=org_a.h("organiser"))
    await _expect(resp, 422, "invalid")
    resp = await client.get(f"{url}/bundle", headers=org_a.h("organiser"))
    assert resp.status == 200
    ok = {"starts_at": "1970-01-01T00:00:01+00:00", "ends_at": "2106-02-07T06:28:15+00:00"}
    resp = await client.patch(url, json=ok, headers=org_a.h("organiser"))
    assert resp.status == 200, await resp.text()
    assert (await client.get(f"{url}/bundle", headers=org_a.h("organiser"))).status == 200


@pytest.mark.parametrize(
    "body",
    [
        DEEP,
        b'{"code": ' + DEEP + b"}",
        b'{"code": "\\u0000", "x": ' + DEEP + b"}",  # the NUL scan parses it too
        b'{"code": "\\ud800"}',
        b'{"code": "\\udc00x"}',
        b'{"code": "a\\ud800\\u0000"}',
        b'{"code": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8 is not UTF-8
    ],
)
async def test_hostile_json_to_enroll_without_auth_is_400(client: TestClient, body: bytes) -> None:
    """Scenario: JSON nested 100,000 deep (or a lone surrogate) to the unauthenticated
    ``/gate/enroll`` raised RecursionError / UnicodeEncodeError: a 500."""
    resp = await client.post(
        "/api/v1/gate/enroll", data=body, headers={"Content-Type": "application/json"}
    )
    message = (await _expect(resp, 400, "bad_json"))["message"]
    assert "ud800" not in message and "[[" not in message  # names the problem, not the input


async def test_hostile_json_to_authenticated_endpoints_is_400(
    client: TestClient, org_a: Org
) -> None:
    event = await create_event(client, org_a)
    for method, url in [
        ("POST", "/api/v1/events"),
        ("PATCH", f"/api/v1/events/{event['event_id']}"),
        ("POST", "/api/v1/tokens"),
        ("POST", f"/api/v1/events/{event['event_id']}/gates"),
    ]:
        for body in (DEEP, b'{"name": "\\ud800"}', b'{"name": "\\u0000", "x": ' + DEEP + b"}"):
            resp = await client.request(
                method,
                url,
                data=body,
                headers={**org_a.h("admin"), "Content-Type": "application/json"},
            )
            await _expect(resp, 400, "bad_json")


# --- Postgres down -------------------------------------------------------------------------


def _url(path: str) -> str:
    ids = {"event_id": "1", "ticket_id": "1", "gate_id": "1", "token_id": "1", "kid": "00000000"}
    return re.sub(r"{(\w+)}", lambda m: ids[m.group(1)], path)


def _needs_db() -> list[tuple[str, str, dict[str, str]]]:
    """Every operation that reads Postgres, with a credential of the kind it takes."""
    calls = []
    for o in OPERATIONS:
        if o.role is not None:
            kind = "tsr_" if "token" in o.principals else "tsg_"
            calls.append((o.method, _url(o.path), {"Authorization": f"Bearer {kind}{'x' * 43}"}))
    calls.append(("POST", "/api/v1/gate/enroll", {}))
    return calls


async def _all_503(client: TestClient) -> None:
    for method, url, headers in _needs_db():
        kw = {"json": {"code": "ABCD-EFGH-JKLM-NPQR"}} if url.endswith("enroll") else {}
        resp = await client.request(method, url, headers=headers, **kw)
        body = await resp.json()
        assert (resp.status, body["error"]) == (503, "unavailable"), (method, url, body)
        assert int(resp.headers["Retry-After"]) > 0, (method, url)


class FakePostgres:
    """A TCP server speaking just enough of the Postgres protocol to refuse a session the ways a
    restarting server does: ``57P03`` (starting up), ``53300`` (too many clients), or closing the
    socket after the startup message (a server going away)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FakePostgres:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            length, code = struct.unpack("!ii", await reader.readexactly(8))
            if code == 80877103:  # SSLRequest: no TLS here
                writer.write(b"N")
                length, code = struct.unpack("!ii", await reader.readexactly(8))
            await reader.readexactly(length - 8)
            if self.mode != "close":
                sqlstate, text = {
                    "starting": (b"57P03", b"the database system is starting up"),
                    "full": (b"53300", b"sorry, too many clients already"),
                }[self.mode]
                fields = b"SFATAL\0VFATAL\0C" + sqlstate + b"\0M" + text + b"\0\0"
                writer.write(b"E" + struct.pack("!i", len(fields) + 4) + fields)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _settings(database_url: str) -> SyncdSettings:
    return SyncdSettings(
        database_url=database_url,
        amqp_url=AMQP_URL,
        master_key=MASTER_KEY,
        pool_min=0,  # start without Postgres, as a replica restarted during an outage does
        check_schema=False,
        relay_enabled=False,
    )


@pytest.fixture
async def refusing_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    yield port  # nothing listens there now: connections are refused


async def test_postgres_refusing_connections_is_503_everywhere(refusing_port: int) -> None:
    settings = _settings(f"postgresql://postgres@127.0.0.1:{refusing_port}/x")
    async with TestClient(TestServer(create_app(settings))) as client:
        await _all_503(client)
        resp = await client.get("/readyz")
        assert resp.status == 503 and int(resp.headers["Retry-After"]) > 0


@pytest.mark.parametrize("mode", ["starting", "full", "close"])
async def test_postgres_restarting_is_503_everywhere(mode: str) -> None:
    """Scenario: right after a Postgres restart asyncpg raised CannotConnectNowError (or
    TooManyConnections, or ConnectionDoesNotExist), which was not classed as "database down"."""
    async with FakePostgres(mode) as fake:
        settings = _settings(f"postgresql://postgres@127.0.0.1:{fake.port}/x")
        async with TestClient(TestServer(create_app(settings))) as client:
            await _all_503(client)


async def test_postgres_cut_mid_life_is_503_then_heals(
    settings: SyncdSettings, org_a: Org, db_url: str
) -> None:
    """Scenario: the network to Postgres drops under a running replica with open connections."""
    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = db_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        app = create_app(settings.model_copy(update={"database_url": SecretStr(url)}))
        async with TestClient(TestServer(app)) as client:
            assert (await client.get("/api/v1/events", headers=org_a.h())).status == 200
            proxy.cut()
            await _all_503(client)
            resp = await client.get("/api/v1/events", headers=org_a.h())
            assert resp.status == 503 and resp.headers["Retry-After"]
            proxy.restore()
            resp = await client.get("/api/v1/events", headers=org_a.h())
            assert resp.status == 200, await resp.text()


async def test_rabbitmq_down_readiness_is_503_with_retry_after(
    db_url: str, refusing_port: int
) -> None:
    settings = _settings(db_url).model_copy(
        update={
            "amqp_url": SecretStr(f"amqp://guest:guest@127.0.0.1:{refusing_port}/"),
            "pool_min": 1,
        }
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        resp = await client.get("/readyz")
        body = await resp.json()
        assert resp.status == 503 and body["checks"]["broker"] != "ok"
        assert int(resp.headers["Retry-After"]) > 0


@pytest.mark.parametrize("path", ["/api/v1/gate/enroll", "/api/v1/events"])
async def test_announced_oversized_json_is_413_before_the_body(
    client: TestClient, org_a: Org, path: str
) -> None:
    """Scenario: a JSON request announcing a 5 MB Content-Length (over the 1 MiB limit) got no
    answer until the client sent more than a megabyte; a client that then sent nothing held
    the request open. An announced size over the limit is refused at once."""
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    auth = org_a.h("organiser")["Authorization"]
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
        "Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    assert head.split(b"\r\n")[0].endswith(b"413 Request Entity Too Large"), head
