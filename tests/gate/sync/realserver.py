"""The fake syncd behind a real HTTP port (aiohttp), for `gate` run as a subprocess."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from aiohttp import web

from tests.gate.sync.fakesyncd import FakeSyncd


def _app(fake: FakeSyncd) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        forwarded = httpx.Request(
            request.method, str(request.url), headers=dict(request.headers), content=body
        )
        answer = fake.handle(forwarded)
        return web.Response(
            status=answer.status_code,
            body=answer.content,
            content_type=answer.headers.get("content-type", "application/octet-stream"),
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@contextmanager
def serving(fake: FakeSyncd) -> Iterator[str]:
    """Serve ``fake`` on 127.0.0.1 in a thread; yields the base URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    url: list[str] = []
    runner = web.AppRunner(_app(fake))

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        url.append(f"http://{host}:{port}")
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()))
    thread.start()
    ready.wait()
    try:
        yield url[0]
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
