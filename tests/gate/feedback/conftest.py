"""Fixtures for the kiosk page: headless Chromium and a Display on a real pipeline and store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from playwright.async_api import Browser, Page, expect

from gate.camera import Capture
from gate.feedback.display import Display
from gate.feedback.display_backend import PipelineBackend
from gate.feedback.display_settings import DisplaySettings
from gate.feedback.staff import hash_pin
from shared.bundle import BundleTicket
from tests.gate.feedback.realgate import RealGate, make_gate, tickets
from tests.support.chromium import chromium_browser  # noqa: F401  (the browser fixture)

GREEN, RED = "green", "red"
PIN = "2468"
PIN_HASH = str(hash_pin(PIN))


@dataclass
class Kiosk:
    gate: RealGate
    display: Display
    page: Page


async def open_kiosk(
    tmp_path: Path,
    browser: Browser,
    camera: Capture | None = None,
    viewport: tuple[int, int] = (1280, 720),
    listed: Sequence[BundleTicket] | None = None,
    **settings: Any,
) -> Kiosk:
    """A Display (staff PIN ``PIN``) on a real gate (3 tickets unless ``listed``), in Chromium."""
    settings = {"port": 0, "hold_seconds": 120, "status_interval": 0.2, **settings}
    settings.setdefault("staff_pin", PIN_HASH)
    display = Display(DisplaySettings(**settings), camera=camera)
    gate = await make_gate(tmp_path, listed or tickets(3), sinks=[display])
    display.backend = PipelineBackend(gate.pipeline)
    await display.start()
    context = await browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = await context.new_page()
    await page.goto(display.url)
    await expect(page.locator("#gate-name")).to_have_text("Gate B")
    return Kiosk(gate, display, page)


async def close_kiosk(kiosk: Kiosk) -> None:
    await kiosk.page.context.close()
    await kiosk.display.stop()
    await kiosk.gate.store.close()


@pytest.fixture
async def kiosk(tmp_path: Path, browser: Browser) -> AsyncIterator[Kiosk]:
    k = await open_kiosk(tmp_path, browser)
    yield k
    await close_kiosk(k)


async def unlock(page: Page, pin: str = PIN) -> None:
    """Staff: tap Staff, type the PIN, Unlock; the search box appears."""
    await page.click("#staff-open")
    await page.fill("#pin", pin)
    await page.press("#pin", "Enter")
    await expect(page.locator("#q")).to_be_visible()


def dominant(png: bytes) -> str:
    """'green', 'red' or 'other': the colour that fills most of the screenshot."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    b, g, r = (float(c) for c in np.median(image.reshape(-1, 3), axis=0))
    if g > 100 and g > r + 50 and g > b + 50:
        return GREEN
    if r > 150 and r > g + 80 and r > b + 80:
        return RED
    return "other"
