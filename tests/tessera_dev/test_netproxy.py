"""The test proxies: the failure-test proxy really cuts and restores a connection to a real
server; fresh-check's registry proxy forwards only registries and logs every request."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from playwright.async_api import async_playwright

from tessera_dev.netproxy import TcpProxy
from tests.support.chromium import CHROMIUM_ARGS

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from _fresh_proxy import RegistryProxy, hosts_seen


async def test_proxy_cut_breaks_and_restore_heals_a_postgres_connection(pg_url: str) -> None:
    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        conn = await asyncpg.connect(url)
        assert await conn.fetchval("SELECT 1") == 1
        proxy.cut()
        with pytest.raises((OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)):
            await conn.fetchval("SELECT 1")
        with pytest.raises(OSError):
            await asyncpg.connect(url, timeout=2)
        proxy.restore()
        again = await asyncpg.connect(url)
        assert await again.fetchval("SELECT 2") == 2
        await again.close()
        conn.terminate()


# --- scripts/_fresh_proxy.py: the registry proxy of scripts/fresh-check ---------------------


@dataclass
class Proxied:
    """A RegistryProxy on a local TCP port and what it recorded."""

    port: int
    log: list[dict[str, object]]


@pytest.fixture
async def registry_proxy() -> AsyncIterator[Proxied]:
    log: list[dict[str, object]] = []
    proxy = RegistryProxy(["127.0.0.1"], log.append, ports=frozenset({_origin_port()}))
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    async with server:
        yield Proxied(server.sockets[0].getsockname()[1], log)


_ORIGIN: dict[str, int] = {}


def _origin_port() -> int:
    return _ORIGIN.setdefault("port", _free_tcp_port())


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    answer = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    return answer


async def test_registry_proxy_forwards_an_allowed_plain_http_request(
    registry_proxy: Proxied,
) -> None:
    """apt's plain-HTTP request in absolute form reaches the origin rewritten to origin form."""
    seen: list[bytes] = []

    async def origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async with await asyncio.start_server(origin, "127.0.0.1", _origin_port()):
        url = f"http://127.0.0.1:{_origin_port()}/debian/Release"
        answer = await _exchange(
            registry_proxy.port, f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"ok")
    assert seen == [b"GET /debian/Release HTTP/1.1\r\nHost: x\r\n\r\n"]
    assert registry_proxy.log == [
        {"host": "127.0.0.1", "port": _origin_port(), "method": "GET", "allowed": True}
    ]


async def test_registry_proxy_refuses_and_logs_a_host_that_is_not_a_registry(
    registry_proxy: Proxied,
) -> None:
    """Chromium asking for content-autofill.googleapis.com gets 403 and lands in the log."""
    request = b"CONNECT content-autofill.googleapis.com:443 HTTP/1.1\r\n\r\n"
    answer = await _exchange(registry_proxy.port, request)
    assert answer.startswith(b"HTTP/1.1 403 Forbidden")
    assert registry_proxy.log == [
        {
            "host": "content-autofill.googleapis.com",
            "port": 443,
            "method": "CONNECT",
            "allowed": False,
        }
    ]


async def test_registry_proxy_answers_garbage_with_400_and_logs_nothing(
    registry_proxy: Proxied,
) -> None:
    answer = await _exchange(registry_proxy.port, b"\x16\x03\x01 hello\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request")
    assert registry_proxy.log == []


def test_hosts_seen_counts_forwarded_and_refused_per_host(tmp_path: Path) -> None:
    log = tmp_path / "proxy.jsonl"
    entries = [("pypi.org", True), ("pypi.org", True), ("accounts.google.com", False)]
    log.write_text(
        "".join(
            json.dumps({"host": h, "port": 443, "method": "CONNECT", "allowed": a}) + "\n"
            for h, a in entries
        )
    )
    assert hosts_seen(log) == {
        "pypi.org:443": {"allowed": 2, "refused": 0},
        "accounts.google.com:443": {"allowed": 0, "refused": 1},
    }


async def test_kiosk_flags_keep_chromium_from_contacting_any_outside_host(
    registry_proxy: Proxied,
) -> None:
    """Regression: Chromium with --disable-background-networking alone still called
    content-autofill.googleapis.com (3 times per page with a form), accounts.google.com,
    update.googleapis.com and clients2.google.com. With the shared kiosk flags and every
    request sent to a logging proxy, filling in a form on a local page contacts nothing."""
    form = (
        "<form onsubmit='return false'><input id=q autocomplete=name>"
        "<input id=email type=email><button id=go>go</button></form>"
    )

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=form, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    page_port = runner.addresses[0][1]
    try:
        proxy_flag = f"--proxy-server=http://127.0.0.1:{registry_proxy.port}"
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path="/usr/bin/chromium", args=[*CHROMIUM_ARGS, proxy_flag]
            )
            for _ in range(2):
                page = await browser.new_page()
                await page.goto(f"http://127.0.0.1:{page_port}/")
                await page.fill("#q", "Grace Hopper")
                await page.fill("#email", "grace@example.org")
                await page.click("#go")
                await page.close()
            await asyncio.sleep(5)
            await browser.close()
    finally:
        await runner.cleanup()
    assert registry_proxy.log == []
