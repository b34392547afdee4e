"""Issue 12.10: security headers on every answer, failed attempts limited per client address
(429 + Retry-After), and a revoked gate never gets a new enrolment code."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from syncd.app import create_app
from syncd.settings import SyncdSettings
from syncd.web.middleware import PAGE_CSP
from syncd.web.throttle import ClientAddresses, FailureLimiter, parse_networks
from tests.syncd.conftest import Org, create_event, push
from tests.syncd.gatekit import create_gate

BAD = {"Authorization": "Bearer tsr_" + "x" * 43}


def _secure(resp) -> None:  # type: ignore[no-untyped-def]
    assert resp.headers["X-Content-Type-Options"] == "nosniff", resp.url
    assert resp.headers["Cache-Control"] == "no-store", resp.url
    assert resp.headers["Server"] == "syncd", resp.url  # no aiohttp/Python version banner


async def test_every_kind_of_answer_has_the_security_headers(
    client: TestClient, org_a: Org
) -> None:
    event = await create_event(client, org_a)
    eid = event["event_id"]
    await push(client, org_a, eid, "external_ref,holder_name\nA,Ann\n")
    calls = [
        ("GET", "/healthz", {}),
        ("GET", "/openapi.json", {}),
        ("GET", "/metrics", {}),
        ("GET", "/api/v1/events", org_a.h()),
        ("GET", "/api/v1/events", BAD),  # 401
        ("GET", "/api/v1/nothing", {}),  # 404 unmatched
        ("DELETE", "/api/v1/events", org_a.h()),  # 405
        ("POST", "/api/v1/tokens", org_a.h("admin")),  # 415
        ("GET", f"/api/v1/events/{eid}/tickets.csv", org_a.h()),  # streamed
        ("GET", f"/api/v1/events/{eid}/sheet.html", org_a.h("organiser")),
    ]
    for method, url, headers in calls:
        resp = await client.request(method, url, headers=headers)
        assert resp.status < 500, (url, resp.status)
        _secure(resp)
    resp = await client.get(f"/api/v1/events/{eid}/sheet.html", headers=org_a.h("organiser"))
    assert resp.status == 200 and resp.headers["Content-Security-Policy"] == PAGE_CSP
    assert "script-src" not in PAGE_CSP and "default-src 'none'" in PAGE_CSP


async def test_answers_carrying_secrets_are_not_stored(client: TestClient, org_a: Org) -> None:
    """Scenario: a token, an enrolment code and a gate credential pass through a shared cache."""
    resp = await client.post(
        "/api/v1/tokens", json={"name": "t", "role": "viewer"}, headers=org_a.h()
    )
    assert resp.status == 201 and "token" in await resp.json()
    _secure(resp)
    event = await create_event(client, org_a)
    gate = await create_gate(client, org_a, event["event_id"], "North")
    resp = await client.post("/api/v1/gate/enroll", json={"code": gate["code"]})
    assert resp.status == 200 and (await resp.json())["credential"].startswith("tsg_")
    _secure(resp)


async def test_wrong_method_is_405_with_allow(client: TestClient, org_a: Org) -> None:
    resp = await client.put("/api/v1/events", headers=org_a.h())
    assert resp.status == 405 and (await resp.json())["error"] == "method_not_allowed"
    assert set(resp.headers["Allow"].split(",")) >= {"GET", "POST"}


def _limited(settings: SyncdSettings, **limits: object) -> TestServer:
    """An app behind a 'proxy' (the test client at 127.0.0.1) that names the client."""
    return TestServer(
        create_app(
            settings.model_copy(
                update={"trusted_proxies": "127.0.0.1/32", "auth_fail_burst": 5, **limits}
            )
        )
    )


async def test_failed_authentication_is_limited_per_client_address(
    settings: SyncdSettings, org_a: Org
) -> None:
    """Scenario: a scanner guesses tokens from one address; after the burst it gets 429 with
    Retry-After (even with a valid token: nothing is looked up), other addresses are unaffected."""
    async with TestClient(_limited(settings)) as client:
        attacker = {"X-Forwarded-For": "203.0.113.7"}
        for _ in range(5):
            resp = await client.get("/api/v1/whoami", headers={**BAD, **attacker})
            assert resp.status == 401
        resp = await client.get("/api/v1/whoami", headers={**org_a.h(), **attacker})
        body = await resp.json()
        assert resp.status == 429 and body["error"] == "too_many_failures"
        assert int(resp.headers["Retry-After"]) == body["retry_after"] >= 1
        _secure(resp)
        # A forged X-Forwarded-For entry left of the proxy's own cannot dodge the limit.
        forged = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
        assert (await client.get("/api/v1/whoami", headers={**BAD, **forged})).status == 429
        other = {"X-Forwarded-For": "203.0.113.8"}
        assert (await client.get("/api/v1/whoami", headers={**org_a.h(), **other})).status == 200


async def test_failed_enrolment_is_limited(settings: SyncdSettings) -> None:
    async with TestClient(_limited(settings, auth_fail_burst=3)) as client:
        headers = {"X-Forwarded-For": "2001:db8::1"}
        for _ in range(3):
            resp = await client.post(
                "/api/v1/gate/enroll", json={"code": "ABCD-EFGH-JKLM-NPQR"}, headers=headers
            )
            assert resp.status == 401
        # Same /64, another address: the same client.
        headers = {"X-Forwarded-For": "2001:db8::2"}
        resp = await client.post("/api/v1/gate/enroll", json={"code": "X"}, headers=headers)
        assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1


def test_limiter_refills_and_stays_bounded() -> None:
    now = [0.0]
    limiter = FailureLimiter(burst=2, per_minute=6, max_clients=100, clock=lambda: now[0])
    limiter.failed("a")
    assert limiter.retry_after("a") is None
    limiter.failed("a")
    assert limiter.retry_after("a") == 10  # one attempt back every 10 s
    now[0] = 9.5
    assert limiter.retry_after("a") == 1
    now[0] = 10.0
    assert limiter.retry_after("a") is None
    for i in range(10_000):
        limiter.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100  # a spray of addresses cannot grow it
    assert limiter.retry_after("a") is None  # forgotten = a full bucket


def test_client_address_rules() -> None:
    rules = ClientAddresses(parse_networks("10.0.0.0/8"), parse_networks("127.0.0.0/8,::1"))

    class R:
        def __init__(self, remote: str, xff: str = "") -> None:
            self.remote = remote
            self.headers = {"X-Forwarded-For": xff} if xff else {}

    assert rules.key(R("203.0.113.5", "1.2.3.4")) == "203.0.113.5"  # untrusted peer: XFF ignored
    assert rules.key(R("10.0.0.2", "1.2.3.4, 10.0.0.9")) == "1.2.3.4"  # proxies chained
    assert rules.key(R("10.0.0.2", "garbage")) == "10.0.0.2"
    assert rules.key(R("127.0.0.1")) is None and rules.key(R("::1")) is None
    assert rules.key(R("2001:db8:1:2:3::4")) == "2001:db8:1:2::/64"


async def test_revoked_gate_gets_no_new_code(client: TestClient, org_a: Org, db_url: str) -> None:
    """Scenario: 'new code' on a revoked gate answered 409 but had already stored a code hash."""
    event = await create_event(client, org_a)
    eid = event["event_id"]
    gate = await create_gate(client, org_a, eid, "North")
    url = f"/api/v1/events/{eid}/gates/{gate['gate_id']}"
    assert (await client.delete(url, headers=org_a.h("organiser"))).status == 200
    resp = await client.post(url + "/code", headers=org_a.h("organiser"))
    assert resp.status == 409 and (await resp.json())["error"] == "gate_revoked"
    conn = await asyncpg.connect(db_url)
    try:
        row = await conn.fetchrow("SELECT code_hash, code_expires_at FROM gates")
    finally:
        await conn.close()
    assert row["code_hash"] is None
    assert row["code_expires_at"].isoformat() == gate["code_expires_at"]  # untouched
    resp = await client.post(f"/api/v1/events/{eid}/gates/999/code", headers=org_a.h("organiser"))
    assert resp.status == 404


def test_proxy_limits_requests_per_address() -> None:
    text = (Path(__file__).parents[3] / "deploy" / "proxy" / "nginx.conf").read_text()
    assert "limit_req_zone $binary_remote_addr zone=syncd_api" in text
    assert "limit_req_status 429;" in text and "Retry-After" in text
    enroll = text.split("location = /api/v1/gate/enroll", 1)[1].split("}", 1)[0]
    assert "zone=syncd_enroll" in enroll and "zone=syncd_api" in enroll  # no inheritance
