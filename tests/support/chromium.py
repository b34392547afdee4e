"""The Chromium flags the display tests share with the kiosk: one list, read from deploy/.

``deploy/gate/chromium-flags.env`` (a systemd EnvironmentFile, installed for
``tessera-kiosk.service``) holds the flags that keep Chromium off the network; the tests launch
Chromium with exactly those, plus what headless-as-root needs. Why each flag is there is written in
that file. ``chromium_browser`` is the ``browser`` fixture: Chromium launched with them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

FLAGS_FILE = Path(__file__).resolve().parents[2] / "deploy" / "gate" / "chromium-flags.env"
VARIABLE = "TESSERA_CHROMIUM_FLAGS"


def kiosk_flags(path: Path = FLAGS_FILE) -> list[str]:
    """The flags in ``path``'s ``TESSERA_CHROMIUM_FLAGS=`` line (backslash continues a line)."""
    logical, pending = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not pending and raw.lstrip().startswith("#"):
            continue
        pending += raw[:-1] + " " if raw.endswith("\\") else raw
        if not raw.endswith("\\"):
            logical.append(pending)
            pending = ""
    values = [line.split("=", 1)[1] for line in logical if line.startswith(f"{VARIABLE}=")]
    if len(values) != 1:
        raise ValueError(f"{path}: expected one {VARIABLE}= line, found {len(values)}")
    return values[0].split()


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", *kiosk_flags()]


def local_name_args(name: str) -> list[str]:
    """Flags that make ``name`` resolve to 127.0.0.1 and reach it directly.

    Behind a proxy (``http_proxy``, as inside scripts/fresh-check) Chromium would send the name to
    the proxy instead of resolving it, so the proxy is named explicitly with ``name`` bypassed:
    every other host still goes through it (and shows up in its log).
    """
    args = [f"--host-resolver-rules=MAP {name} 127.0.0.1"]
    proxy = os.environ.get("http_proxy") or os.environ.get("HTTP_PROXY")
    if proxy:
        args += [f"--proxy-server={proxy}", f"--proxy-bypass-list={name}"]
    return args


@pytest.fixture(name="browser")
async def chromium_browser() -> AsyncIterator[Browser]:
    """``browser``: headless Chromium with these flags (a test module imports this fixture)."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        await browser.close()
