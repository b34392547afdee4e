"""List uploads under abuse (issue 12): stalled and oversize bodies, slow parses, huge records.

Real HTTP (aiohttp's test server on a TCP port, raw sockets where a client must misbehave) and
real Postgres; ``pg_stat_activity`` shows what a stalled client holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from syncd.app import create_app
from syncd.keys import POOL, UPLOADS
from syncd.settings import SyncdSettings
from tests.syncd.conftest import Org, create_event, push
from tests.syncd.gatekit import enrolled_gate, event_with_tickets, send

HEADER = "external_ref,holder_name,email,category,zones,valid_from,valid_until\n"
NDJSON = "application/x-ndjson"
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
async def make_client(settings: SyncdSettings) -> AsyncIterator[Callable[..., TestClient]]:
    """``make_client(**overrides)``: a started app on a real port with changed settings."""
    started: list[TestClient] = []

    async def make(**overrides: object) -> TestClient:
        client = TestClient(TestServer(create_app(settings.model_copy(update=overrides))))
        await client.start_server()
        started.append(client)
        return client

    yield make  # type: ignore[misc]
    for client in started:
        await client.close()


async def raw_upload(
    client: TestClient, org: Org, event_id: int, body: bytes, length: int | None = None
) -> Conn:
    """Send the request head and ``body`` (announcing ``length`` bytes) and keep the socket."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    head = (
        f"POST /api/v1/events/{event_id}/list HTTP/1.1\r\nHost: syncd\r\n"
        f"Authorization: Bearer {org.tokens['organiser']}\r\nContent-Type: text/csv\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    return reader, writer


async def answer(conn: Conn, seconds: float = 30) -> tuple[int, dict[str, str], dict]:
    """Status, headers and JSON body of the response on ``conn``; then hangs up."""
    try:
        async with asyncio.timeout(seconds):
            head = (await conn[0].readuntil(b"\r\n\r\n")).decode()
            lines = head.strip().split("\r\n")
            headers = dict(line.split(": ", 1) for line in lines[1:])
            body = await conn[0].readexactly(int(headers["Content-Length"]))
    finally:
        await hang_up(conn)
    return int(lines[0].split()[1]), headers, json.loads(body)


async def hang_up(conn: Conn) -> None:
    conn[1].close()
    with contextlib.suppress(ConnectionError):
        await conn[1].wait_closed()


async def until(check: Callable[[], bool], seconds: float = 20) -> None:
    """Poll ``check`` (state the server changes on its own schedule) for up to ``seconds``."""
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not reached within {seconds} s")


async def idle_in_transaction(db_url: str) -> int:
    conn = await asyncpg.connect(db_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state LIKE 'idle in transaction%'"
            )
        )
    finally:
        await conn.close()


async def test_stalled_uploads_hold_nothing_other_tenants_need(
    make_client: Callable, org_a: Org, org_b: Org, db_url: str
) -> None:
    """Issue 12.1: 12 uploads that send the head and part of a body, then stop, held a pool
    connection and a transaction each: another org's gate push timed out, /readyz said 503."""
    client = await make_client(uploads_per_org=20, pool_max=3)
    slots = client.server.app[UPLOADS]
    eid_b, ids = await event_with_tickets(client, org_b)
    gate = await enrolled_gate(client, org_b, eid_b, "North")
    eid_a = (await create_event(client, org_a))["event_id"]
    stalled = [
        await raw_upload(client, org_a, eid_a, (HEADER + "S1,,,,,,\n").encode(), 10_000)
        for _ in range(12)
    ]
    await until(lambda: slots.busy(org_a.org_id) == 12)
    status, body = await asyncio.wait_for(send(client, gate, [gate.checkin(ids[0])]), 10)
    assert status == 200, body
    assert (await asyncio.wait_for(client.get("/readyz"), 10)).status == 200
    status, body = await asyncio.wait_for(push(client, org_b, eid_b, HEADER + "N1,,,,,,\n"), 10)
    assert status == 200 and body["added"] == 1
    assert await idle_in_transaction(db_url) == 0
    for conn in stalled:
        await hang_up(conn)
    await until(lambda: slots.busy(org_a.org_id) == 0)


async def test_upload_deadline_is_408_and_releases_everything(
    make_client: Callable, org_a: Org, db_url: str
) -> None:
    """Issue 12.1: a body that stops arriving gets 408 upload_timeout after SYNCD_UPLOAD_TIMEOUT;
    the slot is free again and no session is left idle in a transaction."""
    client = await make_client(upload_timeout=1.0, uploads_per_org=1)
    eid = (await create_event(client, org_a))["event_id"]
    conn = await raw_upload(client, org_a, eid, HEADER.encode(), 5_000)
    status, _, body = await answer(conn)
    assert (status, body["error"]) == (408, "upload_timeout"), body
    assert client.server.app[UPLOADS].busy(org_a.org_id) == 0
    assert await idle_in_transaction(db_url) == 0
    status, body = await push(client, org_a, eid, HEADER + "T1,,,,,,\n")
    assert status == 200 and body["added"] == 1


async def test_announced_oversize_body_is_413_before_reading(
    make_client: Callable, org_a: Org
) -> None:
    """Issue 12.1: a Content-Length over SYNCD_MAX_LIST_BYTES is answered at once (nothing of
    the body is sent here, so only an answer that reads nothing can arrive)."""
    client = await make_client(max_list_bytes=1 << 20)
    eid = (await create_event(client, org_a))["event_id"]
    conn = await raw_upload(client, org_a, eid, b"", 10**12)
    status, headers, body = await answer(conn, 10)
    assert (status, body["error"]) == (413, "too_large")
    assert headers.get("Connection") == "close"


async def test_chunked_body_over_the_limit_is_413(make_client: Callable, org_a: Org) -> None:
    """A body without Content-Length is counted as it arrives and cut off past the limit."""
    client = await make_client(max_list_bytes=4096)
    eid = (await create_event(client, org_a))["event_id"]

    async def chunks() -> AsyncIterator[bytes]:
        yield HEADER.encode()
        for _ in range(100):
            yield b"x,,,,,,\n" * 20

    resp = await client.post(
        f"/api/v1/events/{eid}/list",
        data=chunks(),
        headers={**org_a.h("organiser"), "Content-Type": "text/csv"},
    )
    assert resp.status == 413 and (await resp.json())["error"] == "too_large"


async def test_concurrent_uploads_per_org_are_limited(
    make_client: Callable, org_a: Org, org_b: Org
) -> None:
    """Issue 12.1: past SYNCD_UPLOADS_PER_ORG uploads in progress an org gets 429 with
    Retry-After; other orgs are not affected; a client that hangs up frees its slot."""
    client = await make_client(uploads_per_org=2)
    slots = client.server.app[UPLOADS]
    eid_a = (await create_event(client, org_a))["event_id"]
    eid_b = (await create_event(client, org_b))["event_id"]
    held = [await raw_upload(client, org_a, eid_a, HEADER.encode(), 9_000) for _ in range(2)]
    await until(lambda: slots.busy(org_a.org_id) == 2)
    resp = await client.post(
        f"/api/v1/events/{eid_a}/list",
        data=HEADER + "L1,,,,,,\n",
        headers={**org_a.h("organiser"), "Content-Type": "text/csv"},
    )
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
    assert (await resp.json())["error"] == "too_many_uploads"
    status, _ = await push(client, org_b, eid_b, HEADER + "L1,,,,,,\n")
    assert status == 200
    for conn in held:
        await hang_up(conn)
    await until(lambda: slots.busy(org_a.org_id) == 0)
    status, _ = await push(client, org_a, eid_a, HEADER + "L1,,,,,,\n")
    assert status == 200


async def test_healthz_answers_while_a_list_is_parsed(
    make_client: Callable, org_a: Org, tmp_path: Path
) -> None:
    """Issue 12.2: parsing froze the event loop (/healthz stalled 12 s). While the parser works
    (its output file exists and the spooled body is not yet deleted) /healthz keeps answering."""
    client = await make_client(list_spool_dir=tmp_path)
    eid = (await create_event(client, org_a))["event_id"]
    body = (HEADER + "".join(f"P{i},,,,Moon,,\n" for i in range(300_000))).encode()
    conn = await raw_upload(client, org_a, eid, body)
    result = asyncio.create_task(answer(conn, 120))

    def parsing() -> bool:
        return any(tmp_path.glob("*/copy.csv")) and any(tmp_path.glob("*/body"))

    during = 0
    while not result.done():
        before = parsing()
        resp = await client.get("/healthz")
        assert resp.status == 200
        during += before and parsing()
    status, _, problems = await result
    assert status == 422 and problems["problem_count"] == 300_000
    assert during >= 3, "no /healthz answer came while the list was parsed"


async def test_unclosed_quote_is_one_422_naming_row_and_column(
    client: TestClient, org_a: Org
) -> None:
    """Issue 12.2: a 440 kB CSV with one unbalanced quote made the record splitter quadratic.
    Now the open field runs into the record limit: one 422 naming where the quote opened."""
    eid = (await create_event(client, org_a))["event_id"]
    rows = [f"Q{i},Holder {i},,,,,\n" for i in range(10_000)]
    rows[9] = 'Q9,"Holder 9,,,,,\n'
    status, body = await push(client, org_a, eid, HEADER + "".join(rows))
    assert status == 422 and body["error"] == "invalid_list", body
    assert body["problems"] == [
        {
            "row": 10,
            "column": "holder_name",
            "problem": "longer than 65536 characters (a quote left open?)",
        }
    ]


async def test_huge_fields_and_lines_are_422_naming_row_and_column(
    make_client: Callable, org_a: Org
) -> None:
    """Issue 12.3/12.7: a field over 131,072 characters was a 500 (csv's field_size_limit); a
    50 MB single line took syncd to 683 MB. Both are a 422 that names the row and column."""
    client = await make_client(list_max_record_chars=400_000)
    eid = (await create_event(client, org_a))["event_id"]
    status, body = await push(client, org_a, eid, HEADER + f"H1,{'x' * 200_000},,,,,\n")
    assert status == 422, body
    assert body["problems"] == [
        {"row": 1, "column": "holder_name", "problem": "longer than 200 characters"}
    ]
    status, body = await push(client, org_a, eid, HEADER + f"H1,,,{'y' * 500_000},,,\n")
    assert status == 422 and body["problems"][0]["row"] == 1
    assert body["problems"][0]["column"] == "category"
    resp = await client.post(
        f"/api/v1/events/{eid}/list",
        data=io.BytesIO(b"z" * (5 << 20)),
        headers={**org_a.h("organiser"), "Content-Type": "text/csv"},
    )
    status, body = resp.status, await resp.json()
    assert status == 422 and body["problems"][0]["row"] == 0
    assert body["problems"][0]["column"] == "(header)"


async def test_json_nested_deep_and_lone_surrogates_are_named_errors(
    client: TestClient, org_a: Org
) -> None:
    """Issue 12.3/12.7: deep nesting in a JSON list push was a 500 (RecursionError); so was
    ``\\ud800`` in a value (Postgres cannot store it)."""
    eid = (await create_event(client, org_a))["event_id"]
    deep = "[" + "[" * 5_000 + "]" * 5_000 + "]"
    for text, media in ((deep, "application/json"), (deep[1:-1], "application/x-ndjson")):
        status, body = await push(client, org_a, eid, text, media)
        assert status == 400 and body["error"] == "bad_json", body
        assert "nested too deep" in body["message"]
    rows = '[{"external_ref": "ok"}, {"external_ref": "E\\ud800"}, {"\\udc00": 1}]'
    status, body = await push(client, org_a, eid, rows, "application/json")
    assert status == 422, body
    assert [(p["row"], p["column"]) for p in body["problems"]] == [
        (2, "external_ref"),
        (3, "\\udc00"),
        (3, "external_ref"),
    ]


async def test_row_limit_is_413(make_client: Callable, org_a: Org) -> None:
    client = await make_client(list_max_rows=10)
    eid = (await create_event(client, org_a))["event_id"]
    status, body = await push(
        client, org_a, eid, HEADER + "".join(f"M{i},,,,,,\n" for i in range(11))
    )
    assert status == 413 and body["error"] == "too_many_rows"


async def test_header_only_complete_push_is_refused(client: TestClient, org_a: Org) -> None:
    """Issue 12.9: a header-only list with complete=1 revoked every ticket (an empty file was
    already refused). A list without rows is refused the same way, in every format."""
    eid = (await create_event(client, org_a))["event_id"]
    status, _ = await push(client, org_a, eid, HEADER + "K1,,,,,,\nK2,,,,,,\n")
    assert status == 200
    for text, media in (
        (HEADER, "text/csv"),
        ("[]", "application/json"),
        ("\n", "application/x-ndjson"),
    ):
        status, body = await push(client, org_a, eid, text, media, complete="1")
        assert status == 422 and body["error"] == "invalid_list", body
        assert body["problems"][0]["column"] == "(rows)"
    resp = await client.get(f"/api/v1/events/{eid}/tickets", headers=org_a.h())
    assert {t["status"] for t in (await resp.json())["tickets"]} == {"valid"}


async def test_pool_sessions_carry_the_timeouts(make_client: Callable) -> None:
    """Issue 12.1: every pooled session has a statement and an idle-in-transaction timeout."""
    client = await make_client(db_statement_timeout=7, db_idle_in_transaction_timeout=1)
    pool = client.server.app[POOL]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SHOW statement_timeout") == "7s"
        assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == "1s"
        await conn.execute("BEGIN")
        await asyncio.sleep(1.5)
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
            await conn.execute("SELECT 1")  # Postgres ended the idle transaction's session
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1  # the pool replaced it


async def test_long_json_rows_and_trailing_text_are_named_errors(
    client: TestClient, org_a: Org
) -> None:
    """A JSON element or NDJSON line past the record limit is a 422 naming its row; text after
    the array is a 400, never a wait for more input."""
    eid = (await create_event(client, org_a))["event_id"]
    long = json.dumps({"external_ref": "L2", "holder": "h" * 100_000})
    rows = '[{"external_ref": "L1"}, ' + long + "]"
    status, body = await push(client, org_a, eid, rows, "application/json")
    assert status == 422 and body["problems"][0]["row"] == 2, body
    status, body = await push(client, org_a, eid, '{"external_ref": "L1"}\n' + long, NDJSON)
    assert status == 422 and body["problems"][0]["row"] == 2, body
    status, body = await push(client, org_a, eid, '[{"external_ref": "L1"}] []', "application/json")
    assert status == 400 and body["error"] == "bad_json"


async def test_crlf_and_bom_lists_still_parse(client: TestClient, org_a: Org) -> None:
    """The bounded line reader keeps Windows line ends, quoted CRLFs and a UTF-8 BOM working."""
    eid = (await create_event(client, org_a))["event_id"]
    text = '\ufeffexternal_ref,holder_name\r\nW1,"two\r\nlines"\r\nW2,Ann\r\n'
    status, body = await push(client, org_a, eid, text.encode())
    assert status == 200 and body["added"] == 2, body
    resp = await client.get(
        f"/api/v1/events/{eid}/tickets", params={"external_ref": "W1"}, headers=org_a.h()
    )
    assert (await resp.json())["tickets"][0]["holder_name"] == "two\r\nlines"
