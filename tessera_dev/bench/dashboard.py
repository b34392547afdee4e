"""Benchmark: what open organisers' dashboards cost syncd, against as many long-polling gates
(issue 19).

Starts ``syncd serve`` (one worker: one core) with the outbox relay on a fresh database and its
own exchange, makes one event with ``--pushers`` enrolled gates and pushes ``--preload``
admissions (the figures are computed over every check-in of the event, so an empty event would
flatter them), then VACUUM ANALYZE as autovacuum would (so it does not land in a phase).
Then three runs on the same event, each with the same door traffic:

* **nobody watching** (the baseline);
* **D dashboards**: ``--watchers`` streams of ``GET .../dashboard/stream`` (viewer tokens,
  ``SYNCD_DASHBOARD_STREAMS_PER_TOKEN`` each), as the page opens them;
* **D long-polling gates**: as many more gates of the event, each long-polling
  ``/api/v1/gate/changes`` (wait 25 s) the way an older gate follows the feed.

Each run has an **idle** phase (``--idle`` s, no pushes) and a **door traffic** phase
(``--traffic`` s, each pusher pushes one admission every ``--interval`` s, staggered). Per
phase: syncd's CPU (all its processes, % of one core), Postgres' CPU (every postgres process
of the machine: other work on it shows here) and Postgres transactions/s on the bench database.
Under traffic also the delivery latency: from a push's answer to each watcher having it (a
dashboard: a figures event counting it; a gate: the check-in in a page), p50 and p99 over all.
The last line reads::

    dashboard: D dashboards vs D long-polling gates: syncd CPU idle A % vs B %, traffic C % vs
    E %; PG transactions/s idle F vs G, traffic H vs I

    scripts/bench_dashboard [--watchers 100] [--pushers 20] [--interval 2] [--idle 15]
                            [--traffic 30] [--preload 20000] [--quick] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import os
import random
import re
import time
import uuid
from dataclasses import dataclass, field

import aiohttp
import asyncpg

from shared.protocol import PUSH_PATH
from tessera_dev.bench.kit import CLK_TCK, BenchError, cpu_groups, cpu_snapshot, pct
from tessera_dev.bench.stack import Gate, Stack, StackSpec, poll_until, post, run_on_stack

_ADMITTED = re.compile(rb'"stats":\{[^{]*?"admitted":(\d+)')
_SEQ = re.compile(
    rb'"gate_id":(\d+),"gate_name":"[^"]*","direction":"\w+","at":[^,]+,"conflict":\w+,"seq":(\d+)'
)
_CURSOR = re.compile(rb'"cursor":"(\d*)"')
STREAMS_PER_TOKEN = 8  # SYNCD_DASHBOARD_STREAMS_PER_TOKEN's default


@dataclass
class Rig:
    base: str
    session: aiohttp.ClientSession
    admin: str  # an admin token (makes the viewers' tokens)
    organiser: str
    event_id: int = 0
    pushers: list[Gate] = field(default_factory=list)
    stored: int = 0  # admissions the event holds (answered pushes)
    ticket: int = 0
    errors: list[str] = field(default_factory=list)

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@dataclass
class Watchers:
    """What the watchers received: per dashboard, when its admitted count first reached each
    value; per gate, when each (gate, seq) arrived."""

    kind: str
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ready: int = 0
    reached: list[dict[int, float]] = field(default_factory=list)  # dashboards
    arrivals: dict[tuple[int, int], list[float]] = field(default_factory=dict)  # gates
    frames: int = 0


@dataclass
class Phase:
    syncd_cpu: float = 0.0
    pg_cpu: float = 0.0
    tps: float = 0.0


@dataclass
class Row:
    label: str
    idle: Phase = field(default_factory=Phase)
    traffic: Phase = field(default_factory=Phase)
    p50: float = math.nan
    p99: float = math.nan
    missing: int = 0
    pushes: int = 0
    frames: int = 0


async def call(rig: Rig, path: str, body: object, headers: dict[str, str]) -> dict:
    return await post(rig.session, rig.base + path, body, headers)


async def new_gate(rig: Rig, name: str) -> Gate:
    return await Gate.enrol(rig.session, rig.base, rig.organiser, rig.event_id, name)


async def admit(rig: Rig, gate: Gate, count: int = 1) -> None:
    """``count`` admissions of new tickets by ``gate`` in one push."""
    rows = []
    for _ in range(count):
        gate.seq += 1
        rig.ticket += 1
        rows.append(
            {
                "seq": gate.seq,
                "scan_id": uuid.uuid4().hex,
                "ticket_id": rig.ticket,
                "direction": "in",
                "outcome": "admit",
                "via": "scanner",
                "scanned_at": time.time() - random.uniform(0, 3000) * (count > 1),
            }
        )
    body = {"sent_at": time.time(), "checkins": rows, "backlog": 0}
    await call(rig, PUSH_PATH, body, gate.h())
    rig.stored += count


# --- watchers --------------------------------------------------------------------------------


async def dashboards(rig: Rig, count: int) -> Watchers:
    watchers = Watchers("dashboards")
    tokens = []
    for i in range(math.ceil(count / STREAMS_PER_TOKEN)):
        body = {"name": f"screen {i}", "role": "viewer"}
        tokens.append((await call(rig, "/api/v1/tokens", body, rig.auth(rig.admin)))["token"])
    for i in range(count):
        reached: dict[int, float] = {}
        watchers.reached.append(reached)
        task = asyncio.create_task(
            _dashboard(rig, watchers, tokens[i // STREAMS_PER_TOKEN], reached)
        )
        watchers.tasks.append(task)
    await poll_until(lambda: watchers.ready >= count, 60.0, 0.1)
    return watchers


async def _dashboard(rig: Rig, w: Watchers, token: str, reached: dict[int, float]) -> None:
    url = f"{rig.base}/api/v1/events/{rig.event_id}/dashboard/stream"
    counted = False
    while True:
        try:
            async with rig.session.get(url, headers=rig.auth(token)) as resp:
                if resp.status != 200:
                    raise BenchError(f"dashboard stream answered {resp.status}")
                async for line in resp.content:
                    if not line.startswith(b"data: "):
                        continue
                    w.frames += 1
                    if (found := _ADMITTED.search(line)) is not None:
                        reached.setdefault(int(found[1]), time.monotonic())
                        if not counted:
                            w.ready, counted = w.ready + 1, True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            rig.errors.append(f"dashboard: {type(exc).__name__}: {exc}"[:200])
            await asyncio.sleep(1)


async def long_polls(rig: Rig, count: int) -> Watchers:
    watchers = Watchers("long-polling gates")
    gates = [await new_gate(rig, f"poll {i}") for i in range(count)]
    for gate in gates:
        watchers.tasks.append(asyncio.create_task(_long_poll(rig, watchers, gate)))
    await poll_until(lambda: watchers.ready >= count, 120.0, 0.1)
    return watchers


async def _long_poll(rig: Rig, w: Watchers, gate: Gate) -> None:
    cursor, counted = "", False
    while True:
        try:
            raw = await gate.changes(rig.session, rig.base, cursor)
            w.frames += 1
            now = time.monotonic()
            for gate_id, seq in _SEQ.findall(raw):
                if (arrived := w.arrivals.get((int(gate_id), int(seq)))) is not None:
                    arrived.append(now)
            found = _CURSOR.search(raw)
            cursor = found[1].decode() if found else ""
            if not counted and b'"more":false' in raw:
                w.ready, counted = w.ready + 1, True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            rig.errors.append(f"long-poll: {type(exc).__name__}: {exc}"[:200])
            await asyncio.sleep(1)


async def stop_watchers(w: Watchers | None) -> None:
    if w is None:
        return
    for task in w.tasks:
        task.cancel()
    await asyncio.gather(*w.tasks, return_exceptions=True)


# --- phases ----------------------------------------------------------------------------------


class Meter:
    def __init__(self, pool: asyncpg.Pool, stack: Stack) -> None:
        self.pool, self.stack = pool, stack
        self.groups = cpu_groups(stack.pids, os.getpid())

    async def start(self) -> tuple[int, object, float]:
        return await self.stack.xacts(self.pool), cpu_snapshot(self.groups), time.monotonic()

    async def stop(self, started: tuple[int, object, float]) -> Phase:
        x0, c0, t0 = started
        x1, c1, t1 = await self.stack.xacts(self.pool), cpu_snapshot(self.groups), time.monotonic()
        seconds = t1 - t0

        def cpu(name: str) -> float:
            return (c1.ticks[name] - c0.ticks[name]) / CLK_TCK / seconds * 100  # type: ignore[attr-defined]

        return Phase(cpu("syncd"), cpu("postgres"), (x1 - x0 - 1) / seconds)


async def measure(
    rig: Rig, meter: Meter, label: str, watchers: Watchers | None, args: argparse.Namespace
) -> Row:
    row = Row(label)
    await asyncio.sleep(args.settle)  # streams settle; Postgres publishes earlier transactions
    started = await meter.start()
    await asyncio.sleep(args.idle)
    row.idle = await meter.stop(started)
    done: list[tuple[float, int, list[tuple[int, int]]]] = []  # answered at, admitted, keys
    stop_at = time.monotonic() + args.traffic
    frames = watchers.frames if watchers else 0

    async def door(gate: Gate, offset: float) -> None:
        await asyncio.sleep(offset)
        while time.monotonic() < stop_at:
            tick = time.monotonic()
            key = (gate.gate_id, gate.seq + 1)
            if watchers is not None and watchers.kind != "dashboards":
                watchers.arrivals[key] = []
            try:
                await admit(rig, gate)
                done.append((time.monotonic(), rig.stored, [key]))
            except Exception as exc:
                rig.errors.append(f"push: {exc}"[:200])
            await asyncio.sleep(max(0.0, args.interval - (time.monotonic() - tick)))

    started = await meter.start()
    await asyncio.gather(*(door(g, random.uniform(0, args.interval)) for g in rig.pushers))
    row.traffic = await meter.stop(started)
    await asyncio.sleep(3)  # the last deliveries
    row.pushes = len(done)
    if watchers is not None:
        row.frames = watchers.frames - frames
        latencies, row.missing = _latencies(watchers, done)
        if latencies:
            row.p50, row.p99 = pct(latencies, 50) * 1000, pct(latencies, 99) * 1000
    return row


def _latencies(
    w: Watchers, done: list[tuple[float, int, list[tuple[int, int]]]]
) -> tuple[list[float], int]:
    latencies: list[float] = []
    missing = 0
    for answered, admitted, keys in done:
        if w.kind == "dashboards":
            for reached in w.reached:
                first = min((t for n, t in reached.items() if n >= admitted), default=None)
                if first is None:
                    missing += 1
                else:
                    latencies.append(max(0.0, first - answered))
        else:
            for key in keys:
                got = w.arrivals.get(key, [])
                missing += max(0, w.ready - len(got))  # the pushers are none of the watchers
                latencies += [max(0.0, t - answered) for t in got]
    return latencies, missing


# --- the run ---------------------------------------------------------------------------------


async def run(args: argparse.Namespace, stack: Stack) -> int:
    print(f"syncd (1 worker) at {stack.base}")
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None)
    rows: list[Row] = []
    async with stack.clients(timeout) as (session, pool):
        admin, organiser = stack.tokens
        rig = Rig(stack.base, session, admin, organiser)
        event = await call(rig, "/api/v1/events", {"name": "Bench night"}, rig.auth(rig.organiser))
        rig.event_id = event["event_id"]
        rig.pushers = [await new_gate(rig, f"door {i}") for i in range(args.pushers)]
        for i in range(0, args.preload, 500):
            await admit(rig, rig.pushers[(i // 500) % len(rig.pushers)], min(500, args.preload - i))
        await pool.execute("VACUUM ANALYZE checkins")  # as autovacuum would: not mid-phase
        await pool.execute("VACUUM ANALYZE gates")
        print(
            f"event {rig.event_id}: {args.pushers} pushing gates, {rig.stored:,} admissions"
            f" preloaded; {args.watchers} watchers per run",
            flush=True,
        )
        meter = Meter(pool, stack)
        rows.append(await measure(rig, meter, "nobody watching", None, args))
        print_row(rows[-1], header=True)
        watching = await dashboards(rig, args.watchers)
        try:
            rows.append(await measure(rig, meter, f"{args.watchers} dashboards", watching, args))
        finally:
            await stop_watchers(watching)
        print_row(rows[-1], header=False)
        watching = await long_polls(rig, args.watchers)
        try:
            label = f"{args.watchers} long-polling gates"
            rows.append(await measure(rig, meter, label, watching, args))
        finally:
            await stop_watchers(watching)
        print_row(rows[-1], header=False)
    return report(rows, rig.errors, args.watchers)


def print_row(row: Row, header: bool) -> None:
    if header:
        print(
            "| watchers | idle: syncd CPU | idle: Postgres CPU | idle: PG transactions/s"
            " | traffic: syncd CPU | traffic: Postgres CPU | traffic: PG transactions/s"
            " | pushes | events received | delivery p50 / p99 |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {row.label} | {row.idle.syncd_cpu:.1f} % | {row.idle.pg_cpu:.1f} % |"
        f" {row.idle.tps:.1f} | {row.traffic.syncd_cpu:.1f} % | {row.traffic.pg_cpu:.1f} % |"
        f" {row.traffic.tps:.1f} | {row.pushes} | {row.frames:,}"
        f" | {row.p50:.0f} / {row.p99:.0f} ms ({row.missing} missing) |",
        flush=True,
    )


def report(rows: list[Row], errors: list[str], watchers: int) -> int:
    if errors:
        print(f"{len(errors)} errors, first: {errors[0]}")
    _, dash, poll = rows
    print(
        f"dashboard: {watchers} dashboards vs {watchers} long-polling gates: syncd CPU idle"
        f" {dash.idle.syncd_cpu:.1f} % vs {poll.idle.syncd_cpu:.1f} %, traffic"
        f" {dash.traffic.syncd_cpu:.1f} % vs {poll.traffic.syncd_cpu:.1f} %; PG transactions/s"
        f" idle {dash.idle.tps:.1f} vs {poll.idle.tps:.1f}, traffic {dash.traffic.tps:.1f} vs"
        f" {poll.traffic.tps:.1f}"
    )
    return 1 if errors or dash.missing or poll.missing else 0


# --- process set-up --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_dashboard", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--watchers", type=int, default=100, help="dashboards, then gates")
    parser.add_argument("--pushers", type=int, default=20, help="gates pushing admissions")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between pushes")
    parser.add_argument("--idle", type=float, default=15.0, help="seconds of each idle phase")
    parser.add_argument("--traffic", type=float, default=30.0, help="seconds of door traffic")
    parser.add_argument("--preload", type=int, default=20000, help="admissions before the runs")
    parser.add_argument("--settle", type=float, default=11.0, help="seconds before measuring")
    parser.add_argument("--quick", action="store_true", help="10 watchers, short phases")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if args.quick:
        args.watchers, args.pushers, args.idle, args.traffic = 10, 3, 2.0, 4.0
        args.preload, args.settle, args.interval = 500, 1.0, 1.0
    if args.watchers < 1 or args.pushers < 1:
        parser.error("--watchers and --pushers must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    clients = args.watchers * 2 + args.pushers
    spec = StackSpec("dashboard", keep=args.keep, roles=("admin", "organiser"), clients=clients)
    run_on_stack(spec, functools.partial(run, args))


if __name__ == "__main__":
    main()
