"""Benchmark: a gate loads a full snapshot from syncd while it keeps scanning.

A new or far-behind gate receives the whole list as a signed bundle (``gate/store/snapshot.py``
stages it in short transactions and swaps it in at the end). This measures how long that takes
for N tickets and what it does to the decisions made meanwhile (one scan every 5 ms, each
committed to the journal like any other).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import tempfile
import time
from pathlib import Path

from gate.store.snapshot import import_snapshot
from shared.bundle import BundleTicket
from tessera_dev.sample_event import Clock, bundle_bytes, loaded_store, pipeline


async def bench(tickets: int) -> None:
    data = bundle_bytes(BundleTicket(i, 1, "valid", 1, "GA", None) for i in range(1, tickets + 1))
    print(f"snapshot bundle: {tickets:,} tickets, {len(data) / 1e6:.1f} MB gzip")
    with tempfile.TemporaryDirectory() as work:
        store = await loaded_store(Path(work) / "gate.sqlite3")
        scans = pipeline(store, Clock())
        latencies: list[float] = []
        loading = True

        async def scan_meanwhile() -> None:
            i = 0
            while loading:
                started = time.perf_counter()
                await scans.process(f"not a ticket {i}")
                latencies.append((time.perf_counter() - started) * 1000)
                i += 1
                await asyncio.sleep(0.005)

        scanner = asyncio.create_task(scan_meanwhile())
        started = time.perf_counter()
        result, _cursor = await import_snapshot(store, io.BytesIO(data))
        elapsed = time.perf_counter() - started
        loading = False
        await scanner
        await store.close()
    q = statistics.quantiles(latencies, n=100)
    rate = result.tickets / elapsed
    print(f"loaded {result.tickets:,} tickets in {elapsed:.1f} s ({rate:,.0f}/s)")
    print(
        f"{len(latencies)} scans meanwhile: p50 {q[49]:.1f} ms  p99 {q[98]:.1f} ms"
        f"  max {max(latencies):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench_snapshot", description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000, help="list size (1,000,000)")
    parser.add_argument(
        "--quick", action="store_true", help="a small run (2,000 tickets), as the test suite does"
    )
    args = parser.parse_args()
    asyncio.run(bench(2_000 if args.quick else args.tickets))


if __name__ == "__main__":
    main()
