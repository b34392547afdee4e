"""A real ``syncd serve`` (tests/syncd/servekit.py) as organisers and gates meet it: the
organiser's API client, an event with its list, and gates enrolled with it as ``gate enroll``
does it. For the gate and end-to-end tests that talk to syncd over real sockets.

Two fixtures, for a module to import: ``default_server`` is ``server`` (a module that gives
syncd settings of its own defines its own ``server``: ``running_syncd(db_url, rabbit,
SYNCD_...=...)``), and ``new_organiser_api`` is ``api``, an organiser's client of ``server``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gate import commands
from gate.settings import GateSettings
from gate.store.db import Store
from gate.sync.client import SyncClient
from tests.conftest import Rabbit
from tests.syncd.conftest import Org, make_org
from tests.syncd.servekit import Served, running_syncd


@pytest.fixture(name="server")
def default_server(db_url: str, rabbit: Rabbit) -> Iterator[Served]:
    """``server``: ``syncd serve`` with default settings on the test's migrated database."""
    with running_syncd(db_url, rabbit) as running:
        yield running


@asynccontextmanager
async def organiser_api(server: Served, org: Org) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``server``'s API with ``org``'s organiser token."""
    base = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=base, headers=org.h("organiser"), timeout=30) as client:
        yield client


@pytest.fixture(name="api")
async def new_organiser_api(server: Served, db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """``api``: ``organiser_api`` of a new organisation on ``server``."""
    async with organiser_api(server, await make_org(db_url, "Organiser")) as client:
        yield client


async def event_with_list(
    api: httpx.AsyncClient, csv: str, **event: Any
) -> tuple[int, list[dict[str, Any]]]:
    """A new event (``event``: its fields, ``name`` at least) with ``csv`` uploaded as its
    list: its id and its tickets as syncd lists them."""
    created = await api.post("/api/v1/events", json=event)
    assert created.status_code == 201, created.text
    eid = int(created.json()["event_id"])
    pushed = await api.post(
        f"/api/v1/events/{eid}/list", content=csv, headers={"Content-Type": "text/csv"}
    )
    assert pushed.status_code == 200, pushed.text
    tickets: list[dict[str, Any]] = (await api.get(f"/api/v1/events/{eid}/tickets")).json()[
        "tickets"
    ]
    return eid, tickets


@dataclass(frozen=True)
class EnrolledGate:
    """A gate's settings and its open store, enrolled with syncd at ``base``."""

    settings: GateSettings
    store: Store
    gate_id: int
    base: str

    def client(self) -> SyncClient:
        """A client with this gate's credential, as ``gate run`` makes one."""
        return SyncClient(self.base, self.settings.credential_path.read_text().strip())


@asynccontextmanager
async def enrolled_gate(
    api: httpx.AsyncClient, event_id: int, data_dir: Path, name: str = "Door", **gate: str
) -> AsyncIterator[EnrolledGate]:
    """A gate of ``event_id`` created over ``api`` (``gate``: more of its fields, e.g. zone),
    enrolled in ``data_dir`` by ``gate enroll``'s own code (credential, keys, snapshot); its
    store is open until the block ends."""
    created = await api.post(f"/api/v1/events/{event_id}/gates", json={"name": name, **gate})
    assert created.status_code == 201, created.text
    base = str(api.base_url)
    settings = GateSettings(gate_name=name, data_dir=data_dir)
    await commands.enroll(settings, base, created.json()["code"], "live-syncd-test")
    store = await Store.open(settings.db_path)
    try:
        yield EnrolledGate(settings, store, created.json()["gate_id"], base)
    finally:
        await store.close()


async def until(check: Callable[[], Awaitable[object]], seconds: float = 5.0) -> float:
    """Seconds until ``check()`` (async) is true; fails after ``seconds``."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < seconds, "not within the time"
        await asyncio.sleep(0.02)
    return time.monotonic() - started
