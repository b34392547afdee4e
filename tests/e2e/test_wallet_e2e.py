"""Issue 17 end to end: a holder's phone is headless Chromium on the real wallet page, served by a
real ``syncd serve``; the door is a gate enrolled with that syncd and synced from it, reading
screenshots of the phone with its real decoder (gate/scan/decode.py) and deciding with its real
pipeline. The gate's clock is set by the test, so "two periods later" takes no waiting.

``TESSERA_WALLET_SHOTS=DIR`` also saves the layout test's screenshots there (how
docs/wallet-390x844.png and docs/wallet-1366x768.png are made).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.async_api import Browser, Page, expect

from gate.checkin.decision import Decision
from gate.checkin.pipeline import Pipeline
from gate.scan.decode import decode_frame, make_decoder
from gate.scan.settings import ScanSettings
from gate.sync.worker import SyncWorker, WorkerConfig
from shared.base45 import b45decode, b45encode
from shared.errors import RejectReason
from shared.rotating import HOLDER_DOMAIN, PASS_SIZE, PREFIX, parse_code
from shared.ticket import public_raw
from tessera_dev.sample_event import Clock
from tests.conftest import Rabbit
from tests.support.chromium import chromium_browser  # noqa: F401  (the fixture)
from tests.support.live_syncd import (  # noqa: F401  (new_organiser_api: the fixture)
    enrolled_gate,
    event_with_list,
    new_organiser_api,
)
from tests.syncd.conftest import db_url  # noqa: F401  (the fixture)
from tests.syncd.servekit import Served, running_syncd

R = RejectReason
PERIOD = 10
PHONE = (390, 844)
LIST = "external_ref,holder_name,email,category,zones,valid_from,valid_until\n"
SHOTS = "TESSERA_WALLET_SHOTS"
QR_WIDTH = {PHONE: 390, (1366, 768): 650}
"""The code's width in CSS pixels: 65 modules (version 10's 57 and the quiet zone) of 6 pixels
on the phone, the full width; of 10 on the laptop, the most that fits 768 less the page's
padding and the countdown bar."""


@dataclass
class Ticket:
    """A rotating event's ticket and its claim link, made by the organiser."""

    event_id: int
    ticket_id: int
    url: str


@dataclass
class Door:
    """A gate enrolled with syncd: its pipeline decides at ``clock.now``."""

    pipeline: Pipeline
    worker: SyncWorker
    clock: Clock

    async def judge(self, text: str, at: float) -> Decision:
        self.clock.now = at
        return await self.pipeline.process(text)


@pytest.fixture
def server(db_url: str, rabbit: Rabbit) -> Iterator[Served]:  # noqa: F811
    """syncd that lets a link move its ticket to another phone at once (a lost phone)."""
    with running_syncd(db_url, rabbit, SYNCD_WALLET_RECLAIM_SECONDS="0") as running:
        yield running


async def rotating_ticket(api: httpx.AsyncClient) -> Ticket:
    """An event that requires rotating codes (every PERIOD s), one ticket, its wallet link."""
    eid, (listed,) = await event_with_list(
        api,
        LIST + "R1,Ada Lovelace,,Weekend pass,,,\n",
        name="Harbour Lights",
        venue="Pier 5, Rotterdam",
        timezone="Europe/Amsterdam",
        starts_at="2026-06-13T19:30:00+02:00",
        zones=["Main"],
        rotating=True,
        rotation_period=PERIOD,
    )
    link = await api.post(f"/api/v1/events/{eid}/tickets/{listed['ticket_id']}/wallet-link")
    assert link.status_code == 201, link.text
    return Ticket(eid, listed["ticket_id"], link.json()["url"])


@asynccontextmanager
async def door(api: httpx.AsyncClient, event_id: int, data_dir: Path) -> AsyncIterator[Door]:
    """A gate enrolled with syncd as `gate enroll` does it (credential, keys, snapshot)."""
    async with enrolled_gate(api, event_id, data_dir, "Door 1") as gate, gate.client() as client:
        config = replace(WorkerConfig.from_settings(gate.settings), long_poll=0.0)
        clock = Clock(time.time())
        pipeline = Pipeline(gate.store, gate.settings, clock=clock)
        yield Door(pipeline, SyncWorker(gate.store, client, config), clock)


async def phone(browser: Browser, url: str, clock_error: float = 0.0) -> Page:
    """A new phone (its clock ``clock_error`` seconds off) opens the claim link and shows a live
    code. Anything the page's CSP refuses would be a console error: there must be none."""
    context = await browser.new_context(viewport={"width": PHONE[0], "height": PHONE[1]})
    if clock_error:
        await context.clock.install(time=time.time() + clock_error)  # ticks on from there
    page = await context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.on("pageerror", lambda e: refused.append(str(e)))
    await page.goto(url)
    await live(page)
    assert "#claim" not in page.url  # the token is not left in the address bar
    assert not refused, refused
    return page


async def live(page: Page) -> None:
    await expect(page.locator("body")).to_have_attribute("data-state", "live")
    await expect(page.locator("#qr")).to_have_attribute("data-code", re.compile("^T2:"))


async def picture(page: Page) -> tuple[str, float, bytes]:
    """What the gate's decoder reads in a screenshot of the phone, when it was taken, the PNG."""
    png = await page.screenshot()
    taken = time.time()
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    texts = decode_frame(image, make_decoder("zxing"), ScanSettings())
    assert len(texts) == 1, texts
    return texts[0], taken, png


def signed_by(text: str, key: Ed25519PrivateKey, *, bind: bool = False) -> str:
    """``text``'s pass and step signed by ``key`` instead of the phone's: a copied pass. With
    ``bind``, ``key`` also replaces the holder key in the pass (the event signature breaks)."""
    body = b45decode(text[len(PREFIX) :])[: PASS_SIZE + 4]
    if bind:
        body = body[:31] + public_raw(key.public_key()) + body[63:]
    return PREFIX + b45encode(body + key.sign(HOLDER_DOMAIN + body))


async def test_the_gate_admits_a_screenshot_of_the_live_code_and_nothing_stale_or_copied(
    api: httpx.AsyncClient, browser: Browser, tmp_path: Path
) -> None:
    """Scenario: Ada opens her link; the door (enrolled after her claim) reads her phone's
    screen and admits her. The same picture two periods later, her pass signed by a key other
    than her phone's, and her pass rebound to another key are all refused."""
    ticket = await rotating_ticket(api)
    page = await phone(browser, ticket.url)
    await expect(page.locator("#event-name")).to_have_text("Harbour Lights")
    await expect(page.locator("#holder")).to_have_text("Ada Lovelace")
    await expect(page.locator("#ticket-no")).to_have_text(f"Ticket {ticket.ticket_id}")
    await expect(page.locator("#clock-warning")).to_be_hidden()
    text, taken, _ = await picture(page)
    assert parse_code(text).ticket_id == ticket.ticket_id
    async with door(api, ticket.event_id, tmp_path / "gate") as gate:
        admitted = await gate.judge(text, taken)
        assert (admitted.outcome, admitted.holder) == ("admit", "Ada Lovelace")
        stale = await gate.judge(text, taken + 2 * PERIOD)
        assert (stale.outcome, stale.reason) == ("deny", R.code_expired)
        other = Ed25519PrivateKey.generate()
        copied = await gate.judge(signed_by(text, other), taken)
        assert (copied.outcome, copied.reason) == ("deny", R.bad_holder_signature)
        rebound = await gate.judge(signed_by(text, other, bind=True), taken)
        assert (rebound.outcome, rebound.reason) == ("deny", R.bad_signature)


async def test_a_phone_with_a_wrong_clock_warns_and_its_code_still_admits(
    api: httpx.AsyncClient, browser: Browser, tmp_path: Path
) -> None:
    """Scenario: Ada's phone clock is 45 s behind. The page tells her to fix it, and the code it
    shows carries syncd's step (the offset measured at the claim), so the door admits it."""
    ticket = await rotating_ticket(api)
    page = await phone(browser, ticket.url, clock_error=-45)
    await expect(page.locator("#clock-warning")).to_have_text(
        "Your phone's clock is 45 s behind: codes are corrected, but set the clock"
        " automatically in Settings."
    )
    text, taken, _ = await picture(page)
    async with door(api, ticket.event_id, tmp_path / "gate") as gate:
        assert (await gate.judge(text, taken)).outcome == "admit"


async def test_after_a_second_phone_claims_the_first_phones_codes_are_refused(
    api: httpx.AsyncClient, browser: Browser, tmp_path: Path
) -> None:
    """Scenario: the door is enrolled before anyone claims. Ada's first phone claims and is let
    in; she claims again on a new phone (the old one lost). Once the door has synced, the old
    phone's live code is refused as reissued, the new phone's is the ticket (already inside),
    and the old phone, opened again, says the ticket moved."""
    ticket = await rotating_ticket(api)
    async with door(api, ticket.event_id, tmp_path / "gate") as gate:
        first = await phone(browser, ticket.url)
        await gate.worker.pull_once()
        text, taken, _ = await picture(first)
        assert (await gate.judge(text, taken)).outcome == "admit"
        second = await phone(browser, ticket.url)
        assert await gate.worker.pull_once() >= 1
        text, taken, _ = await picture(first)
        old = await gate.judge(text, taken)
        assert (old.outcome, old.reason) == ("deny", R.reissued)
        text, taken, _ = await picture(second)
        assert (await gate.judge(text, taken)).reason == R.already_inside
    await first.reload()
    await expect(first.locator("body")).to_have_attribute("data-state", "moved")
    await expect(first.locator("#notice-title")).to_have_text(
        "This ticket was moved to another phone"
    )
    await expect(first.locator("#qr")).not_to_have_attribute("data-code", re.compile("."))


async def test_the_code_fills_a_phone_and_a_laptop_and_opens_offline(
    api: httpx.AsyncClient, browser: Browser
) -> None:
    """At 390x844 the code spans the screen's width with the words above and below it, all on
    one screen; at 1366x768 it is as tall as the window beside them. Each picture decodes.
    Offline, a reload shows the code again (the service worker's copy)."""
    ticket = await rotating_ticket(api)
    page = await phone(browser, ticket.url)
    for (width, height), qr_width in QR_WIDTH.items():
        await page.set_viewport_size({"width": width, "height": height})
        qr = page.locator("#qr")
        await expect(qr).to_have_js_property("width", qr_width)
        box = await qr.bounding_box()
        assert box is not None and box["width"] == box["height"]
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
        assert box["y"] >= 0 and box["y"] + box["height"] <= height
        for words in ("#event-name", "#holder", "#ticket-no"):
            where = await page.locator(words).bounding_box()
            assert where is not None and where["y"] + where["height"] <= height, words
        text, _, png = await picture(page)
        assert text.startswith(PREFIX)
        save_shot(png, f"wallet-{width}x{height}.png")
    assert await page.evaluate("navigator.serviceWorker.ready.then((r) => !!r.active)")
    await page.context.set_offline(True)
    await page.reload()
    await live(page)


def save_shot(png: bytes, name: str) -> None:
    folder = os.environ.get(SHOTS)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_bytes(png)
