"""Tenancy and auth, endpoint by endpoint: every registered operation that needs a token is
called with no token, a wrong token, another organisation's admin token and (for writes) a
viewer token, and must refuse each; the owner with the right role gets through."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from syncd.app import OPERATIONS
from syncd.web.operations import ROLES, Operation
from tests.syncd.conftest import Org, create_event, push

BODIES: dict[str, Any] = {
    "/api/v1/events": {"json": {"name": "Other"}},
    "/api/v1/events/{event_id}": {"json": {"venue": "Moved"}},
    "/api/v1/tokens": {"json": {"name": "t", "role": "viewer"}},
    "/api/v1/events/{event_id}/gates": {"json": {"name": "North"}},
    "/api/v1/events/{event_id}/list": {
        "data": "external_ref\nX1\n",
        "headers": {"Content-Type": "text/csv"},
    },
}


async def _fixture(client: TestClient, org: Org, db_url: str) -> dict[str, str]:
    event = await create_event(client, org)
    eid = event["event_id"]
    await push(client, org, eid, "external_ref,holder_name\nA1,Ann\n")
    resp = await client.get(f"/api/v1/events/{eid}/tickets", headers=org.h())
    ticket_id = (await resp.json())["tickets"][0]["ticket_id"]
    resp = await client.get(f"/api/v1/events/{eid}/keys", headers=org.h())
    kid = (await resp.json())["keys"][0]["kid"]
    conn = await asyncpg.connect(db_url)
    token_id = await conn.fetchval(
        "SELECT max(token_id) FROM api_tokens WHERE org_id = $1", org.org_id
    )
    await conn.close()
    resp = await client.post(
        f"/api/v1/events/{eid}/gates", json={"name": "G"}, headers=org.h("organiser")
    )
    gate_id = (await resp.json())["gate_id"]
    return {
        "gate_id": str(gate_id),
        "event_id": str(eid),
        "ticket_id": str(ticket_id),
        "kid": kid,
        "token_id": str(token_id),
    }


def _url(o: Operation, ids: dict[str, str]) -> str:
    return re.sub(r"{(\w+)}", lambda m: ids[m.group(1)], o.path)


async def _call(
    client: TestClient, o: Operation, ids: dict[str, str], headers: dict[str, str]
) -> tuple[int, bytes]:
    extra = BODIES.get(o.path, {}) if o.method in ("POST", "PATCH") else {}
    resp = await client.request(
        o.method, _url(o, ids), **{**extra, "headers": {**extra.get("headers", {}), **headers}}
    )
    if o.produces == "text/event-stream" and resp.status == 200:  # endless: its first event
        first = await resp.content.readuntil(b"\n\n")
        resp.close()
        return resp.status, first
    return resp.status, await resp.read()


def _guarded() -> list[Operation]:
    """Operations for API tokens (gate endpoints: tests/syncd/api/test_gate_sync.py)."""
    return [o for o in OPERATIONS if o.role is not None and "token" in o.principals]


async def test_every_endpoint_refuses_missing_wrong_and_foreign_tokens(
    client: TestClient, org_a: Org, org_b: Org, db_url: str
) -> None:
    ids = await _fixture(client, org_a, db_url)
    await _fixture(client, org_b, db_url)
    assert len(_guarded()) >= 18
    for o in _guarded():
        for headers in (
            {},
            {"Authorization": "Bearer tsr_" + "x" * 43},
            {"Authorization": "Basic dXNlcjpwdw=="},
            {"Authorization": "Bearer " + org_a.tokens["admin"][:-1]},
        ):
            status, body = await _call(client, o, ids, headers)
            assert status == 401, (o.method, o.path, headers, body)
            assert b'"unauthorized"' in body
        status, body = await _call(client, o, ids, org_b.h("admin"))
        if "{" in o.path:
            assert status == 404, (o.method, o.path, status, body)
        else:
            assert status in (200, 201), (o.method, o.path, status)
            assert org_a.name.encode() not in body and b'"Ann"' not in body
            assert f'"event_id": {ids["event_id"]},'.encode() not in body, (o.path, body)


async def test_roles_below_the_requirement_are_refused(
    client: TestClient, org_a: Org, db_url: str
) -> None:
    ids = await _fixture(client, org_a, db_url)
    checked = 0
    for o in _guarded():
        for role in ROLES[: ROLES.index(o.role or "viewer")]:
            status, _ = await _call(client, o, ids, org_a.h(role))
            assert status == 403, (o.method, o.path, role, status)
            checked += 1
    assert checked >= 15


async def test_owner_with_the_role_gets_through(
    client: TestClient, org_a: Org, db_url: str
) -> None:
    ids = await _fixture(client, org_a, db_url)
    for o in sorted(_guarded(), key=lambda o: o.method == "DELETE"):
        status, body = await _call(client, o, ids, org_a.h(o.role or "viewer"))
        assert status < 400 or status == 409, (o.method, o.path, status, body)


async def test_org_b_sees_none_of_org_a_in_lists(
    client: TestClient, org_a: Org, org_b: Org, db_url: str
) -> None:
    await _fixture(client, org_a, db_url)
    resp = await client.get("/api/v1/events", headers=org_b.h("viewer"))
    assert (await resp.json())["events"] == []
    resp = await client.get("/api/v1/tokens", headers=org_b.h("admin"))
    assert len((await resp.json())["tokens"]) == 3
    resp = await client.get("/api/v1/whoami", headers=org_b.h("viewer"))
    assert (await resp.json())["org"] == "Org B"
