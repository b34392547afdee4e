"""Benchmark: a Saturday night's fleet of connected gates on one syncd host (issue 22).

Starts ``syncd serve`` (``--workers W``; W=1 is one replica on one core) with the outbox relay on
a fresh database and its own exchange, and enrols gates over the public API, ``--per-event`` to
an event. Every gate follows its event's change feed the way real gates do: one server-sent
event stream each (``--mode stream``, today's gates) or a long-poll loop (``--mode long-poll``,
older gates). Then, for each size of ``--sizes`` (gates are added between sizes):

* **idle**: ``--idle`` seconds with no traffic: syncd's CPU (all its processes, % of one core)
  and Postgres transactions/s on the bench database (what merely being connected costs);
* **wake**: one admission pushed by one gate of each of ``--wake`` events in turn; latency from
  the push's start to each of that event's other gates receiving it (p99 over all of them);
* **door traffic**: for ``--traffic`` seconds, ``--pushers`` of the gates (one in twenty: one
  gate an event) each push one admission every ``--interval`` s, staggered; push latency (p99),
  convergence (push start to the *last* of the event's other gates receiving it, p99), stored
  (check-ins in Postgres from the window) against offered, and every delivery checked.

Pages are skimmed with a regular expression (gate id and seq of each check-in), not decoded:
decoding is the gates' CPU, which here shares the cores with syncd. ``--syncd-root DIR`` runs
the syncd of another checkout (its own migrations), to measure an older build the same way.
The bench raises its own open-files limit (and its syncd's) to the hard limit and says so when
that is too low for the sizes asked. The last line reads::

    fleet: G gates, E events: stored S/s of O offered, push p99 P ms, convergence p99 C ms,
    idle syncd CPU I %

    scripts/bench_fleet [--sizes 1000,2500,5000,10000] [--per-event 20] [--mode stream]
                        [--workers 1] [--idle 15] [--traffic 20] [--quick] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import os
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

from shared.protocol import PUSH_PATH, STREAM_PATH
from tessera_dev.bench.kit import CLK_TCK, BenchError, cpu_groups, cpu_snapshot, pct
from tessera_dev.bench.servers import ROOT
from tessera_dev.bench.stack import Gate, Stack, StackSpec, poll_until, post, run_on_stack

_CHECKIN = re.compile(
    rb'"gate_id":(\d+),"gate_name":"[^"]*","direction":"\w+","at":[^,]+,"conflict":\w+,"seq":(\d+)'
)
_CURSOR = re.compile(rb'"cursor":"(\d*)"')
_SNAPSHOT = re.compile(rb'"snapshot_required":true')


# --- the fleet -------------------------------------------------------------------------------


@dataclass
class Fleet:
    """Every gate, what each received, and the check-ins the bench waits for."""

    base: str
    session: aiohttp.ClientSession
    mode: str
    gates: list[Gate] = field(default_factory=list)
    by_event: dict[int, list[Gate]] = field(default_factory=dict)
    watching: dict[tuple[int, int], list[float]] = field(default_factory=dict)  # arrivals
    followers: list[asyncio.Task[None]] = field(default_factory=list)
    connected: int = 0
    errors: list[str] = field(default_factory=list)

    def received(self, raw: bytes) -> None:
        now = time.monotonic()
        for gate_id, seq in _CHECKIN.findall(raw):
            arrivals = self.watching.get((int(gate_id), int(seq)))
            if arrivals is not None:
                arrivals.append(now)


async def enrol(fleet: Fleet, token: str, events: int, per_event: int) -> None:
    """``events`` more events of ``per_event`` gates, over the public API (32 at a time)."""
    auth = {"Authorization": f"Bearer {token}"}
    limit = asyncio.Semaphore(32)

    async def one_gate(event_id: int, i: int) -> Gate:
        async with limit:
            return await Gate.enrol(fleet.session, fleet.base, token, event_id, f"g{i}")

    async def one_event(n: int) -> None:
        async with limit:
            url = fleet.base + "/api/v1/events"
            event_id = (await post(fleet.session, url, {"name": f"Fleet {n}"}, auth))["event_id"]
        gates = await asyncio.gather(*(one_gate(event_id, i) for i in range(per_event)))
        fleet.by_event[event_id] = list(gates)
        fleet.gates += gates

    first = len(fleet.by_event)
    await asyncio.gather(*(one_event(first + n) for n in range(events)))


async def follow(fleet: Fleet, gate: Gate) -> None:
    """One gate following its feed until cancelled; reconnects as a gate would."""
    cursor, counted = "", False
    while True:
        try:
            if fleet.mode == "stream":
                cursor = await _stream(fleet, gate, cursor, counted)
            else:
                cursor = await _long_poll(fleet, gate, cursor, counted)
            counted = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            fleet.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            await asyncio.sleep(random.uniform(0.5, 2.0))


async def _stream(fleet: Fleet, gate: Gate, cursor: str, counted: bool) -> str:
    url = fleet.base + STREAM_PATH
    async with fleet.session.get(url, params={"cursor": cursor}, headers=gate.h()) as resp:
        if resp.status != 200:
            raise BenchError(f"stream answered {resp.status}")
        if not counted:
            fleet.connected += 1
        async for line in resp.content:
            if line.startswith(b"data: "):
                fleet.received(line)
                if (found := _CURSOR.search(line)) is not None:
                    cursor = found[1].decode()
                if _SNAPSHOT.search(line):
                    cursor = ""
    return cursor


async def _long_poll(fleet: Fleet, gate: Gate, cursor: str, counted: bool) -> str:
    if not counted:
        fleet.connected += 1
    while True:
        raw = await gate.changes(fleet.session, fleet.base, cursor)
        fleet.received(raw)
        if _SNAPSHOT.search(raw) or (found := _CURSOR.search(raw)) is None:
            cursor = ""
        else:
            cursor = found[1].decode()


async def push(fleet: Fleet, gate: Gate) -> tuple[float, list[float], float]:
    """One admission by ``gate``: (start, the arrivals list to fill, push latency in s)."""
    gate.seq += 1
    arrivals: list[float] = []
    fleet.watching[(gate.gate_id, gate.seq)] = arrivals
    row = {
        "seq": gate.seq,
        "scan_id": uuid.uuid4().hex,
        "ticket_id": gate.gate_id * 1000 + gate.seq,
        "direction": "in",
        "outcome": "admit",
        "via": "scanner",
        "scanned_at": time.time(),
    }
    started = time.monotonic()
    body = {"sent_at": time.time(), "checkins": [row]}
    await post(fleet.session, fleet.base + PUSH_PATH, body, gate.h())
    return started, arrivals, time.monotonic() - started


# --- phases ----------------------------------------------------------------------------------


@dataclass
class Row:
    gates: int
    events: int
    idle_cpu: float = 0.0
    idle_tps: float = 0.0
    wake_p99: float = float("nan")
    push_p99: float = float("nan")
    convergence_p99: float = float("nan")
    offered: int = 0
    stored: int = 0
    seconds: float = 0.0
    lost: int = 0
    bench_cpu: float = 0.0
    syncd_cpu: float = 0.0  # during door traffic
    push_p50: float = float("nan")
    convergence_p50: float = float("nan")


def cpu_of(groups: object, start: object, end: object, seconds: float, name: str) -> float:
    return (end.ticks[name] - start.ticks[name]) / CLK_TCK / seconds * 100  # type: ignore[attr-defined]


async def idle(row: Row, stack: Stack, pool: asyncpg.Pool, seconds: float) -> None:
    groups = cpu_groups(stack.pids, os.getpid())
    # Connections settle, and Postgres backends publish the enrolment's transactions (an idle
    # backend flushes its statistics up to 10 s late; they must not count as idle ones).
    await asyncio.sleep(11)
    x0, c0, t0 = await stack.xacts(pool), cpu_snapshot(groups), time.monotonic()
    await asyncio.sleep(seconds)
    x1, c1, t1 = await stack.xacts(pool), cpu_snapshot(groups), time.monotonic()
    row.idle_cpu = cpu_of(groups, c0, c1, t1 - t0, "syncd")
    row.idle_tps = (x1 - x0) / (t1 - t0)


async def wake(row: Row, fleet: Fleet, events: int) -> None:
    latencies: list[float] = []
    for event_id in random.sample(sorted(fleet.by_event), min(events, len(fleet.by_event))):
        gate = fleet.by_event[event_id][0]
        started, arrivals, _ = await push(fleet, gate)
        others = len(fleet.by_event[event_id]) - 1
        await poll_until(lambda a=arrivals, n=others: len(a) >= n, 10.0, 0.005)  # type: ignore[misc]
        latencies += [a - started for a in arrivals] + [10.0] * (others - len(arrivals))
        await asyncio.sleep(0.1)
    row.wake_p99 = pct(latencies, 99) * 1000


async def traffic(
    row: Row, fleet: Fleet, pool: asyncpg.Pool, syncd_pid: int, args: argparse.Namespace
) -> None:
    """A share of the gates (one an event by default) push one admission every interval."""
    pushers = [gates[0] for gates in fleet.by_event.values()]
    pushers = pushers[: max(1, round(len(fleet.gates) * args.pushers))]
    done: list[tuple[float, list[float], float, int]] = []
    before = await pool.fetchval("SELECT count(*) FROM checkins")
    stop = time.monotonic() + args.traffic
    groups = cpu_groups([syncd_pid], os.getpid())
    c0 = cpu_snapshot(groups)

    async def door(gate: Gate, offset: float) -> None:
        await asyncio.sleep(offset)
        others = len(fleet.by_event[gate.event_id]) - 1
        while time.monotonic() < stop:
            tick = time.monotonic()
            try:
                done.append((*await push(fleet, gate), others))
            except Exception as exc:
                fleet.errors.append(f"push: {exc}"[:200])
            await asyncio.sleep(max(0.0, args.interval - (time.monotonic() - tick)))

    started = time.monotonic()
    await asyncio.gather(*(door(g, random.uniform(0, args.interval)) for g in pushers))
    row.seconds = time.monotonic() - started
    c1 = cpu_snapshot(groups)
    row.bench_cpu = cpu_of(groups, c0, c1, row.seconds, "bench")
    row.syncd_cpu = cpu_of(groups, c0, c1, row.seconds, "syncd")
    await asyncio.sleep(5)  # the last deliveries
    row.offered = len(done)
    row.stored = int(await pool.fetchval("SELECT count(*) FROM checkins")) - int(before)
    row.push_p99 = pct([d[2] for d in done], 99) * 1000
    row.push_p50 = pct([d[2] for d in done], 50) * 1000
    full = [max(d[1]) - d[0] for d in done if len(d[1]) >= d[3]]
    row.lost = sum(max(0, d[3] - len(d[1])) for d in done)
    row.convergence_p99 = pct(full, 99) * 1000 if full else float("nan")
    row.convergence_p50 = pct(full, 50) * 1000 if full else float("nan")


async def revocations(fleet: Fleet, token: str, count: int) -> list[float]:
    """Revoke ``count`` gates; seconds until each one's stream was closed by syncd."""
    closed: list[float] = []
    for gate in random.sample(fleet.gates, min(count, len(fleet.gates))):
        url = fleet.base + STREAM_PATH
        async with fleet.session.get(url, headers=gate.h()) as resp:
            await resp.content.readline()
            path = f"{fleet.base}/api/v1/events/{gate.event_id}/gates/{gate.gate_id}"
            started = time.monotonic()
            async with fleet.session.delete(path, headers={"Authorization": f"Bearer {token}"}):
                pass
            async for _line in resp.content:
                pass
            closed.append(time.monotonic() - started)
    return closed


# --- the run ---------------------------------------------------------------------------------


async def run(args: argparse.Namespace, stack: Stack) -> int:
    print(f"syncd from {args.syncd_root} ({args.workers} worker(s)) at {stack.base}")
    token, syncd_pid = stack.tokens[0], stack.pids[0]
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None)
    rows: list[Row] = []
    async with stack.clients(timeout) as (session, pool):
        fleet = Fleet(stack.base, session, args.mode)
        try:
            for size in args.sizes:
                t = time.monotonic()
                await enrol(
                    fleet, token, size // args.per_event - len(fleet.by_event), args.per_event
                )
                for gate in fleet.gates[len(fleet.followers) :]:
                    fleet.followers.append(asyncio.create_task(follow(fleet, gate)))
                await poll_until(lambda: fleet.connected >= len(fleet.gates), 600.0, 0.2)
                print(
                    f"{len(fleet.gates):,} gates in {len(fleet.by_event):,} events enrolled and"
                    f" following ({args.mode}) after {time.monotonic() - t:.0f} s",
                    flush=True,
                )
                row = Row(len(fleet.gates), len(fleet.by_event))
                await idle(row, stack, pool, args.idle)
                # The bench's own collector must not pause the clocks it reads: 10,000 gates'
                # connections make a full collection take up to 0.6 s here.
                gc.collect()
                gc.freeze()
                gc.disable()
                try:
                    await wake(row, fleet, args.wake)
                    await traffic(row, fleet, pool, syncd_pid, args)
                finally:
                    gc.enable()
                    gc.unfreeze()
                rows.append(row)
                print_row(row, header=len(rows) == 1)
        finally:
            for task in fleet.followers:
                task.cancel()
            await asyncio.gather(*fleet.followers, return_exceptions=True)
        closed = await revocations(fleet, token, 5) if args.mode == "stream" else []
    return report(rows, closed, fleet.errors)


def print_row(row: Row, header: bool) -> None:
    if header:
        print(
            "| gates | idle syncd CPU | idle PG transactions/s | wake p99 (19 gates of an event)"
            " | door traffic: convergence p50 / p99 | push p50 / p99 | stored / offered"
            " | syncd CPU under traffic | bench CPU |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
    rate = f"{row.stored / row.seconds:.0f} of {row.offered / row.seconds:.0f}/s"
    print(
        f"| {row.gates:,} | {row.idle_cpu:.0f} % | {row.idle_tps:,.0f} | {row.wake_p99:.0f} ms"
        f" | {row.convergence_p50:.0f} / {row.convergence_p99:.0f} ms"
        f" | {row.push_p50:.0f} / {row.push_p99:.0f} ms | {rate}"
        f" ({row.stored:,} / {row.offered:,}; {row.lost} deliveries missing)"
        f" | {row.syncd_cpu:.0f} % | {row.bench_cpu:.0f} % |",
        flush=True,
    )


def report(rows: list[Row], closed: list[float], errors: list[str]) -> int:
    if closed:
        print(
            f"revoked gates' streams closed after {', '.join(f'{c * 1000:.0f}' for c in closed)} ms"
        )
    if errors:
        print(f"{len(errors)} errors, first: {errors[0]}")
    last = rows[-1]
    print(
        f"fleet: {last.gates} gates, {last.events} events: stored"
        f" {last.stored / last.seconds:.0f}/s of {last.offered / last.seconds:.0f} offered,"
        f" push p99 {last.push_p99:.0f} ms, convergence p99 {last.convergence_p99:.0f} ms,"
        f" idle syncd CPU {last.idle_cpu:.0f} %"
    )
    bad = any(r.stored < r.offered or r.lost for r in rows) or any(c > 1.0 for c in closed)
    return 1 if bad else 0


# --- process set-up --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_fleet", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,2500,5000,10000", help="gate counts, ascending")
    parser.add_argument("--per-event", type=int, default=20, help="gates an event (default 20)")
    parser.add_argument("--mode", choices=("stream", "long-poll"), default="stream")
    parser.add_argument("--workers", type=int, default=1, help="syncd serve --workers")
    parser.add_argument("--idle", type=float, default=15.0, help="seconds of the idle phase")
    parser.add_argument("--wake", type=int, default=30, help="events woken one at a time")
    parser.add_argument("--traffic", type=float, default=20.0, help="seconds of door traffic")
    parser.add_argument("--pushers", type=float, default=0.05, help="share of gates pushing")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between pushes")
    parser.add_argument("--syncd-root", type=Path, default=ROOT, help="checkout whose syncd runs")
    parser.add_argument("--quick", action="store_true", help="100 and 200 gates, short phases")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.idle, args.wake, args.traffic = "100,200", 3.0, 5, 4.0
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if any(s % args.per_event for s in args.sizes) or args.sizes != sorted(args.sizes):
        parser.error("--sizes must ascend, each a multiple of --per-event")
    return args


def main() -> None:
    args = parse_args()
    spec = StackSpec(
        "fleet",
        keep=args.keep,
        org="Fleet",
        root=args.syncd_root,
        workers=args.workers,
        pool_max=max(5, 40 // args.workers),
        clients=max(args.sizes),
    )
    run_on_stack(spec, functools.partial(run, args))


if __name__ == "__main__":
    main()
