"""Benchmark the gate: import a large signed list, then decide a mixed burst of scans.

Builds an N-ticket bundle (shared/bundle.py, streamed, never held in memory), imports it through
`gate import-list`'s code path, then sends scans (admits, repeats, forged, unknown, reissued,
revoked) one at a time through the same Pipeline `gate run` uses, with a JSON-lines sink
writing to /dev/null. Decision latency is verify + lookup + durable commit (synchronous=FULL).

The same mix comes twice, interleaved: as static T1 codes and as holder-bound rotating T2 codes
(shared.rotating; a holder key made at setup for each ticket the T2 mix names, its pass signed by
the event key, rotated to the current step), on disjoint tickets of the one list, so both see the
same database; T2's latency is printed beside T1's. Before that, the bare cost of checking one
code (parse and signatures, no list, no commit): T1 has one signature, T2 two.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tqdm import tqdm

from gate.checkin.decision import Decision
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
from shared.rotating import check_holder, check_step, parse_code, rotate, sign_pass, step_at
from shared.ticket import (
    generate_private_key,
    key_id,
    parse_ticket,
    public_key_to_b64,
    public_raw,
    sign_ticket,
    verify_signature,
)

EVENT = 4242
KEY = generate_private_key()
KEYRING = {key_id(KEY.public_key()): KEY.public_key()}
PERIOD = 10  # the event's T2 rotation period (the default)
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
        event=BundleEvent(
            EVENT,
            "Bench Fest",
            {"0": "Main", "1": "VIP"},
            "Europe/Berlin",
            rotation_period=PERIOD,
        ),
        keys=[BundleKey(key_id(KEY.public_key()).hex(), public_key_to_b64(KEY.public_key()))],
        ticket_count=n,
    )
    started = time.perf_counter()
    with path.open("wb") as out:
        write_bundle(out, header, tqdm(tickets(n, holder_share), total=n, desc="build"), KEY)
    return time.perf_counter() - started


Code = Callable[..., str]
"""``code(ticket_id, nonce_value=None)``: the QR text for a ticket (list nonce by default)."""


def code(ticket_id: int, *, nonce_value: int | None = None) -> str:
    n = nonce(ticket_id) if nonce_value is None else nonce_value
    return sign_ticket(KEY, event_id=EVENT, ticket_id=ticket_id, nonce=n)


class RotatingCodes:
    """T2 codes as each holder's phone shows them at ``step``: one holder key per ticket, made on
    first use (at setup) and kept for that ticket's repeats, and the pass syncd would sign."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.holders: dict[int, Ed25519PrivateKey] = {}

    def __call__(self, ticket_id: int, *, nonce_value: int | None = None) -> str:
        holder = self.holders.get(ticket_id)
        if holder is None:
            holder = self.holders[ticket_id] = generate_private_key()
        pass_ = sign_pass(
            KEY,
            holder_key=public_raw(holder.public_key()),
            event_id=EVENT,
            ticket_id=ticket_id,
            nonce=nonce(ticket_id) if nonce_value is None else nonce_value,
        )
        return rotate(pass_, holder, self.step)


def forged(text: str) -> str:
    """The last byte flipped: T1's event signature, T2's holder signature."""
    raw = bytearray(b45decode(text[3:]))
    raw[-1] ^= 0x55
    return text[:3] + b45encode(bytes(raw))


def scan_mix(
    ids: list[int], n_tickets: int, n_scans: int, rng: random.Random, make: Code
) -> list[str]:
    """Admits of ``ids`` (60 %), repeats, forged, unknown and reissued codes, in order."""
    mix = [make(i) for i in ids]
    mix += [make(rng.choice(ids)) for _ in range(int(n_scans * 0.15))]  # repeats
    mix += [forged(make(rng.randint(1, n_tickets))) for _ in range(int(n_scans * 0.10))]
    mix += [make(n_tickets + rng.randint(1, 10**6)) for _ in range(int(n_scans * 0.10))]
    mix += [make(rng.randint(1, n_tickets), nonce_value=1) for _ in range(n_scans - len(mix))]
    return mix


def both_mixes(
    n_tickets: int, n_scans: int, rng: random.Random, t2: RotatingCodes
) -> list[tuple[str, str]]:
    """The T1 mix and the T2 mix on disjoint admitted tickets, shuffled together."""
    admits = min(n_tickets // 2, int(n_scans * 0.6))
    ids = rng.sample(range(1, n_tickets + 1), 2 * admits)
    mix = [("T1", t) for t in scan_mix(ids[:admits], n_tickets, n_scans, rng, code)]
    mix += [("T2", t) for t in scan_mix(ids[admits:], n_tickets, n_scans, rng, t2)]
    rng.shuffle(mix)
    return mix


def verify_t1(text: str) -> None:
    verify_signature(parse_ticket(text), KEYRING)


def verify_t2(text: str) -> None:
    ticket = parse_code(text)
    verify_signature(ticket, KEYRING)
    check_holder(ticket)
    check_step(ticket, time.time(), PERIOD)


def crypto_cost(count: int) -> None:
    """Microseconds to check one code alone: parse, event signature (T2: holder signature and
    step too); each code distinct, each call timed on its own."""
    t2 = RotatingCodes(step_at(time.time(), PERIOD))
    kinds: list[tuple[str, str, Callable[[str], None], Code]] = [
        ("T1", "parse + one signature", verify_t1, code),
        ("T2", "parse + two signatures + step", verify_t2, t2),
    ]
    medians = []
    for label, what, verify, make in kinds:
        texts = [make(i) for i in range(1, count + 1)]
        spent = []
        for text in texts:
            started = time.perf_counter_ns()
            verify(text)
            spent.append((time.perf_counter_ns() - started) / 1000)
        medians.append(statistics.median(spent))
        print(
            f"{label} verify ({what}, {count:,} codes): median {medians[-1]:.1f} us,"
            f" mean {statistics.fmean(spent):.1f} us"
        )
    print(f"T2 / T1 verify: {medians[1] / medians[0]:.2f}x (medians)")


def db_bytes(settings: GateSettings) -> int:
    return sum(p.stat().st_size for p in settings.data_dir.glob(settings.db_path.name + "*"))


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


def report(kind: str, decisions: list[Decision]) -> None:
    lat = [d.latency_ms for d in decisions]
    outcomes = Counter(d.reason.value if d.reason else "admit" for d in decisions)
    print(
        f"{kind} decision latency ms: p50 {pct(lat, 50):.3f}  p99 {pct(lat, 99):.3f}  "
        f"max {max(lat):.3f}  ({len(decisions):,} scans: "
        + ", ".join(f"{k} {v}" for k, v in outcomes.most_common())
        + ")"
    )


async def bench(args: argparse.Namespace, work: Path, devnull: TextIO) -> None:
    crypto_cost(args.codes)
    bundle = work / "list.bundle.gz"
    build_s = build_bundle(bundle, args.tickets, args.holder_share)
    print(
        f"bundle: {args.tickets:,} tickets, {bundle.stat().st_size / 1e6:.1f} MB gzip, "
        f"built in {build_s:.1f} s"
    )
    made_at = time.time()
    t2 = RotatingCodes(step_at(made_at, PERIOD))
    mix = both_mixes(args.tickets, args.scans, random.Random(args.seed), t2)
    print(f"T2 holder keys made at setup: {len(t2.holders):,} (one per ticket in the T2 mix)")
    settings = GateSettings(data_dir=work / "gate", gate_name="Bench", debounce_seconds=0)
    store = await Store.open(settings.db_path)
    await store.trust(KEY.public_key())
    with bundle.open("rb") as stream, tqdm(total=args.tickets, desc="import") as bar:
        result = await import_bundle(store, stream, progress=bar.update)
    print(
        f"import: {result.tickets:,} tickets in {result.seconds:.2f} s "
        f"({result.tickets / result.seconds:,.0f}/s); database {db_bytes(settings) / 1e6:.1f} MB"
    )
    # The gate's clock stays where the phones drew their T2 codes: a run that outlasts the period
    # still judges each code as live, as a phone held up at the door is.
    pipeline = Pipeline(store, settings, [JsonLinesFeedback(devnull)], clock=lambda: made_at)
    decisions: dict[str, list[Decision]] = {"T1": [], "T2": []}
    started = time.perf_counter()
    for kind, text in tqdm(mix, desc="scans"):
        decisions[kind].append(await pipeline.process(text))
    wall = time.perf_counter() - started
    await store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    await store.close()
    print(f"scans: {len(mix):,}, T1 and T2 interleaved, in {wall:.2f} s ({len(mix) / wall:,.0f}/s)")
    report("T1", decisions["T1"])
    report("T2", decisions["T2"])
    print("(verify + lookup + durable commit; T2 adds the holder signature and the step check)")
    print(f"database on disk after scans: {db_bytes(settings) / 1e6:.1f} MB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench_gate", description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000, help="list size (1,000,000)")
    parser.add_argument(
        "--scans", type=int, default=10_000, help="scans to decide, T1 and T2 each (10,000)"
    )
    parser.add_argument(
        "--codes", type=int, default=2_000, help="codes for the bare verify cost (2,000)"
    )
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
        help="a small run (2,000 tickets, 200 scans, 200 codes), as the test suite does",
    )
    args = parser.parse_args()
    if args.quick:
        args.tickets, args.scans, args.codes = 2_000, 200, 200
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
