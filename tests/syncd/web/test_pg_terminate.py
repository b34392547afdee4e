"""Postgres backends terminated under load (``pg_terminate_backend``, as an admin or a failover
does): every answer is 200 or 503 with Retry-After, never a 500, and the replica heals."""

from __future__ import annotations

import asyncio
import collections
import time

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from syncd.app import create_app
from syncd.settings import SyncdSettings
from tests.syncd.conftest import Org
from tests.syncd.gatekit import Gate, enrolled_gate, event_with_tickets

_KILL = """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()"""


async def _reads(client: TestClient, org: Org, gate: Gate, eid: int, out: list) -> None:
    """One round over endpoints of both credential kinds; statuses into ``out``."""
    for path in ("/api/v1/whoami", f"/api/v1/events/{eid}/stats", f"/api/v1/events/{eid}/keys"):
        resp = await client.get(path, headers=org.h())
        out.append((path, resp.status, resp.headers.get("Retry-After"), await resp.text()))
    resp = await client.get("/api/v1/gate/presence", headers=gate.h())
    out.append(("presence", resp.status, resp.headers.get("Retry-After"), await resp.text()))


async def _push(client: TestClient, gate: Gate, row: dict, out: list) -> bool:
    """Push ``row``; a gate sends the same row again until it is acknowledged."""
    body = {"sent_at": time.time(), "checkins": [row]}
    resp = await client.post("/api/v1/gate/checkins", json=body, headers=gate.h())
    out.append(("push", resp.status, resp.headers.get("Retry-After"), await resp.text()))
    return resp.status == 200


async def test_backends_terminated_under_load_are_503_never_500(
    settings: SyncdSettings, org_a: Org, db_url: str
) -> None:
    """Scenario: backends terminated while requests ran gave 500s with ERROR tracebacks:
    a pooled connection whose backend's FATAL had arrived but whose socket had not yet closed
    raised asyncpg's InternalClientError ("cannot switch to state 11; another operation (2) is
    in progress"), which was not classed as "database down" (and a push bisected it as if it
    were its own fault)."""
    app = create_app(settings.model_copy(update={"pool_max": 4}))
    admin = await asyncpg.connect(db_url)
    async with TestClient(TestServer(app)) as client:
        eid, tids = await event_with_tickets(client, org_a, 3)
        gate = await enrolled_gate(client, org_a, eid, "g1")
        out: list = []
        stop = asyncio.Event()

        async def reads() -> None:
            while not stop.is_set():
                await _reads(client, org_a, gate, eid, out)

        async def pushes() -> None:
            row = gate.checkin(tids[0])
            while not stop.is_set():
                if await _push(client, gate, row, out):
                    row = gate.checkin(tids[0])

        workers = [asyncio.create_task(reads()) for _ in range(2)]
        workers.append(asyncio.create_task(pushes()))
        killed, until = 0, time.monotonic() + 4
        while time.monotonic() < until:
            killed += await admin.fetchval(_KILL)
            await asyncio.sleep(0.03)
        stop.set()
        await asyncio.gather(*workers)
        statuses = collections.Counter((name, status) for name, status, _, _ in out)
        bad = [c for c in out if c[1] not in (200, 503)]
        assert not bad, (statuses, bad[:3])
        assert all(int(c[2]) > 0 for c in out if c[1] == 503)
        assert killed > 10 and statuses[("push", 200)] > 0, statuses
        healed: list = []
        await _reads(client, org_a, gate, eid, healed)  # the first calls may meet a dead one
        await _reads(client, org_a, gate, eid, healed)
        assert await _push(client, gate, gate.checkin(tids[1]), healed), healed
        assert [c[1] for c in healed[-5:]] == [200] * 5, healed
    await admin.close()
