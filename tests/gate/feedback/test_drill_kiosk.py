"""The kiosk's Drill button: staff only, one drill at a time, the board in the results list,
the running camera's feed among its items, and nothing journaled."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import numpy as np
from playwright.async_api import Browser, expect

from gate.camera import CameraSettings, Capture
from gate.feedback.hooks import HookSettings
from gate.settings import GateSettings
from tessera_dev.synth import write_video
from tests.gate.feedback.conftest import close_kiosk, open_kiosk, unlock
from tests.gate.feedback.test_display_api import close, serve


async def test_the_drill_is_for_staff_only_and_one_at_a_time(tmp_path: Path) -> None:
    served = await serve(tmp_path)
    try:
        status, text = await served.post("api/drill", {})
        assert status == 401 and "staff PIN" in text
        assert await served.login() == 200
        pipeline = served.gate.pipeline  # a hook that takes a second keeps the drill busy
        slow = HookSettings(on_admit=f"{sys.executable} -c 'import time; time.sleep(1)'")
        pipeline.settings = GateSettings(
            gate_name="Gate B", data_dir=pipeline.settings.data_dir, parts=[slow]
        )
        first, second = await asyncio.gather(
            served.post("api/drill", {}), served.post("api/drill", {})
        )
        answers = sorted([first, second])
        assert answers[0][0] == 200 and answers[1] == (
            409,
            "a drill is running: wait for its board",
        )
        board = json.loads(answers[0][1])
        items = {i["name"]: i["status"] for i in board["items"]}
        assert board["result"] == "green" and items["hooks"] == "ok" and items["camera"] == "skip"
        assert await served.journal() == []
        status, _ = await served.post("api/drill", b"[]", **{"Content-Type": "application/json"})
        assert status == 400
    finally:
        await close(served)


async def test_staff_tap_drill_and_read_the_board_with_the_live_camera(
    tmp_path: Path, browser: Browser
) -> None:
    video = tmp_path / "door.avi"
    write_video(video, [np.full((240, 320, 3), 90, np.uint8)] * 300, fps=30)  # live 10 s
    camera = Capture(CameraSettings(source=str(video), at_end="reopen", backoff_initial=0.05))
    camera.start()
    k = await open_kiosk(tmp_path, browser, camera, viewport=(800, 480))
    try:
        page = k.page
        await unlock(page)
        await page.click("#drill")
        rows = page.locator("#results li.drill")
        await expect(rows.first).to_contain_text("GREEN", timeout=20_000)
        await expect(rows.first).to_have_class("drill green")
        camera_row = page.locator("#results li.drill", has_text="camera_feed")
        await expect(camera_row).to_have_class("drill ok")
        await expect(camera_row).to_contain_text("(running gate)")
        await expect(page.locator("#results li.drill", has_text="frames read")).to_have_class(
            "drill ok"
        )
        assert await rows.count() == 11  # the result, then one row per check
        await page.screenshot(path=str(tmp_path / "kiosk-drill-800x480.png"))
        await rows.nth(3).click()  # a tap closes the board
        await expect(rows).to_have_count(0)
        journal = await k.gate.store.conn.execute_fetchall("SELECT count(*) FROM journal")
        assert next(iter(journal))[0] == 0
    finally:
        await close_kiosk(k)
        camera.stop()
