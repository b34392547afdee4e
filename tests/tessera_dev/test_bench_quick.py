"""Every benchmark runs small (``--quick``) through its ``scripts/`` entry point, so none rots:
a bench that no longer starts, or no longer prints its figures, fails here. Nothing is timed;
the figures are only printed by the benches."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import AMQP_URL, PG_URL

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
# bench, extra options, a line its report always has
QUICK = [
    ("bench_gate", [], "decision latency ms:"),
    ("bench_lookup", [], "search '4242'"),
    ("bench_snapshot", [], "scans meanwhile:"),
    ("bench_scan", ["--decoders", "zxing", "--conditions", "clean", "glare"], "decode rate"),
    ("bench_scan", ["--decoders", "zxing", "--conditions", "screen", "t2_screen"], "T2 (QR v10)"),
    ("bench_scan", ["--hard", "--conditions", "tiny", "steep"], "empty 1280x720 frames"),
    ("bench_lists", [], "push 3: complete"),
    ("bench_relay", [], "duplicates 0"),
    ("bench_sync", [], "fan-out messages:"),
    ("bench_mesh", [], "propagation ms"),
    ("bench_fleet", [], "fleet: 200 gates, 10 events: stored"),
    ("bench_fleet", ["--mode", "long-poll"], "fleet: 200 gates, 10 events: stored"),
    ("bench_dashboard", [], "dashboard: 10 dashboards vs 10 long-polling gates: syncd CPU"),
    ("bench_stats", [], "figures agree with the loaded rows: admitted"),
]


@pytest.mark.parametrize(("bench", "extra", "line"), QUICK, ids=[q[0] for q in QUICK])
def test_bench_quick_run(bench: str, extra: list[str], line: str) -> None:
    env = {**os.environ, "TESSERA_TEST_DATABASE_URL": PG_URL, "TESSERA_TEST_AMQP_URL": AMQP_URL}
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / bench), "--quick", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert line in result.stdout


@pytest.mark.parametrize("bench", [q[0] for q in QUICK])
def test_bench_help_names_quick(bench: str) -> None:
    result = subprocess.run(
        [str(SCRIPTS / bench), "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "--quick" in result.stdout
    assert result.stdout.startswith(f"usage: {bench} ")


def test_bench_stats_checks_the_figures_and_drops_its_database() -> None:
    """bench_stats fails when figures() disagree with the rows it loaded, prints them per
    query, and leaves no database behind."""
    env = {**os.environ, "TESSERA_TEST_DATABASE_URL": PG_URL}
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_stats"), "--quick"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    agree = re.search(r"figures agree with the loaded rows: admitted ([\d,]+),", result.stdout)
    assert agree is not None and int(agree[1].replace(",", "")) > 0, result.stdout
    assert "| figures() | counts | presence | gates | per_minute |" in result.stdout
    dropped = re.findall(r"^dropped database (tessera_bench_stats_\w+)$", result.stdout, re.M)
    assert len(dropped) == 1, result.stdout
    assert not asyncio.run(_database_exists(dropped[0]))


async def _database_exists(name: str) -> bool:
    conn = await asyncpg.connect(PG_URL)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()
