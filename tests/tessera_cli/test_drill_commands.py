"""``tessera gate list`` and ``tessera stats`` show each gate's last pre-doors drill (against a
real in-process syncd on a TCP port, Postgres and RabbitMQ)."""

from __future__ import annotations

import json
import time

from aiohttp.test_utils import TestClient, TestServer

from syncd.app import create_app
from syncd.settings import SyncdSettings
from tessera_cli.__main__ import cli as tessera_cli
from tests.support.cli import run
from tests.syncd.conftest import Org
from tests.syncd.gatekit import enrolled_gate, event_with_tickets


async def test_gate_list_and_stats_show_the_last_drill(settings: SyncdSettings, org_a: Org) -> None:
    async with TestServer(create_app(settings)) as server, TestClient(server) as client:
        env = {
            "TESSERA_CLI_URL": str(server.make_url("/")),
            "TESSERA_CLI_TOKEN": org_a.tokens["viewer"],
        }
        eid, _ = await event_with_tickets(client, org_a)
        north = await enrolled_gate(client, org_a, eid, "North")
        await enrolled_gate(client, org_a, eid, "South")
        items = [
            {"name": "list", "status": "ok", "figure": "3 tickets", "detail": ""},
            {"name": "clock", "status": "warn", "figure": "gate clock 4.0 s behind", "detail": ""},
        ]
        body = {"ran_at": time.time(), "seconds": 1.2, "items": items}
        resp = await client.post("/api/v1/gate/drill", json=body, headers=north.h())
        assert resp.status == 200, await resp.text()

        listed = (await run(tessera_cli, ["gate", "list", str(eid)], env)).stdout.splitlines()
        rows = {line.split("\t")[1]: line for line in listed}
        assert "\tdrill amber 20" in rows["North"] and rows["North"].endswith(" (clock)")
        assert rows["South"].endswith("\tnever drilled")

        shown = (await run(tessera_cli, ["stats", str(eid)], env)).stdout
        assert "drills: green 0  amber 1  red 0  never 1" in shown
        north_line = next(line for line in shown.splitlines() if line.strip().startswith("North"))
        assert "drill amber " in north_line and "(clock)" in north_line
        raw = json.loads((await run(tessera_cli, ["stats", str(eid), "--json"], env)).stdout)
        assert raw["drills"] == {"green": 0, "amber": 1, "red": 0, "never": 1}
