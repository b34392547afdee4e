"""The kiosk page fits the screens gates have: 800x480 (7-inch touch), 1280x800, 1920x1080.

Each size is shown in Chromium at idle, with a DENY (long reason, long holder name: the verdict
must fit without scrolling), and in its busiest state (camera preview, staff unlocked with the
In/Out switch, search results open); the page must never scroll sideways and Find must be fully
on screen. Screenshots land in the test's tmp dir (kiosk-WIDTHxHEIGHT{,-idle,-deny}.png);
docs/kiosk-*.png are copies of one run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import Browser, Page, expect

from gate.camera import CameraSettings, Capture
from shared.bundle import BundleTicket
from tessera_dev.synth import write_video
from tests.gate.feedback.conftest import RED, close_kiosk, dominant, open_kiosk, unlock

LONG_NAME = "Maximiliane Alexandra von Hohenzollern-Sigmaringen"
LISTED = [
    BundleTicket(1001, 1001, category="Weekend pass with camping", holder=LONG_NAME),
    BundleTicket(1002, 1002, category="Weekend pass", holder="Guest 1002"),
    BundleTicket(1003, 1003, category="Day pass", holder="Guest 1003"),
]


async def fits(page: Page) -> None:
    """No sideways scroll; the Find button entirely inside the viewport."""
    width, height = page.viewport_size["width"], page.viewport_size["height"]  # type: ignore[index]
    scroll = await page.evaluate(
        "[document.documentElement.scrollWidth, document.body.scrollWidth]"
    )
    assert max(scroll) <= width, f"scrolls sideways at {width}x{height}: {scroll}"
    find = await page.locator("#find").bounding_box()
    assert find is not None, "Find is not shown"
    assert find["x"] >= 0 and find["y"] >= 0, find
    assert find["x"] + find["width"] <= width and find["y"] + find["height"] <= height, find


@pytest.mark.parametrize(
    "size", [(800, 480), (1280, 800), (1920, 1080)], ids=lambda s: "x".join(map(str, s))
)
async def test_the_page_fits_the_screen(
    tmp_path: Path, browser: Browser, size: tuple[int, int]
) -> None:
    video = tmp_path / "loop.avi"
    write_video(video, [np.full((240, 320, 3), 90, np.uint8)] * 10, fps=10)
    camera = Capture(CameraSettings(source=str(video), at_end="reopen", backoff_initial=0.05))
    camera.start()
    k = await open_kiosk(tmp_path, browser, camera, viewport=size, listed=LISTED)
    try:
        page = k.page
        await expect(page.locator("#preview")).to_be_visible()
        await fits_idle(page)
        await page.screenshot(path=str(tmp_path / f"kiosk-{size[0]}x{size[1]}-idle.png"))
        await unlock(page)
        pipeline = k.gate.pipeline  # a gate in mode both: the In/Out switch shows as well
        pipeline.settings = pipeline.settings.model_copy(update={"mode": "both"})
        await expect(page.locator("#turn")).to_be_visible()
        await k.gate.pipeline.process(k.gate.code(1001), via="camera")
        await k.gate.pipeline.process(k.gate.code(1001), via="camera")
        await expect(page.locator("#message")).to_contain_text("Already checked in")
        await fits(page)
        overflow = await page.evaluate(
            "(m => m.scrollHeight - m.clientHeight)(document.querySelector('main'))"
        )
        assert overflow <= 0, f"the verdict does not fit: {overflow}px more"
        await page.screenshot(path=str(tmp_path / f"kiosk-{size[0]}x{size[1]}-deny.png"))
        # The camera banner takes height from the verdict (CI caught 15 px of overflow at
        # 800x480 when the looping video was reopening): the verdict still fits beside it.
        camera.stop()
        await expect(page.locator("#camera-banner")).to_be_visible()
        overflow = await page.evaluate(
            "(m => m.scrollHeight - m.clientHeight)(document.querySelector('main'))"
        )
        assert overflow <= 0, f"the verdict does not fit beside the banner: {overflow}px more"
        await page.screenshot(path=str(tmp_path / f"kiosk-{size[0]}x{size[1]}-banner.png"))
        await page.fill("#q", "Guest")
        await page.press("#q", "Enter")
        await expect(page.locator("#results li")).to_have_count(2)
        await fits(page)
        shot = await page.screenshot(path=str(tmp_path / f"kiosk-{size[0]}x{size[1]}.png"))
        assert dominant(shot) == RED
    finally:
        camera.stop()
        await close_kiosk(k)


async def fits_idle(page: Page) -> None:
    """Idle and locked: no Find (no staff session), nothing scrolls either way."""
    await expect(page.locator("#staff-open")).to_be_visible()
    await expect(page.locator("#find")).to_be_hidden()
    size = page.viewport_size
    assert size is not None
    scroll = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    assert scroll[0] <= size["width"] and scroll[1] <= size["height"], scroll
