"""Web pages that try to use the kiosk: in real Chromium, against a real gate; none admit anyone.

The kiosk browser (or any browser on the gate's machine) may open any page. Before the guard,
such a page could POST /api/admit from any Origin, and a DNS-rebinding name that resolves to
127.0.0.1 could read /api/search (holder names).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, async_playwright, expect

from tests.gate.feedback.conftest import Kiosk, close_kiosk, open_kiosk, unlock
from tests.support.chromium import CHROMIUM_ARGS, local_name_args

ATTACK = """<!doctype html><html><body>
<form id="f" method="post" action="{kiosk}api/admit" target="sink">
  <input name="ticket_id" value="1002"></form>
<iframe name="sink"></iframe>
<script>
window.results = [];
const note = (what) => (x) => window.results.push(what + ":" + (x && x.status || x));
const json = {{ "Content-Type": "application/json" }};
Promise.allSettled([
  fetch("{kiosk}api/scan", {{ method: "POST", headers: json,
    body: JSON.stringify({{ text: {code} }}) }}).then(note("cors-scan"), note("cors-scan")),
  fetch("{kiosk}api/admit", {{ method: "POST", mode: "no-cors", credentials: "include",
    body: JSON.stringify({{ ticket_id: 1003 }}) }}).then(note("no-cors"), note("no-cors")),
  fetch("{kiosk}api/search", {{ method: "POST", headers: json, credentials: "include",
    body: JSON.stringify({{ q: "Guest" }}) }})
    .then((r) => r.text()).then(note("search"), note("search")),
]).then(() => {{ document.getElementById("f").submit(); window.done = true; }});
</script></body></html>"""


@pytest.fixture
async def staffed(tmp_path: Path, browser: Browser) -> AsyncIterator[Kiosk]:
    """A kiosk tab where staff have typed the PIN: its session cookie is in the browser."""
    k = await open_kiosk(tmp_path, browser)
    await unlock(k.page)
    yield k
    await close_kiosk(k)


async def journal(k: Kiosk) -> list[tuple[object, ...]]:
    rows = await k.gate.store.conn.execute_fetchall("SELECT decision, ticket_id FROM journal")
    return [tuple(r) for r in rows]


async def test_a_page_on_another_port_cannot_scan_admit_or_search(staffed: Kiosk) -> None:
    """Same site (127.0.0.1, so the SameSite cookie goes along), other port: Origin refuses it."""
    page_html = ATTACK.format(kiosk=staffed.display.url, code=json.dumps(staffed.gate.code(1001)))

    async def attack_page(request: web.Request) -> web.Response:
        return web.Response(text=page_html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", attack_page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    attacker = await staffed.page.context.new_page()
    try:
        await attacker.goto(f"http://127.0.0.1:{port}/")
        await attacker.wait_for_function("window.done === true")
        await asyncio.sleep(0.5)  # let the form post land
        results = await attacker.evaluate("window.results")
    finally:
        await attacker.close()
        await runner.cleanup()
    assert any(r.startswith("cors-scan:TypeError") for r in results), results
    assert not any("Guest" in r for r in results), results
    assert await journal(staffed) == []

    await staffed.page.fill("#q", "Guest 1002")  # the kiosk itself still works
    await staffed.page.press("#q", "Enter")
    await staffed.page.locator("#results li button").first.click()
    await expect(staffed.page.locator("#verdict")).to_have_text("ADMIT")
    assert await journal(staffed) == [("admit", 1002)]


async def test_a_rebinding_name_gets_misdirected(tmp_path: Path) -> None:
    """DNS rebinding: rebind.example resolves to 127.0.0.1; the page answers it with 421."""
    args = [*CHROMIUM_ARGS, *local_name_args("rebind.example")]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        k = await open_kiosk(tmp_path, browser)
        try:
            assert k.display.guard.port is not None
            page = await browser.new_page()
            response = await page.goto(f"http://rebind.example:{k.display.guard.port}/")
            assert response is not None and response.status == 421
            assert "own address" in await page.content()
            status = await page.evaluate(
                """code => fetch("/api/scan", { method: "POST",
                     headers: { "Content-Type": "application/json" },
                     body: JSON.stringify({ text: code }) }).then(r => r.status)""",
                k.gate.code(1001),
            )
            assert status == 421
            assert await journal(k) == []
        finally:
            await close_kiosk(k)
            await browser.close()
