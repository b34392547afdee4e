"""Benchmark `gate lookup`: name and number searches on a large list, as door staff type them.

Builds an N-ticket bundle (a share of tickets named, first x last names with accents and one
unique name), imports it through the store, then times ``Store.search`` (what `gate lookup` and
the kiosk's search call) for a common name typed without accents, in capitals, a unique name, a
miss (the worst case: every named ticket is looked at) and a ticket number. Prints how many each
found and p50 / p99 / max in ms, the import time and the database size; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.store.db import Store
from gate.store.importer import import_bundle
from shared.bundle import BundleEvent, BundleHeader, BundleKey, BundleTicket, write_bundle
from shared.ticket import generate_private_key, key_id, public_key_to_b64

FIRST = ["Jörg", "Anna", "José", "Łukasz", "Zoë", "Chloé", "Søren", "Ines", "Mark", "Amélie"]
LAST = ["Müller", "MÜLLER", "García", "Nowak", "Nguyễn", "O'Brien", "Straße", "Smith", "Ünal"]
UNIQUE = "Quentin Zyxwvut"
QUERIES = ["muller", "MÜLLER", "garcia", "zyxwvut", "nobody-has-this", "4242"]


def tickets(n: int, holder_share: float) -> Iterator[BundleTicket]:
    every = round(1 / holder_share) if holder_share > 0 else 0
    for i in range(1, n + 1):
        named = every and i % every == 0
        holder = f"{FIRST[i % len(FIRST)]} {LAST[i // 7 % len(LAST)]}" if named else None
        yield BundleTicket(i, i, holder=UNIQUE if i == n // 2 else holder)


def bundle(n: int, holder_share: float) -> tuple[bytes, Ed25519PrivateKey]:
    key = generate_private_key()
    header = BundleHeader(
        event=BundleEvent(1, "Bench"),
        keys=[BundleKey(key_id(key.public_key()).hex(), public_key_to_b64(key.public_key()))],
        ticket_count=n,
    )
    out = io.BytesIO()
    write_bundle(out, header, tickets(n, holder_share), key, compresslevel=1)
    return out.getvalue(), key


def db_bytes(work: Path) -> int:
    return sum(p.stat().st_size for p in work.glob("gate.sqlite3*"))


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def bench(args: argparse.Namespace, work: Path) -> None:
    data, key = bundle(args.tickets, args.holder_share)
    store = await Store.open(work / "gate.sqlite3")
    await store.trust(key.public_key())
    result = await import_bundle(store, io.BytesIO(data))
    size = db_bytes(work)
    print(f"import: {result.tickets:,} tickets in {result.seconds:.2f} s, {size / 1e6:.1f} MB")
    try:
        for query in QUERIES:
            await time_query(store, query, args.repeat)
    finally:
        await store.close()


async def time_query(store: Store, query: str, repeat: int) -> None:
    times, found = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        found = len(await store.search(query, limit=20))
        times.append((time.perf_counter() - started) * 1000)
    print(
        f"search {query!r:20} found {found:2}  p50 {pct(times, 50):7.2f}  "
        f"p99 {pct(times, 99):7.2f}  max {max(times):7.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench_lookup", description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000, help="list size (1,000,000)")
    parser.add_argument("--holder-share", type=float, default=0.25, help="named share (0.25)")
    parser.add_argument("--repeat", type=int, default=50, help="searches per query (50)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run (2,000 tickets, 3 searches a query), as the test suite does",
    )
    args = parser.parse_args()
    if args.quick:
        args.tickets, args.repeat = 2_000, 3
    work = Path(tempfile.mkdtemp(prefix="bench_lookup_"))
    try:
        asyncio.run(bench(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
