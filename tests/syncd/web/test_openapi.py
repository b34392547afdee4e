"""/openapi.json is true: every route is documented, every documented route exists, and every
documented operation answers malformed input with a 4xx JSON error, never a 500."""

from __future__ import annotations

import io
import re
from typing import Any

from aiohttp.test_utils import TestClient

from syncd.app import openapi_document
from tests.syncd.conftest import Org, create_event, push

BAD_IDS = ["abc", "-1", "0", "1.5", "99999999999999999999999", "%00", "\uff11"]
BAD_BODIES: list[Any] = [
    b"",
    b"{",
    b"[]",
    b'"text"',
    b"null",
    b"\xff\xfe",
    b"1e999",
    b'{"name": 1}',
    b'{"name": ["x"], "zones": "Main"}',
    b'{"name": "x", "zones": [1, 2]}',
    b'{"role": "root", "name": "x"}',
    b'{"name": "x", "starts_at": "yesterday"}',
    b'{"name": "a\\u0000b"}',
    b'{"name": "x", "zones": ["\\u0000"]}',
]


async def test_document_matches_the_router(client: TestClient) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.") and doc == openapi_document()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    routed = {
        (r.method, r.resource.canonical)
        for r in client.app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }
    assert documented == routed
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and op["responses"], (method, path)
            names = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert names == set(re.findall(r"{(\w+)}", path))
            if "requestBody" in op:
                for media in op["requestBody"]["content"].values():
                    ref = media.get("schema", {}).get("$ref")
                    if ref:
                        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]


def _paths(doc: dict, ids: dict[str, str]) -> list[tuple[str, str, str]]:
    out = []
    for path, ops in doc["paths"].items():
        for method in ops:
            out.append((method.upper(), path, re.sub(r"{(\w+)}", lambda m: ids[m.group(1)], path)))
    return out


async def _expect_4xx(client: TestClient, method: str, url: str, **kw: Any) -> None:
    resp = await client.request(method, url, **kw)
    assert 400 <= resp.status < 500, (method, url, kw.get("data"), resp.status, await resp.text())
    assert resp.content_type == "application/json", (method, url)
    body = await resp.json()
    assert body["error"] and body["message"] and body["request_id"]


async def test_malformed_input_never_500(client: TestClient, org_a: Org) -> None:
    event = await create_event(client, org_a)
    eid = event["event_id"]
    await push(client, org_a, eid, "external_ref\nA\n")
    resp = await client.get(f"/api/v1/events/{eid}/tickets", headers=org_a.h())
    tid = (await resp.json())["tickets"][0]["ticket_id"]
    doc = await (await client.get("/openapi.json")).json()
    ids = {
        "event_id": str(eid),
        "ticket_id": str(tid),
        "kid": "00000000",
        "token_id": "1",
        "gate_id": "1",
        "name": "wallet.js",
    }
    admin = org_a.h("admin")
    for method, path, url in _paths(doc, ids):
        op = doc["paths"][path][method.lower()]
        for name in re.findall(r"{(\w+)}", path):
            for bad in BAD_IDS:
                await _expect_4xx(client, method, url.replace(ids[name], bad, 1), headers=admin)
        for param in op["parameters"]:
            if param["in"] == "query":
                for bad in ("x", "-5", "99999999999999999999", "\x00", "y" * 5000):
                    resp = await client.request(
                        method, url, params={param["name"]: bad}, headers=admin
                    )
                    assert resp.status < 500, (method, path, param["name"], bad)
        if method in ("POST", "PATCH") and "requestBody" in op:
            media = next(iter(op["requestBody"]["content"]))
            for bad in BAD_BODIES:
                await _expect_4xx(
                    client, method, url, data=bad, headers={**admin, "Content-Type": media}
                )
            await _expect_4xx(
                client,
                method,
                url,
                data=b"name=x",
                headers={**admin, "Content-Type": "application/x-www-form-urlencoded"},
            )


async def test_oversized_json_body_is_413(client: TestClient, org_a: Org) -> None:
    big = b'{"name": "' + b"x" * (2 << 20) + b'"}'
    resp = await client.post(
        "/api/v1/events",
        data=io.BytesIO(big),
        headers={**org_a.h("organiser"), "Content-Type": "application/json"},
    )
    assert resp.status == 413 and (await resp.json())["error"]


async def test_unknown_route_and_method_are_json(client: TestClient, org_a: Org) -> None:
    await _expect_4xx(client, "GET", "/api/v1/nothing", headers=org_a.h())
    await _expect_4xx(client, "DELETE", "/api/v1/events", headers=org_a.h())
    await _expect_4xx(client, "PUT", "/healthz")


def test_document_states_statuses_media_types_and_auth() -> None:
    """Every operation lists what it can answer; gate operations take the gate scheme."""
    doc = openapi_document()
    assert set(doc["components"]["securitySchemes"]) == {"token", "gate"}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            assert {"400", "429"} <= codes, (method, path)
            if "security" in op:
                assert {"401", "403", "503"} <= codes, (method, path)
                kinds = {k for alt in op["security"] for k in alt}
                assert kinds == ({"gate"} if path.startswith("/api/v1/gate/") else {"token"})
            if "requestBody" in op:
                assert {"413", "415", "422"} <= codes, (method, path)
            for code in ("429", "503"):
                if code in codes:
                    assert op["responses"][code]["headers"]["Retry-After"]["required"]
    qr = doc["paths"]["/api/v1/events/{event_id}/tickets/{ticket_id}/qr"]["get"]
    assert set(qr["responses"]["200"]["content"]) == {"text/plain", "image/png", "image/svg+xml"}
    enroll = doc["paths"]["/api/v1/gate/enroll"]["post"]
    assert "security" not in enroll and {"401", "503"} <= set(enroll["responses"])
    assert "409" in doc["paths"]["/api/v1/events/{event_id}"]["patch"]["responses"]
    upload = doc["paths"]["/api/v1/events/{event_id}/list"]["post"]["responses"]
    assert {"408", "413", "415", "422", "429", "503"} <= set(upload), "the upload's own limits"
