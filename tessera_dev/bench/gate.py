"""Benchmark the gate: import a large signed list, then decide a mixed burst of scans.

Builds an N-ticket bundle (shared/bundle.py, streamed, never held in memory), imports it through
`gate import-list`'s code path, then sends scans (admits, repeats, forged, unknown, reissued,
revoked) one at a time through the same Pipeline `gate run` uses, with a JSON-lines sink
writing to /dev/null. Decision latency is verify + lookup + durable commit (synchronous=FULL).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from gate.checkin.pipeline import Pipeline
from gate.feedback.jsonlines import JsonLinesFeedback
from gate.settings import GateSettings
from gate.store.db import Store
from gate.store.importer import import_bundle
from shared.base45 import b45decode, b45encode
from shared.bundle import (
    BundleEvent,
    BundleHeader,
    BundleKey,
    BundleTicket,
    write_bundle,
)
from shared.ticket import (
    PREFIX,
    generate_private_key,
    key_id,
    public_key_to_b64,
    sign_ticket,
)

EVENT = 4242
KEY = generate_private_key()
NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Radia"]


def nonce(ticket_id: int) -> int:
    return (ticket_id * 2654435761 + 12345) & 0xFFFFFFFF


def status(ticket_id: int) -> str:
    return "revoked" if ticket_id % 100 == 0 else "valid"


def tickets(n: int, holder_share: float) -> Iterator[BundleTicket]:
    every = round(1 / holder_share) if holder_share > 0 else 0
    for i in range(1, n + 1):
        holder = f"{NAMES[i % len(NAMES)]} Person{i}" if every and i % every == 0 else None
        vip = i % 20 == 0
        yield BundleTicket(i, nonce(i), status(i), 2 if vip else 1, "VIP" if vip else "GA", holder)


def build_bundle(path: Path, n: int, holder_share: float) -> float:
    header = BundleHeader(
        event=BundleEvent(EVENT, "Bench Fest", {"0": "Main", "1": "VIP"}, "Europe/Berlin"),
        keys=[BundleKey(key_id(KEY.public_key()).hex(), public_key_to_b64(KEY.public_key()))],
        ticket_count=n,
    )
    started = time.perf_counter()
    with path.open("wb") as out:
        write_bundle(out, header, tqdm(tickets(n, holder_share), total=n, desc="build"), KEY)
    return time.perf_counter() - started


def code(ticket_id: int, *, nonce_value: int | None = None) -> str:
    n = nonce(ticket_id) if nonce_value is None else nonce_value
    return sign_ticket(KEY, event_id=EVENT, ticket_id=ticket_id, nonce=n)


def forged(ticket_id: int) -> str:
    raw = bytearray(b45decode(code(ticket_id)[len(PREFIX) :]))
    raw[-1] ^= 0x55
    return PREFIX + b45encode(bytes(raw))


def scan_mix(n_tickets: int, n_scans: int, rng: random.Random) -> list[str]:
    ids = rng.sample(range(1, n_tickets + 1), min(n_tickets, int(n_scans * 0.6)))
    mix = [code(i) for i in ids]
    mix += [code(rng.choice(ids)) for _ in range(int(n_scans * 0.15))]  # repeats
    mix += [forged(rng.randint(1, n_tickets)) for _ in range(int(n_scans * 0.10))]
    mix += [code(n_tickets + rng.randint(1, 10**6)) for _ in range(int(n_scans * 0.10))]
    mix += [code(rng.randint(1, n_tickets), nonce_value=1) for _ in range(n_scans - len(mix))]
    rng.shuffle(mix)
    return mix


def db_bytes(settings: GateSettings) -> int:
    return sum(p.stat().st_size for p in settings.data_dir.glob(settings.db_path.name + "*"))


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


async def bench(args: argparse.Namespace, work: Path, devnull: TextIO) -> None:
    bundle = work / "list.bundle.gz"
    build_s = build_bundle(bundle, args.tickets, args.holder_share)
    print(
        f"bundle: {args.tickets:,} tickets, {bundle.stat().st_size / 1e6:.1f} MB gzip, "
        f"built in {build_s:.1f} s"
    )
    texts = scan_mix(args.tickets, args.scans, random.Random(args.seed))
    settings = GateSettings(data_dir=work / "gate", gate_name="Bench", debounce_seconds=0)
    store = await Store.open(settings.db_path)
    await store.trust(KEY.public_key())
    with bundle.open("rb") as stream, tqdm(total=args.tickets, desc="import") as bar:
        result = await import_bundle(store, stream, progress=bar.update)
    print(
        f"import: {result.tickets:,} tickets in {result.seconds:.2f} s "
        f"({result.tickets / result.seconds:,.0f}/s); database {db_bytes(settings) / 1e6:.1f} MB"
    )
    pipeline = Pipeline(store, settings, [JsonLinesFeedback(devnull)])
    started = time.perf_counter()
    decisions = [await pipeline.process(t) for t in tqdm(texts, desc="scans")]
    wall = time.perf_counter() - started
    await store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    await store.close()
    lat = [d.latency_ms for d in decisions]
    outcomes = Counter(d.reason.value if d.reason else "admit" for d in decisions)
    print(
        f"scans: {len(decisions):,} in {wall:.2f} s ({len(decisions) / wall:,.0f}/s): "
        + ", ".join(f"{k} {v}" for k, v in outcomes.most_common())
    )
    print(
        f"decision latency ms: p50 {pct(lat, 50):.3f}  p99 {pct(lat, 99):.3f}  "
        f"max {max(lat):.3f}  (verify + lookup + durable commit)"
    )
    print(f"database on disk after scans: {db_bytes(settings) / 1e6:.1f} MB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench_gate", description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000, help="list size (1,000,000)")
    parser.add_argument("--scans", type=int, default=10_000, help="scans to decide (10,000)")
    parser.add_argument(
        "--holder-share",
        type=float,
        default=0.25,
        help="share of tickets that carry a holder name (0.25)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed for the scan mix")
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run (2,000 tickets, 200 scans), as the test suite does",
    )
    args = parser.parse_args()
    if args.quick:
        args.tickets, args.scans = 2_000, 200
    work = Path(tempfile.mkdtemp(prefix="bench_gate_", dir=args.dir))
    try:
        with open(os.devnull, "w") as devnull:
            asyncio.run(bench(args, work, devnull))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work)


if __name__ == "__main__":
    main()
