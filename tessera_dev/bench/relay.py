"""Benchmark: the outbox relay alone, a real ``syncd serve`` between Postgres and RabbitMQ.

Makes a fresh database (TESSERA_TEST_DATABASE_URL) and an exchange of its own, starts the lean
consumer of tessera_dev/bench/consumer.py in a process of its own, and then either

* **drain** (default): fills the outbox with ``--rows`` check-in-shaped rows, starts syncd and
  times the relay publishing the backlog (first to last arrival at the consumer); or
* **steady** (``--rate R``): starts syncd on an empty outbox and inserts R rows a second (100
  small transactions a second, like pushes committing) for ``--seconds``; each row's latency is
  from its insert's commit (as this script saw it return) to its arrival at the consumer.

Prints messages/s, commit->consumer p50/p99 (steady mode), publish->confirm per round (from
syncd's ``/metrics``: bucket upper bounds; "n/a" for a relay without that histogram),
duplicates and losses, and the CPU of syncd, Postgres, RabbitMQ, the bench (this script), its
consumer and the rest of the machine over the measured interval (100 % = one core).
``BENCH_PROFILE=1`` runs syncd under cProfile (/tmp/syncd-relay-<port>.prof).

    scripts/bench_relay [--rows 100000] [--batch N]
    scripts/bench_relay --rate 5000 [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aio_pika
import asyncpg
import httpx

from syncd.outbox.topology import declare_topology
from tessera_dev.bench.consumer import ConsumerProcess, Received
from tessera_dev.bench.kit import (
    AMQP_URL,
    PG_URL,
    admin_sql,
    cleanup_exchange,
    cpu_groups,
    cpu_line,
    cpu_snapshot,
    free_port,
    pct,
)

ROOT = Path(__file__).resolve().parents[2]
PROFILE = os.environ.get("BENCH_PROFILE") == "1"
TICK = 0.01  # steady mode: one insert transaction per tick

# Rows shaped like the check-in messages syncd writes (about 330 bytes of JSON).
INSERT = """INSERT INTO outbox (routing_key, event_id, body)
SELECT CASE WHEN n % 20 = 0 THEN 'checkin.invalid' ELSE 'checkin.performed' END, 1,
    jsonb_build_object('type', 'checkin.performed', 'event_id', 1, 'gate_id', n % 16 + 1,
        'gate_name', 'g' || (n % 16), 'seq', n, 'scan_id', md5(n::text), 'ticket_id', 1000000 + n,
        'direction', 'in', 'outcome', 'admit', 'reason', NULL, 'via', 'scanner',
        'scanned_at', extract(epoch FROM now()), 'at', extract(epoch FROM now()), 'skew', 0.0)
FROM generate_series($1::bigint, $2::bigint) n
RETURNING id"""


async def arrived(consumer: ConsumerProcess, n: int, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while consumer.count < n and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    return consumer.count >= n


def arrivals(received: Received) -> dict[int, float]:
    return {
        int(mid): at
        for mid, at in zip(received.message_ids, received.arrivals, strict=True)
        if mid is not None
    }


async def fill(db_url: str, rows: int) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        for start in range(1, rows + 1, 50_000):
            await conn.execute(INSERT, start, min(rows, start + 49_999))
        await conn.execute("ANALYZE outbox")
    finally:
        await conn.close()


async def insert_steadily(db_url: str, rate: int, seconds: float, sent: dict[int, float]) -> None:
    """``rate`` rows a second in transactions every ``TICK``; ``sent`` maps id -> commit time."""
    pool = await asyncpg.create_pool(db_url, min_size=4, max_size=4)
    n = 0
    start = time.monotonic()

    async def one(first: int, last: int) -> None:
        ids = await pool.fetch(INSERT, first, last)
        now = time.time()
        for r in ids:
            sent[r["id"]] = now

    tasks: set[asyncio.Task] = set()
    try:
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * rate) - n
            if due > 0:
                task = asyncio.create_task(one(n + 1, n + due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += due
            await asyncio.sleep(TICK)
        await asyncio.gather(*tasks)
    finally:
        await pool.close()


def confirm_quantiles(metrics: str) -> str:
    """p50/p99 bucket bounds of the relay's publish->confirm histogram (per round)."""
    buckets = [
        (float(le), float(count))
        for le, count in re.findall(
            r'^syncd_outbox_confirm_seconds_bucket\{le="([^"]+)"\} (\S+)$', metrics, re.M
        )
    ]
    if not buckets or buckets[-1][1] == 0:
        return "publish->confirm n/a (no syncd_outbox_confirm_seconds in /metrics)"
    total = buckets[-1][1]

    def bound(q: float) -> str:
        le = next(le for le, count in buckets if count >= q * total)
        return f"<= {le * 1000:g} ms" if le != float("inf") else "> last bucket"

    return f"publish->confirm per round: p50 {bound(0.5)}, p99 {bound(0.99)} ({total:,.0f} rounds)"


async def scrape(port: int) -> str:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"http://127.0.0.1:{port}/metrics")).text


def start_syncd(env: dict[str, str], port: int) -> subprocess.Popen:
    prof = ["-m", "cProfile", "-o", f"/tmp/syncd-relay-{port}.prof"] if PROFILE else []
    return subprocess.Popen(
        [sys.executable, *prof, "-m", "syncd", "serve"],
        env={**env, "SYNCD_PORT": str(port)},
        cwd=ROOT,
    )


async def wait_ready(port: int) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise SystemExit("syncd did not become ready")


async def drain(args: argparse.Namespace, env: dict[str, str], consumer: ConsumerProcess) -> None:
    await fill(env["SYNCD_DATABASE_URL"], args.rows)
    print(f"outbox filled with {args.rows:,} rows")
    port = free_port()
    server = start_syncd(env, port)
    try:
        groups = cpu_groups([server.pid], consumer.pid)
        if not await arrived(consumer, 1, 60):
            raise SystemExit("no message arrived within 60 s")
        a, t0 = cpu_snapshot(groups), time.monotonic()
        complete = await arrived(consumer, args.rows, 600)
        b, seconds = cpu_snapshot(groups), time.monotonic() - t0
        metrics = await scrape(port)
    finally:
        server.terminate()
        server.wait(10)
    received = consumer.stop()
    times = sorted(arrivals(received).values())
    span = times[-1] - times[0]
    print(
        f"relayed {len(times):,} messages in {span:.2f} s = "
        f"{(len(times) - 1) / max(span, 1e-9):,.0f} messages/s (first -> last arrival)"
        + ("" if complete else f"; {args.rows - len(times):,} MISSING after 600 s")
    )
    print(f"duplicates {received.duplicates}")
    print(confirm_quantiles(metrics))
    print(cpu_line(a, b, seconds))


async def steady(args: argparse.Namespace, env: dict[str, str], consumer: ConsumerProcess) -> None:
    port = free_port()
    server = start_syncd(env, port)
    try:
        await wait_ready(port)
        groups = cpu_groups([server.pid], consumer.pid)
        sent: dict[int, float] = {}
        a, t0 = cpu_snapshot(groups), time.monotonic()
        await insert_steadily(env["SYNCD_DATABASE_URL"], args.rate, args.seconds, sent)
        b, seconds = cpu_snapshot(groups), time.monotonic() - t0
        complete = await arrived(consumer, len(sent), 60)
        metrics = await scrape(port)
    finally:
        server.terminate()
        server.wait(10)
    received = consumer.stop()
    got = arrivals(received)
    latencies = [got[i] - t for i, t in sent.items() if i in got]
    print(
        f"inserted {len(sent):,} rows at {len(sent) / args.seconds:,.0f}/s for {args.seconds:g} s"
        f"; consumer got {len(latencies):,}"
        + ("" if complete else f" ({len(sent) - len(latencies):,} MISSING)")
        + f"; duplicates {received.duplicates}"
    )
    print(
        f"commit -> consumer: p50 {pct(latencies, 50) * 1000:.1f} ms, "
        f"p99 {pct(latencies, 99) * 1000:.1f} ms, max {max(latencies, default=0) * 1000:.1f} ms"
    )
    print(confirm_quantiles(metrics))
    print(cpu_line(a, b, seconds))


async def declare(exchange: str) -> None:
    """The relay's topology, so that the consumer can bind before syncd starts."""
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        await declare_topology(await conn.channel(), exchange)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench_relay", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="drain mode: rows to relay")
    parser.add_argument("--rate", type=int, default=0, help="steady mode: rows inserted a second")
    parser.add_argument("--seconds", type=float, default=15, help="steady mode: how long")
    parser.add_argument("--batch", type=int, default=None, help="SYNCD_RELAY_BATCH for syncd")
    parser.add_argument(
        "--quick", action="store_true", help="a small drain (2,000 rows), as the test suite does"
    )
    args = parser.parse_args()
    if args.quick:
        args.rows, args.rate = 2_000, 0
    name = f"tessera_bench_relay_{uuid.uuid4().hex[:8]}"
    exchange = f"tessera-bench-relay-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "SYNCD_DATABASE_URL": PG_URL.rsplit("/", 1)[0] + "/" + name,
        "SYNCD_AMQP_URL": AMQP_URL,
        "SYNCD_AMQP_EXCHANGE": exchange,
        "SYNCD_MASTER_KEY": "bench-master-key-0123456789abcdefghijkl",
        "SYNCD_LOG_LEVEL": os.environ.get("SYNCD_LOG_LEVEL", "WARNING"),
    }
    if args.batch:
        env["SYNCD_RELAY_BATCH"] = str(args.batch)
    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    consumer: ConsumerProcess | None = None
    try:
        subprocess.run(
            [sys.executable, "-m", "syncd", "migrate"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        asyncio.run(declare(exchange))
        consumer = ConsumerProcess(AMQP_URL, exchange)
        consumer.start()
        asyncio.run((steady if args.rate else drain)(args, env, consumer))
    finally:
        if consumer is not None:
            consumer.kill()
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        asyncio.run(cleanup_exchange(exchange))


if __name__ == "__main__":
    main()
