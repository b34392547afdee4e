"""Issue 12.6: a malformed request never puts a secret into a log line or an error body.

aiohttp's HTTP parser refuses a header with a control character or a bare LF itself, before any
middleware, and used to quote the raw line (the whole ``Authorization: Bearer tsr_...``) in its
400 body and in an ERROR log line with a traceback. These tests talk raw bytes to a real
``syncd serve`` process and read its real stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
from collections.abc import Iterator

import pytest
from aiohttp.test_utils import TestClient

from syncd.web.logs import SecretFilter, redact
from tests.conftest import Rabbit
from tests.syncd.conftest import MASTER_KEY, Org
from tests.syncd.gatekit import enrolled_gate, event_with_tickets
from tests.syncd.servekit import Served, running_syncd

TOKEN = "tsr_" + "S3cretTokenText" * 3
CREDENTIAL = "tsg_" + "GateCredential" * 3
CODE = "ABCD-EFGH-JKLM-NPQR"
BAD_AUTH = {"Authorization": "Bearer tsr_" + "x" * 43}
MALFORMED = [
    b"Authorization: Bearer " + TOKEN.encode() + b"\x01x\r\n",  # control character
    b"Authorization: Bearer " + TOKEN.encode() + b"\nX-Next: y\r\n",  # bare LF
    b"Authorization: Bearer " + TOKEN.encode() + b"\rX-Next: y\r\n",  # bare CR
    b"Authorization: Bearer " + CREDENTIAL.encode() + b"\x7f\r\n",
    b"Authorization " + TOKEN.encode() + b"\r\n",  # no colon
    b"Authorization: Bearer " + TOKEN.encode() + b"x" * 9000 + b"\r\n",  # over-long line
    b"X-Code: " + CODE.encode() + b"\x00\r\n",
]


@pytest.fixture
def server(db_url: str, rabbit: Rabbit) -> Iterator[Served]:
    with running_syncd(db_url, rabbit, SYNCD_LOG_LEVEL="DEBUG") as running:
        yield running


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_malformed_headers_never_echo_or_log_the_token(
    server: Served,
) -> None:
    """Scenario: a scanner sends ``Authorization: Bearer <token>\\x01`` (and six other broken
    header lines); the 400 is JSON without the token and stderr never holds it."""
    port = server.port
    answers = []
    for header in MALFORMED:
        path = b"/api/v1/whoami?token=" + TOKEN.encode()
        answer = _raw(port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n")
        answers.append(answer)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400") or head.startswith(b"HTTP/1.0 400"), answer
        assert json.loads(body)["error"] == "bad_request", answer
        assert b"X-Content-Type-Options: nosniff" in head
        assert b"aiohttp" not in head and b"Python" not in head, head
    err = server.stop()
    for secret in (TOKEN, CREDENTIAL, CODE, CODE.replace("-", "")):
        assert all(secret.encode() not in a for a in answers), secret
        assert secret not in err, secret
    refused = [x for x in map(json.loads, err.splitlines()) if "malformed" in x["msg"]]
    assert len(refused) == len(MALFORMED), err
    assert "exc" not in refused[0] and refused[0]["level"] == "warning"


def test_request_path_with_a_token_is_redacted_in_the_access_line(
    server: Served,
) -> None:
    """Scenario: a careless client puts its token in the URL; the access log line hides it."""
    port = server.port
    answer = _raw(port, f"GET /{TOKEN} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 404") and TOKEN.encode() not in answer
    err = server.stop()
    assert TOKEN not in err and MASTER_KEY not in err
    assert any('"GET /[redacted] 404"' in line for line in err.splitlines()), err


def test_undecodable_body_is_400_and_no_error_line(server: Served) -> None:
    """Scenario: ``Content-Encoding: gzip`` over bytes that are not gzip answered 500 and logged
    two ERROR tracebacks (the handler's read, then aiohttp draining the body)."""
    for encoding in ("gzip", "deflate"):
        head = (
            f"POST /api/v1/gate/enroll HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Encoding: {encoding}\r\n"
            "Content-Length: 9\r\n\r\nnot-gzip!"
        )
        answer = _raw(server.port, head.encode())
        assert answer.startswith(b"HTTP/1.1 400"), answer
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "bad_body"
    lines = [json.loads(x) for x in server.stop().splitlines() if x.startswith("{")]
    assert not [x for x in lines if x["level"] == "error"], lines
    assert [x for x in lines if x["msg"].startswith("undecodable request body")]


async def test_a_request_id_shaped_like_a_secret_is_not_echoed(
    client: TestClient, org_a: Org
) -> None:
    """Scenario: a client pastes its token into X-Request-Id; the 401 body echoed it back."""
    for rid in (TOKEN, CREDENTIAL, CODE):
        resp = await client.get("/api/v1/whoami", headers={**BAD_AUTH, "X-Request-Id": rid})
        body = await resp.text()
        assert resp.status == 401 and rid not in body and rid not in resp.headers.values()
    resp = await client.get("/api/v1/whoami", headers={**org_a.h(), "X-Request-Id": "abc-1"})
    assert resp.headers["X-Request-Id"] == "abc-1"  # an ordinary id is kept


def test_secret_filter_scrubs_exceptions_and_arguments() -> None:
    """Scenario: some library logs an exception whose message quotes a credential."""
    try:
        raise ValueError(f"bad header {CREDENTIAL} and code {CODE.lower().upper()}")
    except ValueError:
        record = logging.LogRecord(
            "aiohttp.web", logging.ERROR, __file__, 1, "failed %s", (TOKEN,), sys.exc_info()
        )
    assert SecretFilter().filter(record)
    text = logging.Formatter().format(record)
    assert TOKEN not in text and CREDENTIAL not in text and CODE not in text
    assert "ValueError" in text and text.count("[redacted]") == 3
    assert redact("event 12 gate 3 request 4f1c") == "event 12 gate 3 request 4f1c"


async def test_malformed_header_to_an_in_process_app_is_json_without_the_token(
    client: TestClient, org_a: Org
) -> None:
    """Scenario: ``syncd serve`` answered a control character in Authorization with its own
    JSON 400, but the app run any other way (aiohttp's TestServer, ``run_app``) still sent
    aiohttp's text/plain 400 quoting the raw header line, bearer token included."""
    token = org_a.tokens["admin"].encode()
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(
        b"GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + token
        + b"\x01\r\n\r\n"
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 400 " in head.split(b"\r\n")[0], answer
    assert b"application/json" in head and b"nosniff" in head
    assert json.loads(body)["error"] == "bad_request"
    assert token not in answer and org_a.tokens["admin"][4:12].encode() not in answer


async def test_streamed_answers_carry_the_request_id(client: TestClient, org_a: Org) -> None:
    """Scenario: the CSV export, the bundle and a gate's snapshot are prepared by their
    handlers, before ``observe`` adds X-Request-Id; they went out without it, so a client
    could not name the request when it reported a cut-off download."""
    eid, _ = await event_with_tickets(client, org_a, 2)
    gate = await enrolled_gate(client, org_a, eid, "g1")
    calls = [
        (f"/api/v1/events/{eid}/export.csv", org_a.h()),
        (f"/api/v1/events/{eid}/bundle", org_a.h()),
        ("/api/v1/gate/snapshot", gate.h()),
    ]
    for path, headers in calls:
        resp = await client.get(path, headers={**headers, "X-Request-Id": "dl-42"})
        await resp.read()
        assert resp.status == 200 and resp.headers.get("X-Request-Id") == "dl-42", path
        resp = await client.get(path, headers=headers)
        await resp.read()
        assert len(resp.headers.get("X-Request-Id", "")) == 32, path
