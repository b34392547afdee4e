"""The kiosk page and groups, in real Chromium on a real gate: the summary line under a
decision ("Group of 3: 2 admitted, 1 already inside"), fitting a 7-inch screen, and the staff's
"Admit 1" / "Admit group of N" buttons in the search results."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from playwright.async_api import Browser, expect

from shared.bundle import BundleTicket
from tests.gate.feedback.conftest import PIN, close_kiosk, open_kiosk, unlock

LONG = "Maximiliane Alexandra von Hohenzollern-Sigmaringen"
LISTED = [
    BundleTicket(1001, 1001, category="Weekend pass with camping", holder=LONG, group="FAM"),
    BundleTicket(1002, 1002, category="Weekend pass", holder="Guest 1002", group="FAM"),
    BundleTicket(1003, 1003, category="Weekend pass", holder="Guest 1003", group="FAM"),
    BundleTicket(1004, 1004, category="Day pass", holder="Guest 1004", group="ORD-2"),
    BundleTicket(1005, 1005, category="Day pass", holder="Guest 1005", group="ORD-2"),
    BundleTicket(1006, 1006, category="Day pass", holder="Guest 1006"),
]


async def test_a_group_scan_shows_its_summary_and_fits(tmp_path: Path, browser: Browser) -> None:
    k = await open_kiosk(tmp_path, browser, viewport=(800, 480), listed=LISTED)
    try:
        pipeline = k.gate.pipeline
        pipeline.settings = pipeline.settings.model_copy(update={"group_admit": True})
        assert (await pipeline.manual_admit(1003, group=False)).admitted
        await pipeline.process(k.gate.code(1001), via="camera")
        page = k.page
        await expect(page.locator("#verdict")).to_have_text("ADMIT")
        await expect(page.locator("#group")).to_have_text(
            "Group of 3: 2 admitted, 1 already inside"
        )
        overflow = await page.evaluate(
            "(m => m.scrollHeight - m.clientHeight)(document.querySelector('main'))"
        )
        assert overflow <= 0, f"the verdict and the group line do not fit: {overflow}px more"
        await pipeline.process(k.gate.code(1006), via="camera")  # no group: no line
        await expect(page.locator("#holder")).to_have_text("Guest 1006")
        await expect(page.locator("#group")).to_be_hidden()
        await page.screenshot(path=str(tmp_path / "kiosk-group.png"))
    finally:
        await close_kiosk(k)


async def test_staff_admit_one_or_the_group(tmp_path: Path, browser: Browser) -> None:
    """Group admission is off on this gate: staff choose per ticket. A ticket without fellow
    members has the one "Admit" button."""
    k = await open_kiosk(tmp_path, browser, listed=LISTED)
    try:
        page = k.page
        await unlock(page)
        await page.fill("#q", "Guest 100")
        await page.press("#q", "Enter")
        rows = page.locator("#results li")
        await expect(rows).to_have_count(5)
        await expect(rows.nth(4).locator("button")).to_have_text(["Admit"])
        await expect(rows.nth(2).locator("button")).to_have_text(["Admit 1", "Admit group of 2"])
        await rows.nth(2).locator("button", has_text="Admit group of 2").click()
        await expect(page.locator("#group")).to_have_text("Group of 2: 2 admitted")
        await expect(page.locator("#holder")).to_have_text("Guest 1004")
        await page.fill("#q", "Guest 1002")
        await page.press("#q", "Enter")
        await page.locator("#results li button", has_text="Admit 1").click()
        await expect(page.locator("#holder")).to_have_text("Guest 1002")
        await expect(page.locator("#group")).to_be_hidden()
        inside = await k.gate.store.conn.execute_fetchall(
            "SELECT ticket_id FROM entry_state WHERE inside = 1 ORDER BY ticket_id"
        )
        assert [r[0] for r in inside] == [1002, 1004, 1005]
        # "Annul last" undoes the latest scan: Guest 1002 alone; after a group scan, one tap
        # undoes the whole group the page just showed.
        await page.locator("#annul").click()
        await expect(page.locator("#verdict")).to_have_text("ANNULLED")
        await expect(page.locator("#message")).to_have_text(
            "Entry annulled: Ticket 1002 (Guest 1002) is outside again"
        )
        await page.fill("#q", "Hohenzollern")
        await page.press("#q", "Enter")
        await page.locator("#results li button", has_text="Admit group of 3").click()
        await expect(page.locator("#group")).to_have_text("Group of 3: 3 admitted")
        await page.locator("#annul").click()
        await expect(page.locator("#message")).to_have_text(
            f"Group entry annulled: 3 tickets are outside again (Ticket 1001 ({LONG}) and 2 more)"
        )
        inside = await k.gate.store.conn.execute_fetchall(
            "SELECT ticket_id FROM entry_state WHERE inside = 1 ORDER BY ticket_id"
        )
        assert [r[0] for r in inside] == [1004, 1005]
    finally:
        await close_kiosk(k)


async def test_the_admit_api_refuses_a_group_that_is_not_a_flag(
    tmp_path: Path, browser: Browser
) -> None:
    k = await open_kiosk(tmp_path, browser, listed=LISTED)
    try:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            url = k.display.url
            async with http.post(url + "api/staff/login", json={"pin": PIN}) as resp:
                assert resp.status == 200
            for bad in ("true", 1, [True]):
                body = {"ticket_id": 1001, "group": bad}
                async with http.post(url + "api/admit", json=body) as resp:
                    assert resp.status == 400 and "true or false" in await resp.text()
            async with http.post(
                url + "api/admit", json={"ticket_id": 1001, "group": True}
            ) as resp:
                decision = await resp.json()
            assert decision["group"]["message"] == "Group of 3: 3 admitted"
            assert [m["decision"] for m in decision["group"]["members"]] == ["admit", "admit"]
        journal = await k.gate.store.conn.execute_fetchall(
            "SELECT ticket_id, via FROM journal ORDER BY seq"
        )
        assert [tuple(r) for r in journal] == [(1001, "manual"), (1002, "group"), (1003, "group")]
    finally:
        await close_kiosk(k)
