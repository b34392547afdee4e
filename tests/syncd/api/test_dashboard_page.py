"""The dashboard page as syncd serves it: a strict CSP, no inline code, nothing from outside,
the vendored chart library as VENDORED.md describes it, and the proxy's stream location."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from aiohttp.test_utils import TestClient

from syncd.api.dashboard import STATIC
from syncd.settings import SyncdSettings

ROOT = Path(__file__).resolve().parents[3]


async def test_the_page_is_served_with_a_csp_that_runs_only_its_own_scripts(
    client: TestClient,
) -> None:
    resp = await client.get("/dashboard/")
    assert resp.status == 200 and resp.content_type == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "connect-src 'self'" in csp and "unsafe" not in csp
    assert resp.headers["Cache-Control"] == "no-store"
    for name, kind in (
        ("dashboard.js", "text/javascript"),
        ("render.js", "text/javascript"),
        ("dashboard.css", "text/css"),
        ("vendor/uplot.js", "text/javascript"),
        ("vendor/uplot.css", "text/css"),
        ("vendor/LICENSE", "text/plain"),
    ):
        file = await client.get(f"/dashboard/{name}")
        assert (file.status, file.content_type) == (200, kind), name
    for missing in ("..%2Fapp.py", "dashboard.py", "nothing.js", "vendor/nothing.js"):
        assert (await client.get(f"/dashboard/{missing}")).status == 404, missing


def test_the_page_has_no_inline_code_and_calls_nothing_outside() -> None:
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    for path in STATIC.rglob("*"):
        if path.suffix in (".html", ".js", ".css") and path.parent.name != "vendor":
            text = path.read_text()
            assert not re.search(r"https?://", text), path.name
            assert "innerHTML" not in text, path.name  # names and reasons go in as text
    code = (STATIC / "vendor" / "uplot.js").read_text()
    assert not re.search(r"(fetch|XMLHttpRequest|importScripts)\s*\(", code)


def test_the_vendored_files_are_the_ones_vendored_md_names() -> None:
    notes = (STATIC / "vendor" / "VENDORED.md").read_text()
    for name in ("uplot.js", "uplot.css"):
        digest = hashlib.sha256((STATIC / "vendor" / name).read_bytes()).hexdigest()
        assert f"`{name}` sha256 `{digest}`" in notes, name
    assert "MIT" in (STATIC / "vendor" / "LICENSE").read_text()


def test_the_proxy_passes_the_dashboard_stream_unbuffered() -> None:
    """A buffering proxy would hold the figures until its buffer fills."""
    text = (ROOT / "deploy" / "proxy" / "nginx.conf").read_text()
    block = text.split("location ~ ^/api/v1/events/[0-9]+/dashboard/stream$", 1)[1]
    block = block.split("}", 1)[0]
    assert "proxy_buffering off" in block
    timeout = re.search(r"proxy_read_timeout\s+(\d+)s", block)
    refresh = SyncdSettings.model_fields["dashboard_refresh"].default
    assert timeout and int(timeout.group(1)) >= 3 * refresh
