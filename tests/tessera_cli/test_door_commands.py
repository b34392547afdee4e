"""``tessera gate create/list/code/revoke``, ``conflicts``, ``stats`` and ``watch`` against a real
in-process syncd (real TCP port), Postgres and RabbitMQ."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import aio_pika
from aiohttp.test_utils import TestClient, TestServer

from syncd.app import create_app
from syncd.settings import SyncdSettings
from tests.conftest import Rabbit
from tests.support.cli import Tessera
from tests.syncd.conftest import Org
from tests.syncd.gatekit import Gate, event_with_tickets, send


async def _bound_queue(rabbit: Rabbit, exchange: str) -> str:
    """The watcher's durable queue, bound before anything is published (nothing is missed)."""
    name = rabbit.queue("cli-watch")
    conn = await aio_pika.connect(rabbit.url)
    async with conn:
        channel = await conn.channel()
        await channel.declare_exchange(exchange, passive=True)
        queue = await channel.declare_queue(
            name, durable=True, arguments={"x-dead-letter-exchange": f"{exchange}.dlx"}
        )
        await queue.bind(exchange, "checkin.*")
    return name


async def test_gate_commands_stats_conflicts_and_watch(
    settings: SyncdSettings, org_a: Org, rabbit: Rabbit
) -> None:
    async with TestServer(create_app(settings)) as server, TestClient(server) as client:
        env = {
            "TESSERA_CLI_URL": str(server.make_url("/")),
            "TESSERA_CLI_TOKEN": org_a.tokens["admin"],
        }

        tessera = Tessera(server, org_a.tokens["admin"], env)

        eid, tickets = await event_with_tickets(client, org_a)
        queue = await _bound_queue(rabbit, settings.amqp_exchange)
        # a real process: CliRunner swaps sys.stdout globally, so no second one in a thread
        watcher = subprocess.Popen(  # noqa: ASYNC220 (Popen only starts it)
            [
                sys.executable,
                "-m",
                "tessera_cli",
                "watch",
                "--exchange",
                settings.amqp_exchange,
                "--limit",
                "3",
                "--key",
                "checkin.*",
                "--queue",
                queue,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        gates = []
        for name in ("North", "South"):
            code = (await tessera("gate", "create", str(eid), name)).stdout.strip()
            resp = await client.post("/api/v1/gate/enroll", json={"code": code})
            body = await resp.json()
            gates.append(Gate(body["gate_id"], name, body["credential"]))
        listed = (await tessera("gate", "list", str(eid))).stdout
        assert "North" in listed and "enrolled" in listed
        north, south = gates
        now = time.time()
        await send(client, north, [north.checkin(tickets[0], at=now - 5)])
        await send(client, south, [south.checkin(tickets[0], at=now - 60)])
        out, err = await asyncio.to_thread(watcher.communicate, timeout=60)
        assert watcher.returncode == 0, err
        assert out.count("in  ticket") == 2 and "CONFLICT" in out
        assert "ticket" in (await tessera("conflicts", str(eid))).stdout
        stats = (await tessera("stats", str(eid))).stdout
        assert "admitted 2  inside 1" in stats and "conflicts 1" in stats
        assert (await tessera("gate", "code", str(eid), str(north.gate_id))).stdout.count("-") == 3
        await tessera("gate", "revoke", str(eid), str(north.gate_id))
        assert (await send(client, north, [north.checkin(tickets[1])]))[0] == 401
        assert "revoked" in (await tessera("gate", "list", str(eid))).stdout
        for args in (["gate", "create"], ["stats"], ["conflicts"], ["watch"]):
            await tessera(*args, "--help")
