"""scripts/demo, the README's way to see Tessera work, run as a user runs it: a real process that
starts syncd and two gates, and must end with every check passed and nothing left behind."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from shared.protocol import GATE_CREDENTIAL_PREFIX
from syncd.vault import TOKEN_PREFIX
from tests.conftest import AMQP_URL, PG_URL

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo"


def _demo(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TESSERA_TEST_DATABASE_URL": PG_URL, "TESSERA_TEST_AMQP_URL": AMQP_URL}
    return subprocess.run(
        [sys.executable, str(DEMO), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def _database_exists(name: str) -> bool:
    conn = await asyncpg.connect(PG_URL, timeout=10)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def _exchange_exists(name: str) -> bool:
    async with await aio_pika.connect(AMQP_URL, timeout=10) as conn:
        channel = await conn.channel()
        try:
            await channel.declare_exchange(name, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return False
        return True


def test_demo_runs_end_to_end_and_cleans_up() -> None:
    result = _demo()
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "[FAIL]" not in out
    assert "all checks passed" in out
    for line in (
        "South Door: network CUT",
        "South Door: network RESTORED",
        "[ok] South Door decided offline (syncd held 0 of its scans)",
        "[ok] North Door decided every scan as the script expects (7 scans)",
        "[ok] South Door decided every scan as the script expects (3 scans)",
        "[ok] admissions: at the gates 6 == in syncd 6",
        "[ok] checkin.performed: delivered 6 == admitted 6",
        "[ok] checkin.conflict: delivered 1 == conflicts in syncd 1",
        "stored check-ins 10: admitted 6, denied 4",
    ):
        assert line in out, line
    for reason in ("wrong_zone", "reissued", "bad_signature", "already_inside"):
        assert re.search(rf"DENY\s+{reason}: ", out), reason
    assert re.search(r"ticket \d+: admitted at South Door .* entered at North Door", out)
    assert re.search(r"checkin\.conflict\s+1\n", out)
    assert re.search(r"ADMIT\s+ok: .*\d+\.\d ms", out), "each decision shows its latency"
    assert "--code ****" in out, "the one-time enrolment code is masked"
    for prefix in (TOKEN_PREFIX, GATE_CREDENTIAL_PREFIX):
        assert prefix not in out + result.stderr, "tokens and credentials are never printed"

    database = re.search(r"throwaway database (tessera_demo_\w+)", out)
    exchange = re.search(r"private exchange '([\w.-]+)'", out)
    assert database and exchange
    assert not asyncio.run(_database_exists(database.group(1)))
    assert not asyncio.run(_exchange_exists(exchange.group(1)))
    assert re.search(r"demo finished in \d+\.\d s", out), "the demo prints its own elapsed time"


def test_demo_unreachable_database_fails_clearly() -> None:
    result = _demo("--database-url", "postgresql://postgres:postgres@127.0.0.1:1/postgres")
    assert result.returncode == 1
    assert "PostgreSQL is not reachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_help() -> None:
    result = _demo("--help", timeout=60)
    assert result.returncode == 0
    assert "--database-url" in result.stdout and "--keep" in result.stdout


def test_demo_checks_fail_when_the_exchange_lost_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's verdict can fail: one admission stored but never delivered is a FAIL."""
    from tessera_dev.demo.report import Checks, check_totals
    from tessera_dev.demo.services import Deliveries

    gates = {
        "North Door": [{"decision": "admit"}, {"decision": "deny"}],
        "South Door": [{"decision": "admit"}],
    }
    stats = {
        "admitted": 2,
        "denied": 1,
        "conflicts": 0,
        "gates": [
            {"name": "North Door", "admitted": 1, "exits": 0, "denied": 1},
            {"name": "South Door", "admitted": 1, "exits": 0, "denied": 0},
        ],
    }
    deliveries = Deliveries()
    for i, key in enumerate(["tickets.updated", "checkin.performed", "checkin.invalid"]):
        deliveries.add(str(i), key, {})
    deliveries.add("1", "checkin.performed", {})  # a redelivery is not a second message
    checks = Checks()
    check_totals(gates, stats, deliveries, checks)
    assert not checks.ok
    failed = [line for line in checks.lines() if "[FAIL]" in line]
    assert failed == ["  [FAIL] checkin.performed: delivered 1 != admitted 2"]
    assert deliveries.duplicates == 1
