"""Issue 19 end to end: an organiser watches the doors on the dashboard page in headless
Chromium, served by a real ``syncd serve``; the doors are real gates (enrolled with that syncd,
deciding with their real pipeline on the tickets' real QR texts, pushing with their real sync
worker). The page must move within 2 s of a push and agree with ``tessera stats``.

``TESSERA_DASHBOARD_SHOTS=DIR`` also saves the screenshots there (how
docs/dashboard-1366x768.png and docs/dashboard-390x844.png are made).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from gate.checkin.pipeline import Pipeline
from gate.store.db import Store
from gate.store.syncstate import unsynced_batch
from gate.sync.client import SyncClient
from gate.sync.worker import SyncWorker, WorkerConfig
from shared.protocol import DrillItem, DrillReport
from tessera_dev.sample_event import Clock
from tests.conftest import Rabbit
from tests.support.chromium import chromium_browser  # noqa: F401  (the fixture)
from tests.support.live_syncd import enrolled_gate, event_with_list, organiser_api
from tests.syncd.conftest import Org, db_url, make_org  # noqa: F401  (db_url: the fixture)
from tests.syncd.servekit import Served, running_syncd

LAPTOP = (1366, 768)
PHONE = (390, 844)
SHOTS = "TESSERA_DASHBOARD_SHOTS"
LIST = "external_ref,holder_name,email,category,zones,valid_from,valid_until\n"


@dataclass
class Door:
    """A real gate: its pipeline decides, its worker pushes, its client reports drills."""

    name: str
    pipeline: Pipeline
    worker: SyncWorker
    client: SyncClient
    store: Store
    clock: Clock

    async def scan(self, text: str, ago: float = 0.0) -> str:
        """The gate decides on ``text`` as it would have ``ago`` seconds before now."""
        self.clock.now = time.time() - ago
        return (await self.pipeline.process(text)).outcome


@dataclass
class World:
    event_id: int
    codes: list[str]  # each ticket's QR text
    north: Door
    vip: Door


@pytest.fixture
def server(db_url: str, rabbit: Rabbit) -> Iterator[Served]:  # noqa: F811
    with running_syncd(db_url, rabbit, SYNCD_DASHBOARD_INTERVAL="0.3") as running:
        yield running


@pytest.fixture
async def org(db_url: str) -> Org:  # noqa: F811
    return await make_org(db_url, "Harbour Events")


@pytest.fixture
async def api(server: Served, org: Org) -> AsyncIterator[httpx.AsyncClient]:
    async with organiser_api(server, org) as client:
        yield client


@asynccontextmanager
async def door(
    api: httpx.AsyncClient, event_id: int, name: str, zone: str, data: Path
) -> AsyncIterator[Door]:
    """A gate enrolled with syncd as `gate enroll` does it (credential, keys, snapshot)."""
    async with enrolled_gate(api, event_id, data, name, zone=zone) as gate, gate.client() as client:
        config = replace(WorkerConfig.from_settings(gate.settings), long_poll=0.0)
        clock = Clock(time.time())
        pipeline = Pipeline(gate.store, gate.settings, clock=clock)
        worker = SyncWorker(gate.store, client, config)
        yield Door(name, pipeline, worker, client, gate.store, clock)


@asynccontextmanager
async def world(api: httpx.AsyncClient, tmp_path: Path) -> AsyncIterator[World]:
    """An event (zones Main and VIP, capacity 50 in all and 30 in Main), forty tickets, two
    real gates and one created but never enrolled."""
    rows = "".join(f"R{i},Guest {i},,{'VIP' if i > 7 else 'GA'},,,\n" for i in range(40))
    eid, listed = await event_with_list(
        api,
        LIST + rows,
        name="Harbour Lights",
        venue="Pier 5",
        timezone="Europe/Amsterdam",
        zones=["Main", "VIP"],
        capacity={"*": 50, "Main": 30},
    )
    tickets = sorted(t["ticket_id"] for t in listed)
    codes = [(await api.get(f"/api/v1/events/{eid}/tickets/{t}/qr")).text.strip() for t in tickets]
    async with AsyncExitStack() as stack:
        north = await stack.enter_async_context(door(api, eid, "North", "Main", tmp_path / "n"))
        vip = await stack.enter_async_context(door(api, eid, "VIP door", "VIP", tmp_path / "v"))
        side = await api.post(f"/api/v1/events/{eid}/gates", json={"name": "Side", "zone": "Main"})
        assert side.status_code == 201
        yield World(eid, codes, north, vip)


async def dashboard(browser: Browser, base: str, size: tuple[int, int]) -> tuple[Page, list[str]]:
    """The page in a fresh browser context; anything its CSP refuses, or any script error,
    lands in the returned list (it must stay empty)."""
    context = await browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if _refused(m.type, m.text) else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{base}/dashboard/")
    return page, errors


def _refused(kind: str, text: str) -> bool:
    """A console error, except the browser's note of an answer with an error status (the
    wrong token's 401 is one: the page shows it)."""
    return kind == "error" and not text.startswith("Failed to load resource")


async def sign_in(page: Page, token: str) -> None:
    await page.fill("#token", token)
    await page.click("#signin-button")


async def drill(gate: Door, statuses: list[str]) -> None:
    items = [DrillItem(name=f"check_{i}", status=s) for i, s in enumerate(statuses)]  # type: ignore[arg-type]
    report = DrillReport(ran_at=time.time(), seconds=4.0, items=items)
    await gate.client.drill(report, 10)


def tessera_stats(base: str, token: str, event_id: int) -> dict:
    """What `tessera stats EVENT --json` prints, run as the organiser runs it."""
    env = {**os.environ, "TESSERA_CLI_URL": base, "TESSERA_CLI_TOKEN": token}
    out = subprocess.run(
        [sys.executable, "-m", "tessera_cli", "stats", str(event_id), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    figures: dict = json.loads(out.stdout)
    return figures


async def shown(page: Page) -> dict:
    """The figures as the page shows them (text of each element)."""
    figures: dict = await page.evaluate(
        """() => {
        const text = (sel, root = document) => root.querySelector(sel).textContent.trim();
        const num = (s) => Number(s.replace(/[^0-9]/g, ""));
        const gates = {};
        for (const row of document.querySelectorAll("#gate-rows tr[data-gate-id]")) {
            gates[row.dataset.gateId] = {
                status: text(".status", row), admitted: num(text(".admitted", row)),
                denied: num(text(".denied", row)), conflicts: num(text(".conflicts", row)),
                backlog: text(".backlog", row), drill: row.querySelector(".drill").dataset.result,
            };
        }
        const zones = {};
        for (const row of document.querySelectorAll("#zones li[data-zone]")) {
            zones[row.dataset.zone] = num(text(".inside", row));
        }
        const denials = {};
        for (const row of document.querySelectorAll("#denials li[data-reason]")) {
            denials[row.dataset.reason] = num(text(".n", row));
        }
        return {
            inside: num(text("#inside")), admitted: num(text("#admitted")),
            denied: num(text("#denied")), conflicts: num(text("#conflicts")),
            chart: Number(document.querySelector("#chart").dataset.total),
            gates, zones, denials,
        };
    }"""
    )
    return figures


def save_shot(png: bytes, name: str) -> None:
    folder = os.environ.get(SHOTS)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_bytes(png)


async def fits(page: Page, width: int) -> None:
    """Nothing wider than the screen: no sideways scrolling on a laptop or a phone."""
    scroll = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"page is {scroll} px wide on a {width} px screen"


async def test_an_organiser_watches_the_doors_live_and_the_page_agrees_with_tessera_stats(
    api: httpx.AsyncClient, browser: Browser, server: Served, org: Org, tmp_path: Path
) -> None:
    """Scenario: doors opened 40 minutes ago (18 admitted since, the chart shows them by minute).
    The control room opens the dashboard (a wrong token first: refused, not kept). North
    admits three more; within 2 s the page and its chart show them. The VIP
    door, offline from the others, admits one of the same tickets (a conflict), refuses a
    second scan, and has pushed only part of its journal (two unsynced). Every figure on the
    page is then what `tessera stats` prints, at 1366x768 and at 390x844."""
    base = f"http://127.0.0.1:{server.port}"
    async with world(api, tmp_path) as w:
        for i, code in enumerate(w.codes[10:24]):  # the first 40 minutes
            assert await w.north.scan(code, ago=2400 - 160 * i) == "admit"
        for i, code in enumerate(w.codes[24:28]):
            assert await w.vip.scan(code, ago=1500 - 300 * i) == "admit"
        await w.north.worker.drain()
        await w.vip.worker.drain()
        history = 18
        page, errors = await dashboard(browser, base, LAPTOP)
        await sign_in(page, "tsr_" + "x" * 43)
        await expect(page.locator("#signin-error")).to_contain_text("refused")
        assert await page.evaluate("sessionStorage.length") == 0
        await sign_in(page, org.tokens["viewer"])
        await expect(page.locator("#live")).to_have_attribute("data-kind", "ok")
        assert (
            await page.evaluate("sessionStorage.getItem('tessera.token')") == org.tokens["viewer"]
        )
        await expect(page.locator("#event-select")).to_have_value(str(w.event_id))
        await expect(page.locator("#admitted")).to_have_text(str(history))
        await drill(w.north, ["ok", "ok", "ok", "skip"])
        await drill(w.vip, ["ok", "warn", "ok"])
        blank = await page.locator("#chart canvas").screenshot()

        assert [await w.north.scan(c) for c in w.codes[:3]] == ["admit"] * 3
        await w.north.worker.drain()
        await expect(page.locator("#admitted")).to_have_text(str(history + 3), timeout=2000)
        total = str(history + 3)
        await expect(page.locator("#chart")).to_have_attribute("data-total", total, timeout=2000)
        assert await page.locator("#chart canvas").screenshot() != blank

        outcomes = [await w.vip.scan(c) for c in (w.codes[0], w.codes[8], w.codes[8], w.codes[9])]
        assert outcomes == ["admit", "admit", "deny", "admit"]
        await w.vip.worker.push_batch(await unsynced_batch(w.vip.store, 2))
        await expect(page.locator("#conflicts")).to_have_text("1", timeout=2000)
        vip_row = page.locator("#gate-rows tr", has_text="VIP door")
        await expect(vip_row.locator(".backlog")).to_have_text("2")
        await expect(vip_row.locator(".drill")).to_have_attribute("data-result", "amber")

        stats = tessera_stats(base, org.tokens["viewer"], w.event_id)
        seen = await shown(page)
        assert (
            (seen["inside"], seen["admitted"], seen["denied"], seen["conflicts"])
            == (stats["inside"], stats["admitted"], stats["denied"], stats["conflicts"])
            == (history + 4, history + 5, 0, 1)
        )
        assert seen["chart"] == sum(m["admitted"] for m in stats["per_minute"])
        assert seen["zones"] == {z: f["inside"] for z, f in stats["zones"].items()}
        assert seen["denials"] == stats["denials"]
        by_id = {str(g["gate_id"]): g for g in stats["gates"]}
        assert set(seen["gates"]) == set(by_id)
        for gate_id, row in seen["gates"].items():
            figures = by_id[gate_id]
            assert (row["admitted"], row["denied"], row["conflicts"]) == (
                figures["admitted"],
                figures["denied"],
                figures["conflicts"],
            )
            assert row["drill"] == (figures["last_drill"] or {"result": "never"})["result"]
        statuses = {by_id[g]["name"]: r["status"] for g, r in seen["gates"].items()}
        assert statuses == {"North": "online", "VIP door": "online", "Side": "not enrolled"}

        await w.vip.worker.drain()  # the rest: the refusal arrives too
        await expect(page.locator("#denied")).to_have_text("1", timeout=2000)
        await expect(vip_row.locator(".backlog")).to_have_text("0")
        stats = tessera_stats(base, org.tokens["viewer"], w.event_id)
        seen = await shown(page)
        assert (
            (seen["admitted"], seen["denied"], seen["denials"])
            == (stats["admitted"], stats["denied"], stats["denials"])
            == (history + 6, 1, {"already_inside": 1})
        )
        await expect(page.locator("#inside-capacity")).to_have_text("of 50 (46 %)")

        for width, height in (LAPTOP, PHONE):
            await page.set_viewport_size({"width": width, "height": height})
            await page.wait_for_timeout(300)  # the chart follows its box
            await fits(page, width)
            save_shot(await page.screenshot(), f"dashboard-{width}x{height}.png")
            (tmp_path / f"full-{width}.png").write_bytes(await page.screenshot(full_page=True))
        assert not errors, errors


async def test_another_organisation_sees_nothing_of_the_event(
    api: httpx.AsyncClient,
    browser: Browser,
    server: Served,
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Org B's viewer signs in to the same syncd: no event of org A is listed, the stream of
    A's event answers 404 to B's token, and nothing of A's appears on the page."""
    base = f"http://127.0.0.1:{server.port}"
    other = await make_org(db_url, "Rival Shows")
    async with world(api, tmp_path) as w:
        page, errors = await dashboard(browser, base, PHONE)
        await sign_in(page, other.tokens["viewer"])
        await expect(page.locator("#no-events")).to_be_visible()
        status = await page.evaluate(
            """async ([id, token]) => (await fetch(`/api/v1/events/${id}/dashboard/stream`,
                   {headers: {Authorization: `Bearer ${token}`}})).status""",
            [w.event_id, other.tokens["viewer"]],
        )
        assert status == 404
        body = await page.content()
        assert "Harbour" not in body and "North" not in body
        assert not errors, errors
