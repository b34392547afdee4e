"""The gate follows the feed as syncd pushes it (issue 22): the SSE reader, and a real gate
worker on a real ``syncd serve``: another gate's admission arrives within a second over the one
open stream, a revocation stops the worker at once, and long-polling still works when off."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from gate.store.db import Store
from gate.sync.sse import SseError, SseParser
from gate.sync.worker import SyncWorker, WorkerConfig
from tests.support.live_syncd import (  # noqa: F401  (the fixtures)
    default_server,
    enrolled_gate,
    event_with_list,
    new_organiser_api,
    until,
)
from tests.syncd.conftest import db_url  # noqa: F401  (the fixture)

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


async def event_with_tickets(api: httpx.AsyncClient) -> tuple[int, list[int]]:
    eid, tickets = await event_with_list(api, LIST, name="Streamed")
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
    async with enrolled_gate(api, eid, data_dir) as gate:
        config = replace(WorkerConfig.from_settings(gate.settings), stream=stream, long_poll=5.0)
        worker = SyncWorker(gate.store, gate.client(), config)
        await worker.start()
        try:
            yield worker, gate.store, gate.gate_id
        finally:
            await worker.stop()


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
    eid, ids = await event_with_tickets(api)
    other = await other_gate(api, eid)
    async with running_gate(api, eid, tmp_path, stream=stream) as (worker, store, _):
        await until(lambda: asyncio.sleep(0, worker.status.online))
        await asyncio.sleep(0.3)  # the worker is following (streaming or long-polling)
        for seq, ticket_id in enumerate(ids, start=1):
            body = {"sent_at": time.time(), "checkins": [checkin(ticket_id, seq)]}
            resp = await api.post("/api/v1/gate/checkins", json=body, headers=other)
            assert resp.status_code == 200, resp.text
            took = await until(functools.partial(inside, store, eid, ticket_id), 2.0)
            assert took < 1.0, took
        assert worker._streaming is stream


async def test_a_revoked_gate_stops_following_at_once(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    eid, _ = await event_with_tickets(api)
    async with running_gate(api, eid, tmp_path) as (worker, _, gate_id):
        await until(lambda: asyncio.sleep(0, worker.status.online))
        await asyncio.sleep(0.3)
        resp = await api.delete(f"/api/v1/events/{eid}/gates/{gate_id}")
        assert resp.status_code == 200
        took = await until(lambda: asyncio.sleep(0, worker.status.state == "revoked"), 3.0)
        assert took < 1.0, took
