"""Issue 12.10: the printable sheet under its Content-Security-Policy, in real Chromium: it
still renders (inline CSS, inline SVG QR codes), and a script smuggled into it would not run."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from playwright.async_api import async_playwright

from tests.support.chromium import CHROMIUM_ARGS
from tests.syncd.conftest import Org, create_event, push


async def test_sheet_renders_under_its_csp_and_runs_no_script(
    client: TestClient, org_a: Org
) -> None:
    """Scenario: a holder named ``<script>`` (escaped today; the CSP is the second wall)."""
    event = await create_event(client, org_a, name="Gala")
    eid = event["event_id"]
    csv = "external_ref,holder_name\nA1,Ann\nB2,<script>document.title='pwned'</script>\n"
    status, body = await push(client, org_a, eid, csv)
    assert status == 200, body
    url = str(client.make_url(f"/api/v1/events/{eid}/sheet.html"))
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(extra_http_headers=org_a.h("organiser"))
            messages: list[str] = []
            page.on("console", lambda m: messages.append(m.text))
            resp = await page.goto(url)
            assert resp is not None and resp.status == 200
            policy = await resp.header_value("content-security-policy")
            assert policy is not None and "default-src 'none'" in policy
            assert await page.title() == "Gala"
            assert await page.locator(".t svg").count() == 2
            box = await page.locator(".t svg").first.bounding_box()
            assert box is not None and box["width"] > 50  # the inline style applied
            # Inject a script the way a successful XSS would: the policy refuses it.
            await page.evaluate(
                "() => { const s = document.createElement('script');"
                " s.textContent = \"document.title = 'pwned'\"; document.body.appendChild(s); }"
            )
            assert await page.title() == "Gala"
            assert any("Content Security Policy" in m for m in messages), messages
            assert not [m for m in messages if "style" in m.lower()], messages
        finally:
            await browser.close()
