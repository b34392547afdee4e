"""The dashboard hub on a real aiohttp server and real sockets: changes are folded into one
computation, a dashboard that stops reading is dropped without holding up the others, and
quiet dashboards get keepalives. Gate sightings: what is written, and when."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from syncd.dashboard.hub import DashboardHub, HubConfig, Viewer, frame
from syncd.dashboard.seen import SeenGates, is_online


@dataclass
class Rig:
    hub: DashboardHub
    server: TestServer
    computed: list[int]


async def _never_valid(credential: str) -> int | None:
    return None


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """A server whose /watch/{event} opens a dashboard of ``event``; each computation is a
    256 KiB frame, so a reader that stops fills its socket after a few."""
    computed: list[int] = []

    async def compute(event_id: int) -> bytes:
        computed.append(event_id)
        return frame("figures", {"event": event_id, "n": len(computed), "pad": "x" * 262_144})

    hub = DashboardHub(compute, HubConfig(interval=0.2, refresh=1.0, per_token=100), _never_valid)

    async def watch(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        event_id = int(request.match_info["event"])
        viewer = Viewer(event_id, int(request.query["token"]), "", response, request.transport)
        await hub.watch(viewer)
        return response

    app = web.Application()
    app.router.add_get("/watch/{event}", watch)
    server = TestServer(app)
    await server.start_server()
    task = asyncio.create_task(hub.run())
    try:
        yield Rig(hub, server, computed)
    finally:
        task.cancel()
        await hub.stop()
        await server.close()


async def _events(resp: aiohttp.ClientResponse, count: int, within: float) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + within
    while len(got) < count:
        block = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), deadline - time.monotonic())
        got.append(block)
    return got


async def test_changes_in_a_burst_are_one_computation_for_every_dashboard(rig: Rig) -> None:
    async with aiohttp.ClientSession(read_bufsize=1 << 20) as session:
        url = rig.server.make_url("/watch/7")
        screens = [await session.get(url, params={"token": str(i)}) for i in range(5)]
        await asyncio.gather(*(_events(s, 1, 5) for s in screens))
        first = len(rig.computed)
        for _ in range(50):  # a door's burst: 50 check-ins within a few milliseconds
            rig.hub.kick(7)
            rig.hub.kick(8)  # nobody watches event 8: never computed
        await asyncio.gather(*(_events(s, 1, 5) for s in screens))
        await asyncio.sleep(0.5)
        assert rig.computed[first:] == [7]
        for s in screens:
            s.close()


async def test_a_dashboard_that_stops_reading_is_dropped_and_the_others_go_on(rig: Rig) -> None:
    """Scenario: a laptop's lid closes with the dashboard open (its socket stops reading).
    The hub drops it once its buffer holds more than busy_bytes, instead of waiting for it;
    the phone next to it keeps getting every computation."""
    host, port = rig.server.host, rig.server.port
    stuck = socket.create_connection((host, port))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(f"GET /watch/1?token=1 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    async with aiohttp.ClientSession(read_bufsize=1 << 20) as session:
        phone = await session.get(rig.server.make_url("/watch/1"), params={"token": "2"})
        await _events(phone, 1, 5)
        for _ in range(50):
            if rig.hub.viewers == 2:
                break
            await asyncio.sleep(0.1)
        assert rig.hub.viewers == 2  # the stuck one was served too, at first
        for _ in range(60):
            rig.hub.kick(1)
            await _events(phone, 1, 5)
            if rig.hub.viewers == 1:
                break
        assert rig.hub.viewers == 1, "the stuck dashboard was never dropped"
        rig.hub.kick(1)
        await _events(phone, 1, 5)  # still served
        phone.close()
    stuck.close()


async def test_a_quiet_dashboard_gets_its_figures_again_every_refresh(rig: Rig) -> None:
    """With nothing changing, the figures are computed again every ``refresh`` seconds (so a
    gate that went quiet turns offline on screen)."""
    async with aiohttp.ClientSession(read_bufsize=1 << 20) as session:
        screen = await session.get(rig.server.make_url("/watch/3"), params={"token": "1"})
        blocks = await _events(screen, 3, 6)
        assert all(b.startswith(b"event: figures") for b in blocks)
        screen.close()


def test_sightings_are_written_once_and_streams_every_third_of_the_window() -> None:
    now = [1000.0]
    streaming: list[int] = [5]
    seen = SeenGates(lambda: streaming, online_seconds=60, clock=lambda: now[0])
    seen.saw(1, backlog=4)
    seen.saw(1)  # a long-poll after the push keeps the reported backlog
    seen.saw(2)
    assert seen.take() == {1: (1000.0, 4), 2: (1000.0, None), 5: (1000.0, None)}
    assert seen.take() == {}
    now[0] += 19
    assert seen.take() == {}
    now[0] += 1
    assert seen.take() == {5: (1020.0, None)}
    streaming.clear()
    now[0] += 100
    assert seen.take() == {}


def test_online_means_seen_or_pushed_within_the_window() -> None:
    assert is_online(100.0, None, 150.0, 60)
    assert is_online(None, 100.0, 160.0, 60)
    assert not is_online(100.0, 90.0, 161.0, 60)
    assert not is_online(None, None, 100.0, 60)
