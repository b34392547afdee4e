"""The kiosk page of a revoked gate (issue 18, wipe on revoke), in headless Chromium: a red
banner that stays, the idle screen says the gate is closed, a scan is a red DENY that names
the reason, staff search finds no names; all of it gone again once the gate is enrolled."""

from __future__ import annotations

import sqlite3

from playwright.async_api import expect

from gate.store.wipe import mark_revoked, wipe_holder_data
from tessera_dev.sample_event import SAT_18
from tests.gate.feedback.conftest import RED, Kiosk, dominant, unlock


async def test_a_revoked_gate_shows_it_and_refuses_scans(kiosk: Kiosk) -> None:
    page, gate = kiosk.page, kiosk.gate
    await expect(page.locator("#revoked-banner")).to_be_hidden()
    await mark_revoked(gate.store, SAT_18, "gate credential revoked")
    banner = page.locator("#revoked-banner")
    await expect(banner).to_contain_text("Gate revoked by the organiser")
    await expect(banner).to_contain_text("deleting holder names")
    await wipe_holder_data(gate.store, gate.settings.data_dir, now=SAT_18 + 1)
    await expect(banner).to_contain_text("holder names deleted from this gate")
    await expect(banner).to_contain_text("No scans until it is enrolled again")
    await expect(page.locator("#verdict")).to_have_text("CLOSED")
    await expect(page.locator("#message")).to_contain_text("please use another gate")
    await expect(page.locator("#link")).to_have_text("CREDENTIAL REVOKED")

    await unlock(page)
    await page.fill("#q", gate.code(1001))  # a typed code goes to /api/scan
    await page.press("#q", "Enter")
    await expect(page.locator("#verdict")).to_have_text("DENY")
    await expect(page.locator("#message")).to_have_text(
        "Gate revoked: no scans until it is enrolled again"
    )
    assert dominant(await page.screenshot()) == RED
    await expect(banner).to_be_visible()  # it stays over results

    await page.fill("#q", "Guest 1002")
    await page.press("#q", "Enter")
    await expect(page.locator("#results li")).to_have_text(["No match"])

    db = sqlite3.connect(gate.store.path)  # `gate enroll` from another process
    with db:
        db.execute("UPDATE sync_state SET revoked_at = NULL, wiped_at = NULL")
    db.close()
    await gate.store.refresh(force=False)
    await expect(banner).to_be_hidden()
