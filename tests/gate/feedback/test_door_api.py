"""The kiosk's door operations over real HTTP (issue 18): "Annul last" behind the staff PIN,
and POST /api/passage from a turnstile controller (token, or this machine only)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from gate.door.passage import PassageLane
from gate.door.settings import PassageSettings
from gate.feedback.display_backend import PipelineBackend
from tests.gate.feedback.conftest import close_kiosk, dominant, open_kiosk, unlock
from tests.gate.feedback.realgate import EVENT
from tests.gate.feedback.test_display_api import JSON, Served, close, serve

TOKEN = "t" * 24


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    s = await serve(tmp_path)
    yield s
    await close(s)


async def test_annul_needs_the_pin_and_says_why_it_refuses(served: Served) -> None:
    admitted = await served.gate.pipeline.process(served.gate.code(1001))
    assert admitted.admitted
    status, _ = await served.post("api/annul", {})
    assert status == 401  # no staff session
    assert await served.login() == 200
    for bad in ({"seq": "1"}, {"seq": 0}, {"seq": -1}, {"seq": 2**63}, {"seq": True}):
        status, text = await served.post("api/annul", bad)
        assert status == 400 and "seq must be" in text, bad
    status, text = await served.post("api/annul", {"seq": admitted.seq})
    assert status == 200, text
    body = json.loads(text)
    assert body["outcome"] == "annul" and body["ref_seq"] == admitted.seq
    assert body["message"] == "Entry annulled: Ticket 1001 (Guest 1001) is outside again"
    status, text = await served.post("api/annul", {})  # the latest admission: annulled already
    assert status == 409 and "already annulled" in text
    assert [r[0] for r in await served.journal()] == ["admit", "annul"]
    assert (await served.journal())[1][2] == "kiosk"


async def test_a_passage_needs_confirmation_on_and_the_token_when_set(served: Served) -> None:
    status, text = await served.post("api/passage", {})
    assert status == 409 and "GATE_PASSAGE_CONFIRM" in text  # passages are not confirmed here
    lane = PassageLane(
        served.gate.store,
        PassageSettings(confirm=True, token=TOKEN),
        gate="Gate B",
        annul_window=300,
    )
    served.gate.pipeline.sinks.insert(0, lane)
    backend = served.display.backend
    assert isinstance(backend, PipelineBackend)
    backend.lane = lane
    admitted = await served.gate.pipeline.process(served.gate.code(1002))
    # From this machine, with no token set: accepted.
    status, text = await served.post("api/passage", {})
    assert status == 200 and json.loads(text)["ref_seq"] == admitted.seq
    # With the token set, a caller without it (or with another) is refused, and nothing kept.
    served.display.api.passage_token = TOKEN
    for headers in ({}, {"Authorization": "Bearer " + "x" * 24}, {"Authorization": TOKEN}):
        status, _ = await served.post("api/passage", {}, **JSON, **headers)
        assert status == 401, headers
    status, text = await served.post("api/passage", {}, **JSON, Authorization=f"Bearer {TOKEN}")
    assert status == 200 and json.loads(text)["outcome"] == "tailgate"
    # A plain HTML form (no JSON) cannot fake one even with the token.
    async with served.http.post(
        served.url("api/passage"),
        data="x=1",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"Bearer {TOKEN}",
        },
    ) as r:
        assert r.status == 415  # the guard: writes are JSON only
    assert [r[0] for r in await served.journal()] == ["admit", "passed", "tailgate"]


async def test_staff_annul_from_the_kiosk_page(tmp_path: Path, browser: Browser) -> None:
    kiosk = await open_kiosk(tmp_path, browser)
    try:
        page = kiosk.page
        await kiosk.gate.pipeline.process(kiosk.gate.code(1001))
        await expect(page.locator("#verdict")).to_have_text("ADMIT")
        await unlock(page)
        await page.click("#annul")
        await expect(page.locator("#verdict")).to_have_text("ANNULLED")
        await expect(page.locator("#message")).to_have_text(
            "Entry annulled: Ticket 1001 (Guest 1001) is outside again"
        )
        assert dominant(await page.screenshot()) not in ("green", "red")  # amber, not a verdict
        await page.click("#annul")  # nothing left to annul: said, not shown as a verdict
        await expect(page.locator("#notice")).to_contain_text("already annulled")
        state = (await kiosk.gate.store.lookup(EVENT, 1001)).state
        assert state is not None and not state.inside
    finally:
        await close_kiosk(kiosk)
