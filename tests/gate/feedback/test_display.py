"""The kiosk page in headless Chromium, fed by a real pipeline on a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import cv2
import numpy as np
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from gate.camera import CameraSettings, Capture
from gate.feedback.display import Display
from gate.feedback.display_backend import PipelineBackend
from gate.feedback.display_settings import DisplaySettings
from gate.scan.synth import write_video
from tests.gate.feedback.realgate import RealGate, make_gate, tickets
from tests.support.chromium import CHROMIUM_ARGS

GREEN, RED = "green", "red"


@dataclass
class Kiosk:
    gate: RealGate
    display: Display
    page: Page


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def _kiosk(tmp_path: Path, browser: Browser, camera: Capture | None) -> Kiosk:
    display = Display(DisplaySettings(port=0, hold_seconds=120, status_interval=0.2), camera=camera)
    gate = await make_gate(tmp_path, tickets(3), sinks=[display])
    display.backend = PipelineBackend(gate.pipeline)
    await display.start()
    page = await browser.new_page(viewport={"width": 1280, "height": 720})
    await page.goto(display.url)
    await expect(page.locator("#gate-name")).to_have_text("Gate B")
    return Kiosk(gate, display, page)


@pytest.fixture
async def kiosk(tmp_path: Path, browser: Browser) -> AsyncIterator[Kiosk]:
    k = await _kiosk(tmp_path, browser, camera=None)
    yield k
    await k.page.close()
    await k.display.stop()
    await k.gate.store.close()


def dominant(png: bytes) -> str:
    """'green', 'red' or 'other': the colour that fills most of the screenshot."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    b, g, r = (float(c) for c in np.median(image.reshape(-1, 3), axis=0))
    if g > 100 and g > r + 50 and g > b + 50:
        return GREEN
    if r > 150 and r > g + 80 and r > b + 80:
        return RED
    return "other"


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
    await page.fill("#q", "Guest 1002")
    await page.press("#q", "Enter")
    row = page.locator("#results li", has_text="Guest 1002")
    await expect(row).to_contain_text("not inside")
    await row.locator("button").click()
    await expect(page.locator("#verdict")).to_have_text("ADMIT")
    await expect(page.locator("#holder")).to_have_text("Guest 1002")
    assert dominant(await page.screenshot()) == GREEN


async def test_a_typed_code_is_decided(kiosk: Kiosk) -> None:
    await kiosk.page.fill("#q", kiosk.gate.code(1003, nonce=99))
    await kiosk.page.press("#q", "Enter")
    await expect(kiosk.page.locator("#verdict")).to_have_text("DENY")
    await expect(kiosk.page.locator("#message")).to_contain_text("reissued")


async def test_bad_requests_get_clear_errors(kiosk: Kiosk) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(kiosk.display.url + "api/admit", json={"ticket_id": "x"}) as r:
            assert r.status == 400 and "number" in await r.text()
        async with http.post(kiosk.display.url + "api/search", data=b"{") as r:
            assert r.status == 400 and "JSON" in await r.text()
        async with http.get(kiosk.display.url + "preview.jpg") as r:
            assert r.status == 404


async def test_camera_state_and_preview_are_shown(tmp_path: Path, browser: Browser) -> None:
    """A failing camera puts a banner on the page; a live one feeds the preview."""
    broken = Capture(CameraSettings(source="/dev/video97", backoff_initial=0.1))
    broken.start()
    k = await _kiosk(tmp_path / "a", browser, broken)
    try:
        await expect(k.page.locator("#camera-banner")).to_contain_text("/dev/video97")
    finally:
        broken.stop()
        await k.display.stop()
        await k.gate.store.close()

    video = tmp_path / "loop.avi"
    write_video(video, [np.full((240, 320, 3), 200, np.uint8)] * 10, fps=10)
    live = Capture(CameraSettings(source=str(video), at_end="reopen", backoff_initial=0.05))
    live.start()
    k = await _kiosk(tmp_path / "b", browser, live)
    try:
        await expect(k.page.locator("#camera-banner")).to_be_hidden()
        await expect(k.page.locator("#preview")).to_have_js_property("naturalWidth", 320)
    finally:
        live.stop()
        await k.display.stop()
        await k.gate.store.close()
