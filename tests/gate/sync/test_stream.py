"""The gate follows the feed as syncd pushes it (issue 22): the SSE reader, and a real gate
worker on a real ``syncd serve``: another gate's admission arrives within a second over the one
open stream, a revocation stops the worker at once, and long-polling still works when off."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from gate import commands
from gate.settings import GateSettings
from gate.store.db import Store
from gate.sync.client import SyncClient
from gate.sync.sse import SseError, SseParser
from gate.sync.worker import SyncWorker, WorkerConfig
from tests.conftest import Rabbit
from tests.syncd.conftest import db_url, make_org  # noqa: F401  (db_url: the fixture)
from tests.syncd.servekit import Served, running_syncd

LIST = "external_ref,holder_name\nA,Ann\nB,Bob\nC,Cem\n"


def test_the_parser_takes_any_chunking_comments_and_crlf() -> None:
    text = (
        b': hello\n\nevent: page\ndata: {"a":\ndata: 1}\n\n'
        b": keepalive\r\n\r\nevent: revoked\ndata: {}\n\n"
    )
    for size in (1, 2, 3, 7, len(text)):
        parser = SseParser()
        events = []
        for i in range(0, len(text), size):
            events += list(parser.feed(text[i : i + size]))
        assert events == [("", ""), ("page", '{"a":\n1}'), ("", ""), ("revoked", "{}")], size


@pytest.mark.parametrize(
    "data",
    [b"data: " + b"x" * 200, b"x" * 300, b"data: \xff\xfe\n\n"],
    ids=["event", "line", "utf8"],
)
def test_the_parser_refuses_oversized_or_broken_input(data: bytes) -> None:
    with pytest.raises(SseError):
        list(SseParser(max_event=100).feed(data))  # the line of 300: never ended


@pytest.fixture
def server(db_url: str, rabbit: Rabbit) -> Iterator[Served]:  # noqa: F811
    with running_syncd(db_url, rabbit) as running:
        yield running


@pytest.fixture
async def api(server: Served, db_url: str) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    org = await make_org(db_url, "Stream")
    base = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=base, headers=org.h("organiser"), timeout=30) as c:
        yield c


async def event_with_list(api: httpx.AsyncClient) -> tuple[int, list[int]]:
    eid = (await api.post("/api/v1/events", json={"name": "Streamed"})).json()["event_id"]
    resp = await api.post(
        f"/api/v1/events/{eid}/list", content=LIST, headers={"Content-Type": "text/csv"}
    )
    assert resp.status_code == 200, resp.text
    tickets = (await api.get(f"/api/v1/events/{eid}/tickets")).json()["tickets"]
    return eid, sorted(t["ticket_id"] for t in tickets)


async def other_gate(api: httpx.AsyncClient, eid: int) -> dict[str, str]:
    """A second gate's credential header (enrolled over the public API)."""
    code = (await api.post(f"/api/v1/events/{eid}/gates", json={"name": "Other"})).json()["code"]
    enrolled = await api.post("/api/v1/gate/enroll", json={"code": code}, headers={})
    return {"Authorization": f"Bearer {enrolled.json()['credential']}"}


@asynccontextmanager
async def running_gate(
    api: httpx.AsyncClient, eid: int, data_dir: Path, *, stream: bool = True
) -> AsyncIterator[tuple[SyncWorker, Store, int]]:
    created = (await api.post(f"/api/v1/events/{eid}/gates", json={"name": "Door"})).json()
    settings = GateSettings(gate_name="Door", data_dir=data_dir)
    base = str(api.base_url)
    await commands.enroll(settings, base, created["code"], "stream-test")
    store = await Store.open(settings.db_path)
    client = SyncClient(base, settings.credential_path.read_text().strip())
    config = replace(WorkerConfig.from_settings(settings), stream=stream, long_poll=5.0)
    worker = SyncWorker(store, client, config)
    await worker.start()
    try:
        yield worker, store, created["gate_id"]
    finally:
        await worker.stop()
        await store.close()


async def until(check, seconds: float = 5.0) -> float:  # type: ignore[no-untyped-def]
    """Seconds until ``check()`` (async) is true; fails after ``seconds``."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < seconds, "not within the time"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def inside(store: Store, eid: int, ticket_id: int) -> bool:
    state = (await store.lookup(eid, ticket_id)).state
    return state is not None and state.inside


def checkin(ticket_id: int, seq: int) -> dict[str, object]:
    return {
        "seq": seq,
        "scan_id": uuid.uuid4().hex,
        "ticket_id": ticket_id,
        "direction": "in",
        "outcome": "admit",
        "via": "scanner",
        "scanned_at": time.time(),
    }


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "long-poll"])
async def test_another_gates_admission_arrives_within_a_second(
    api: httpx.AsyncClient, tmp_path: Path, stream: bool
) -> None:
    eid, ids = await event_with_list(api)
    other = await other_gate(api, eid)
    async with running_gate(api, eid, tmp_path, stream=stream) as (worker, store, _):
        await until(lambda: asyncio.sleep(0, worker.status.online))
        await asyncio.sleep(0.3)  # the worker is following (streaming or long-polling)
        for seq, ticket_id in enumerate(ids, start=1):
            body = {"sent_at": time.time(), "checkins": [checkin(ticket_id, seq)]}
            resp = await api.post("/api/v1/gate/checkins", json=body, headers=other)
            assert resp.status_code == 200, resp.text
            took = await until(lambda t=ticket_id: inside(store, eid, t), 2.0)
            assert took < 1.0, took
        assert worker._streaming is stream


async def test_a_revoked_gate_stops_following_at_once(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    eid, _ = await event_with_list(api)
    async with running_gate(api, eid, tmp_path) as (worker, _, gate_id):
        await until(lambda: asyncio.sleep(0, worker.status.online))
        await asyncio.sleep(0.3)
        resp = await api.delete(f"/api/v1/events/{eid}/gates/{gate_id}")
        assert resp.status_code == 200
        took = await until(lambda: asyncio.sleep(0, worker.status.state == "revoked"), 3.0)
        assert took < 1.0, took
