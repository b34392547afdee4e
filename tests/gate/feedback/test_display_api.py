"""The kiosk page's HTTP surface as a hostile client meets it: a real Display on a real gate.

Requests go over real HTTP (aiohttp client) to a Display serving a Pipeline on a SQLite store;
what reached the journal is read back from the store.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gate.feedback.display import Display
from gate.feedback.display_api import COOKIE, MAX_SCAN_CHARS
from gate.feedback.display_backend import PipelineBackend
from gate.feedback.display_settings import DisplaySettings
from gate.scan.debounce import Debouncer
from shared.errors import ConfigError
from tests.gate.feedback.conftest import PIN, PIN_HASH
from tests.gate.feedback.realgate import RealGate, make_gate, tickets

JSON = {"Content-Type": "application/json"}


@dataclass
class Served:
    gate: RealGate
    display: Display
    http: aiohttp.ClientSession

    @property
    def port(self) -> int:
        assert self.display.guard.port is not None
        return self.display.guard.port

    def url(self, path: str) -> str:
        return f"{self.display.url}{path.lstrip('/')}"

    async def post(self, path: str, body: Any = None, **headers: str) -> tuple[int, str]:
        data = body if isinstance(body, bytes) else None
        kwargs: dict[str, Any] = {"data": data} if data is not None else {"json": body or {}}
        async with self.http.post(self.url(path), headers=headers or None, **kwargs) as r:
            return r.status, await r.text()

    async def login(self, pin: str = PIN) -> int:
        status, _ = await self.post("api/staff/login", {"pin": pin})
        return status

    async def journal(self) -> list[tuple[Any, ...]]:
        rows = await self.gate.store.conn.execute_fetchall(
            "SELECT decision, reason, via, ticket_id FROM journal ORDER BY seq"
        )
        return [tuple(r) for r in rows]


async def serve(tmp_path: Path, **settings: Any) -> Served:
    settings = {"port": 0, "staff_pin": PIN_HASH, **settings}
    display = Display(DisplaySettings(**settings))
    gate = await make_gate(tmp_path, tickets(3), sinks=[display])
    display.backend = PipelineBackend(gate.pipeline)
    await display.start()
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies for 127.0.0.1 like a browser does
    return Served(gate, display, aiohttp.ClientSession(cookie_jar=jar))


async def close(served: Served) -> None:
    await served.http.close()
    await served.display.stop()
    await served.gate.store.close()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    s = await serve(tmp_path, allowed_hosts="gate-b.local, Door.Example")
    yield s
    await close(s)


async def test_a_foreign_host_name_is_misdirected(served: Served) -> None:
    """DNS rebinding: evil.example resolved to 127.0.0.1 must not read names or admit."""
    await served.login()
    for host in ("evil.example", f"evil.example:{served.port}", f"127.0.0.1:{served.port + 1}"):
        for method, path in (("GET", "/"), ("GET", "api/state"), ("POST", "api/search")):
            headers = {"Host": host, **JSON}
            async with served.http.request(
                method, served.url(path), headers=headers, json={"q": "Guest"}
            ) as r:
                assert r.status == 421, (host, path)
                assert "Guest" not in await r.text()
    for host in ("localhost", "127.0.0.1", "[::1]", "gate-b.local", "door.example"):
        async with served.http.get(
            served.url("api/state"), headers={"Host": f"{host}:{served.port}"}
        ) as r:
            assert r.status == 200, host


async def test_answers_carry_no_version_banner_and_safe_headers(served: Served) -> None:
    """The kiosk said `Server: Python/3.11 aiohttp/3.14.5`; refusals and the page included."""
    for path, headers in (("", {}), ("api/state", {}), ("api/state", {"Host": "evil.example"})):
        async with served.http.get(served.url(path), headers=headers) as r:
            assert r.headers["Server"] == "tessera-gate", path
            assert "aiohttp" not in r.headers["Server"] and "Python" not in r.headers["Server"]
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert r.headers["X-Frame-Options"] == "DENY"
            if path.startswith("api/"):
                assert r.headers["Cache-Control"] == "no-store"


async def test_requests_from_other_pages_are_forbidden(served: Served) -> None:
    """A page on another site or port posts to /api/scan or /api/admit: refused, none recorded."""
    await served.login()
    code = served.gate.code(1001)
    for origin in (
        "http://evil.example",
        "null",
        f"http://127.0.0.1:{served.port + 1}",
        f"https://127.0.0.1:{served.port}",
        f"http://127.0.0.1:{served.port}/path",
    ):
        assert (await served.post("api/scan", {"text": code}, Origin=origin))[0] == 403
        assert (await served.post("api/admit", {"ticket_id": 1001}, Origin=origin))[0] == 403
    status, text = await served.post(
        "api/admit", {"ticket_id": 1001}, **{"Sec-Fetch-Site": "cross-site"}
    )
    assert status == 403 and "other web pages" in text
    form = b"ticket_id=1001"
    status, text = await served.post("api/admit", form, **{"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in text
    assert await served.journal() == []

    own = f"http://localhost:{served.port}"
    status, _ = await served.post(
        "api/scan", {"text": code}, Origin=own, **{"Sec-Fetch-Site": "same-origin"}
    )
    assert status == 200
    assert await served.journal() == [("admit", None, "kiosk", 1001)]


async def test_staff_actions_need_the_pin(served: Served) -> None:
    for path, body in (
        ("api/search", {"q": "Guest"}),
        ("api/admit", {"ticket_id": 1001}),
        ("api/direction", {"direction": "out"}),
    ):
        status, text = await served.post(path, body)
        assert status == 401 and "Guest" not in text and "PIN" in text
    assert await served.login("1357") == 403
    assert await served.journal() == []

    async with served.http.post(served.url("api/staff/login"), json={"pin": PIN}) as r:
        assert r.status == 200
        cookie = r.cookies[COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
        assert int(cookie["max-age"]) == 30 * 60
    status, text = await served.post("api/search", {"q": "guest 1002"})
    assert status == 200 and "Guest 1002" in text
    status, text = await served.post("api/direction", {"direction": "out"})
    assert status == 409 and "mode 'entry'" in text  # a gate in mode entry has no switch
    served.gate.pipeline.settings = served.gate.settings.model_copy(update={"mode": "both"})
    assert (await served.post("api/direction", {"direction": "sideways"}))[0] == 400
    status, text = await served.post("api/direction", {"direction": "out"})
    assert status == 200 and served.gate.pipeline.direction == "out"
    assert (await served.post("api/direction", {"direction": "in"}))[0] == 200
    assert (await served.post("api/admit", {"ticket_id": 1002}))[0] == 200
    assert await served.journal() == [("admit", None, "manual", 1002)]

    assert (await served.post("api/staff/logout"))[0] == 200
    assert (await served.post("api/search", {"q": "Guest"}))[0] == 401


async def test_a_session_expires(served: Served) -> None:
    now = [1000.0]
    served.display.api.sessions.clock = lambda: now[0]
    assert await served.login() == 200
    now[0] += 30 * 60 - 1
    assert (await served.post("api/search", {"q": "Guest"}))[0] == 200
    now[0] += 2
    assert (await served.post("api/search", {"q": "Guest"}))[0] == 401
    async with served.http.get(served.url("api/staff")) as r:
        assert (await r.json())["staff"] is False


async def test_without_a_pin_the_page_only_decides(tmp_path: Path) -> None:
    """No GATE_STAFF_PIN: scans work; names, manual admits and the switch are off."""
    served = await serve(tmp_path, staff_pin=None)
    try:
        async with served.http.get(served.url("api/staff")) as r:
            assert (await r.json())["pin_set"] is False
        status, text = await served.post("api/staff/login", {"pin": PIN})
        assert status == 403 and "GATE_STAFF_PIN" in text
        status, text = await served.post("api/search", {"q": "Guest"})
        assert status == 403 and "Guest 1" not in text
        assert (await served.post("api/scan", {"text": served.gate.code(1003)}))[0] == 200
        assert await served.journal() == [("admit", None, "kiosk", 1003)]
    finally:
        await close(served)


async def test_wrong_pins_lock_guessing_out(tmp_path: Path) -> None:
    """A burst of 20 parallel guesses gets 3 tries, then 429 with Retry-After (even the PIN)."""
    served = await serve(tmp_path, pin_max_failures=3, pin_lockout_seconds=30)
    try:
        statuses = await asyncio.gather(*(served.login(f"{n:04d}") for n in range(20)))
        assert sorted(statuses) == [403] * 3 + [429] * 17
        async with served.http.post(served.url("api/staff/login"), json={"pin": PIN}) as r:
            assert r.status == 429 and 25 <= int(r.headers["Retry-After"]) <= 30
            assert PIN not in await r.text()
        served.display.api.guard.clock = lambda: 1e12  # the lock-out is over
        assert await served.login() == 200
    finally:
        await close(served)


@pytest.mark.parametrize(
    "raw",
    [
        9223372036854775808,
        "9223372036854775808",
        18446744073709551616,
        -1,
        1.5,
        True,
        "12a",
        "",
        None,
        "١٢",
        "1" * 5000,
    ],
)
async def test_ticket_numbers_the_store_cannot_hold_are_400(served: Served, raw: object) -> None:
    """Big numbers: /api/admit with 2**63 answered 500 (OverflowError) before."""
    await served.login()
    status, text = await served.post("api/admit", {"ticket_id": raw})
    assert status == 400 and "whole number from 0 to 9223372036854775807" in text
    assert await served.journal() == []


async def test_searches_that_are_too_big_or_odd_are_400(served: Served) -> None:
    await served.login()
    for query in ("9223372036854775808", "18446744073709551616", "²²", "x", "g" * 101):
        status, _ = await served.post("api/search", {"q": query})
        assert status == 400, query
    status, text = await served.post("api/search", {"q": "9223372036854775807"})
    assert status == 200 and '"results": []' in text
    status, text = await served.post("api/admit", {"ticket_id": "9223372036854775807"})
    assert status == 200 and "Unknown ticket" in text


async def test_request_bodies_are_bounded(served: Served) -> None:
    await served.login()
    big = b'{"q": "' + b"a" * 20_000 + b'"}'
    assert (await served.post("api/search", big, **JSON))[0] == 413
    deep = b"[" * 7_000 + b"]" * 7_000  # valid JSON, nested deeper than the parser's stack
    status, text = await served.post("api/scan", deep, **JSON)
    assert status == 400 and "JSON" in text
    status, text = await served.post("api/scan", b"[" * 15_000, **JSON)
    assert status == 400 and "JSON" in text
    assert (await served.post("api/scan", b"\xff\xfe{", **JSON))[0] == 400


async def test_a_scan_is_stripped_bounded_and_debounced(served: Served) -> None:
    """Wedge input: surrounding whitespace goes; an overlong input is one "Not a ticket"."""
    served.display.api.debouncer = Debouncer(2.0)
    code = served.gate.code(1001)
    status, text = await served.post("api/scan", {"text": f" \t{code}\r\n"})
    assert status == 200 and '"outcome": "admit"' in text
    status, text = await served.post("api/scan", {"text": code})
    assert status == 200 and '"repeat": true' in text  # the scanner sent it twice
    junk = code + "x" * MAX_SCAN_CHARS
    for _ in range(2):
        status, text = await served.post("api/scan", {"text": junk})
        assert status == 200 and "Not a ticket" in text
    assert (await served.post("api/scan", {"text": "   "}))[0] == 400
    assert await served.journal() == [
        ("admit", None, "kiosk", 1001),
        ("deny", "not_a_ticket", "kiosk", None),
        ("deny", "not_a_ticket", "kiosk", None),
    ]


async def test_a_busy_port_leaves_the_gate_scanning_unless_the_page_is_its_only_scanner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two stdin gates on one machine: the second has no page but still decides."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert await Display(DisplaySettings(port=port)).start() == ""
        assert "kiosk page not served" in caplog.text
        with pytest.raises(ConfigError, match="cannot serve the kiosk page"):
            await Display(DisplaySettings(port=port), required=True).start()
