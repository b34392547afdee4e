"""The gate's list from syncd carries each ticket's validity window: bundle, snapshot and feed.

Regression for issue 13.1 (a manual admit could not check the window: the list had none) and
13.11 (`tessera keys list` did not show the public key `gate trust` needs). The second test
goes all the way: a real syncd, the `tessera` CLI, then `gate trust`, `gate import-list` and
`gate admit` as subprocesses on an offline gate, which refuses an expired ticket by hand.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from shared.bundle import BundleReader, BundleTicket
from shared.protocol import ChangesPage
from shared.ticket import public_key_from_b64
from syncd.app import create_app
from syncd.settings import SyncdSettings
from tessera_cli.__main__ import cli as tessera_cli
from tests.gate.test_cli import gate
from tests.syncd.conftest import Org, create_event, push
from tests.syncd.gatekit import HEADER, changes, enrolled_gate

NOW = int(time.time())
PAST, SOON = NOW - 7 * 86_400, NOW - 86_400


async def _event(client: TestClient, org: Org) -> tuple[int, dict[str, int]]:
    """An event with R0 (no window) and R1 (a window that ended yesterday); ids by ref."""
    eid = (await create_event(client, org))["event_id"]
    rows = f"R0,Ann,,GA,,,\nR1,Bob,,GA,,{PAST},{SOON}\n"
    status, body = await push(client, org, eid, HEADER + rows)
    assert status == 200, body
    resp = await client.get(f"/api/v1/events/{eid}/tickets", headers=org.h())
    return eid, {t["external_ref"]: t["ticket_id"] for t in (await resp.json())["tickets"]}


async def _read_bundle(client: TestClient, org: Org, eid: int, data: bytes) -> list[BundleTicket]:
    resp = await client.get(f"/api/v1/events/{eid}/keys", headers=org.h())
    keys = (await resp.json())["keys"]
    ring = {bytes.fromhex(k["kid"]): public_key_from_b64(k["public_key"]) for k in keys}
    reader = BundleReader(io.BytesIO(data), ring)
    tickets = list(reader.tickets())
    reader.finish()
    return tickets


async def test_bundle_snapshot_and_feed_carry_the_window(client: TestClient, org_a: Org) -> None:
    eid, ids = await _event(client, org_a)
    windows = {ids["R0"]: (0, 0), ids["R1"]: (PAST, SOON)}
    north = await enrolled_gate(client, org_a, eid, "North")
    sources = [
        await client.get(f"/api/v1/events/{eid}/bundle", headers=org_a.h("organiser")),
        await client.get("/api/v1/gate/snapshot", headers=north.h()),
    ]
    for resp in sources:
        assert resp.status == 200, await resp.text()
        tickets = await _read_bundle(client, org_a, eid, await resp.read())
        assert {t.ticket_id: (t.valid_from, t.valid_until) for t in tickets} == windows

    page = ChangesPage.model_validate(await changes(client, north, ""))
    added = {c.ticket.ticket_id: c.ticket for c in page.changes if c.ticket}
    assert {t: (c.valid_from, c.valid_until) for t, c in added.items()} == windows

    later = SOON + 86_400 * 14
    status, body = await push(client, org_a, eid, HEADER + f"R1,Bob,,GA,,{PAST},{later}\n")
    assert status == 200, body
    moved = ChangesPage.model_validate(await changes(client, north, page.cursor))
    change = [c for c in moved.changes if c.ticket and c.ticket.ticket_id == ids["R1"]][-1]
    assert change.kind == "ticket.reissued" and change.ticket is not None
    assert (change.ticket.valid_from, change.ticket.valid_until) == (PAST, later)


async def test_keys_list_shows_what_gate_trust_pins(
    settings: SyncdSettings, org_a: Org, tmp_path: Path
) -> None:
    async with TestServer(create_app(settings)) as server, TestClient(server) as client:
        eid, ids = await _event(client, org_a)
        env = {
            "TESSERA_CLI_URL": str(server.make_url("/")),
            "TESSERA_CLI_TOKEN": org_a.tokens["organiser"],
        }

        async def tessera(*args: str) -> str:
            result = await asyncio.to_thread(
                CliRunner().invoke, tessera_cli, list(args), env=env, catch_exceptions=False
            )
            assert result.exit_code == 0, (args, result.output)
            return result.stdout

        kid, status, public_key = (await tessera("keys", "list", str(eid))).strip().split("\t")
        assert (len(kid), status) == (8, "active signer")
        bundle = tmp_path / "event.bundle"
        await tessera("bundle", str(eid), "-o", str(bundle), "--names")

    trusted = gate(tmp_path, "trust", public_key)
    assert trusted.returncode == 0 and kid in trusted.stdout, trusted.stderr
    loaded = gate(tmp_path, "import-list", "-q", str(bundle))
    assert "Loaded 2 tickets" in loaded.stdout, loaded.stderr
    decisions: dict[str, Any] = {
        ref: json.loads(gate(tmp_path, "admit", str(tid)).stdout) for ref, tid in ids.items()
    }
    assert decisions["R0"]["decision"] == "admit"
    assert (decisions["R1"]["decision"], decisions["R1"]["reason"]) == ("deny", "expired")
