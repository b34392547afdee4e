"""The kiosk page in headless Chromium, fed by a real pipeline on a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import numpy as np
from playwright.async_api import Browser, expect

from gate.camera import CameraSettings, Capture
from tessera_dev.synth import write_video
from tests.gate.feedback.conftest import (
    GREEN,
    RED,
    Kiosk,
    close_kiosk,
    dominant,
    open_kiosk,
    unlock,
)


async def test_idle_page_shows_ready_offline_and_list_state(kiosk: Kiosk) -> None:
    page = kiosk.page
    await expect(page.locator("#verdict")).to_have_text("READY")
    await expect(page.locator("#link")).to_have_text("OFFLINE")
    await expect(page.locator("#admitted-today")).to_have_text("0")
    await expect(page.locator("#list-age")).to_contain_text("list ")
    assert dominant(await page.screenshot()) == "other"


async def test_admit_then_deny_fill_the_screen_green_then_red(kiosk: Kiosk, tmp_path: Path) -> None:
    page, code = kiosk.page, kiosk.gate.code(1001)
    await kiosk.gate.pipeline.process(code, via="camera")
    await expect(page.locator("#verdict")).to_have_text("ADMIT")
    await expect(page.locator("#message")).to_have_text("Welcome")
    await expect(page.locator("#holder")).to_have_text("Guest 1001")
    await expect(page.locator("#category")).to_have_text("Weekend pass")
    await expect(page.locator("#admitted-today")).to_have_text("1")
    await expect(page.locator("#inside-now")).to_have_text("1")
    admit_png = await page.screenshot(path=str(tmp_path / "admit.png"))
    assert dominant(admit_png) == GREEN

    await kiosk.gate.pipeline.process(code, via="camera")
    await expect(page.locator("#verdict")).to_have_text("DENY")
    await expect(page.locator("#message")).to_contain_text("Already checked in")
    await expect(page.locator("#message")).to_contain_text("at Gate B")
    deny_png = await page.screenshot(path=str(tmp_path / "deny.png"))
    assert dominant(deny_png) == RED


async def test_a_qr_that_is_not_a_ticket_says_so(kiosk: Kiosk) -> None:
    await kiosk.gate.pipeline.process("https://example.org/party", via="camera")
    await expect(kiosk.page.locator("#verdict")).to_have_text("DENY")
    await expect(kiosk.page.locator("#message")).to_have_text("Not a ticket")


async def test_staff_search_by_name_and_admit_by_hand(kiosk: Kiosk) -> None:
    page = kiosk.page
    await unlock(page)
    await page.fill("#q", "Guest 1002")
    await page.press("#q", "Enter")
    row = page.locator("#results li", has_text="Guest 1002")
    await expect(row).to_contain_text("not inside")
    await row.locator("button").click()
    await expect(page.locator("#verdict")).to_have_text("ADMIT")
    await expect(page.locator("#holder")).to_have_text("Guest 1002")
    assert dominant(await page.screenshot()) == GREEN


async def test_a_typed_code_is_decided(kiosk: Kiosk) -> None:
    await unlock(kiosk.page)
    await kiosk.page.fill("#q", kiosk.gate.code(1003, nonce=99))
    await kiosk.page.press("#q", "Enter")
    await expect(kiosk.page.locator("#verdict")).to_have_text("DENY")
    await expect(kiosk.page.locator("#message")).to_contain_text("reissued")


async def test_bad_requests_get_clear_errors(kiosk: Kiosk) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(kiosk.display.url + "api/scan", json={"text": 5}) as r:
            assert r.status == 400 and "text" in await r.text()
        headers = {"Content-Type": "application/json"}
        async with http.post(kiosk.display.url + "api/scan", data=b"{", headers=headers) as r:
            assert r.status == 400 and "JSON" in await r.text()
        async with http.get(kiosk.display.url + "preview.jpg") as r:
            assert r.status == 404


async def test_camera_state_and_preview_are_shown(tmp_path: Path, browser: Browser) -> None:
    """A failing camera puts a banner on the page; a live one feeds the preview."""
    broken = Capture(CameraSettings(source="/dev/video97", backoff_initial=0.1))
    broken.start()
    k = await open_kiosk(tmp_path / "a", browser, broken)
    try:
        await expect(k.page.locator("#camera-banner")).to_contain_text("/dev/video97")
        await expect(k.page.locator("#message")).to_have_text("Show your ticket to the camera")
    finally:
        broken.stop()
        await close_kiosk(k)

    video = tmp_path / "loop.avi"
    write_video(video, [np.full((240, 320, 3), 200, np.uint8)] * 10, fps=10)
    live = Capture(CameraSettings(source=str(video), at_end="reopen", backoff_initial=0.05))
    live.start()
    k = await open_kiosk(tmp_path / "b", browser, live)
    try:
        await expect(k.page.locator("#camera-banner")).to_be_hidden()
        await expect(k.page.locator("#preview")).to_have_js_property("naturalWidth", 320)
    finally:
        live.stop()
        await close_kiosk(k)


async def test_a_wedge_scan_into_the_open_pin_box_is_a_scan_not_a_guess(kiosk: Kiosk) -> None:
    """Staff opened the PIN box, then someone scanned: the code must not count as a wrong PIN."""
    page = kiosk.page
    await page.click("#staff-open")
    await expect(page.locator("#pin")).to_be_focused()
    await page.keyboard.type(kiosk.gate.code(1001))
    await page.keyboard.press("Enter")
    await expect(page.locator("#verdict")).to_have_text("ADMIT")
    assert kiosk.display.api.guard.retry_after() == 0 and kiosk.display.api.guard.failures == 0


async def test_wedge_keys_while_a_button_has_focus_are_a_scan(kiosk: Kiosk) -> None:
    """After Lock (the button keeps focus) a scanner's Enter must not press it again."""
    page = kiosk.page
    await unlock(page)
    await page.click("#staff-lock")
    await expect(page.locator("#staff-open")).to_be_visible()
    await page.keyboard.type(kiosk.gate.code(1002))
    await page.keyboard.press("Enter")
    await expect(page.locator("#holder")).to_have_text("Guest 1002")
    await expect(page.locator("#verdict")).to_have_text("ADMIT")
    await expect(page.locator("#q")).to_be_hidden()


async def test_a_wrong_pin_says_so_and_shows_no_names(kiosk: Kiosk) -> None:
    page = kiosk.page
    await expect(page.locator("#q")).to_be_hidden()
    await page.click("#staff-open")
    await page.fill("#pin", "1111")
    await page.press("#pin", "Enter")
    await expect(page.locator("#notice")).to_have_text("wrong PIN")
    await expect(page.locator("#q")).to_be_hidden()
    await expect(page.locator("#pin")).to_be_focused()  # the box stays open for another try
    assert "Guest" not in await page.content()
