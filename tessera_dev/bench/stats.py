"""Benchmark: what one computation of an event's figures costs (``syncd.api.stats.figures``: the
stats answer, ``tessera stats``, and what the dashboard hub recomputes at most once a second
while traffic flows), as the event grows.

For each size of ``--checkins``: a throwaway database with syncd's migrations and a night loaded
with COPY (``tessera_dev/bench/night.py``): one event with ``--tickets`` tickets (default: 2/5
of the check-ins), ``--gates`` gates and every kind of check-in over ``--hours`` hours ending
now, its automatic check-out 4 hours ago; another event with a quarter of the rows shares the
tables, as on a real server. VACUUM ANALYZE runs before the last hour is loaded: as under live
traffic, the newest rows are not vacuumed yet (not all-visible, not in the statistics).

The figures are first checked against what was loaded (the totals and inside now, counted while
the rows were generated): figures that no longer add up fail the run. Then ``--runs`` timed
computations, each in its own repeatable-read, read-only transaction as the handler opens it,
after 2 untimed ones; per query also its own time (each function of ``syncd.api.queries.stats``
that ``figures()`` calls). The database is dropped at the end (``--keep`` keeps it). Per size::

    stats: C check-ins: figures() median A ms, p95 B ms

then one table of median / p95 ms for all sizes.

    scripts/bench_stats [--checkins 20000,200000,1000000] [--tickets N] [--gates 40]
                        [--hours 6] [--runs 15] [--quick] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from syncd.api import stats
from syncd.api.queries import events as event_q
from syncd.api.queries import stats as q
from syncd.migrate import migrate
from tessera_dev.bench.kit import PG_URL, BenchError, admin_sql, pct
from tessera_dev.bench.night import Night, Size, load

WINDOW = 60  # minutes: the dashboard's per-minute window


# --- timing ------------------------------------------------------------------------------------


Timings = dict[str, list[float]]


def timed_queries(timings: Timings) -> Callable[[], None]:
    """Wraps every query function of ``syncd.api.queries.stats`` so each call's time lands in
    ``timings`` under its name; returns the undo."""
    originals: dict[str, Callable[..., Awaitable[Any]]] = {}
    for name, fn in vars(q).items():
        if inspect.iscoroutinefunction(fn) and fn.__module__ == q.__name__:
            originals[name] = fn
            setattr(q, name, _timed(fn, timings.setdefault(name, [])))

    def undo() -> None:
        for name, fn in originals.items():
            setattr(q, name, fn)

    return undo


def _timed(fn: Callable[..., Awaitable[Any]], into: list[float]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            into.append((time.perf_counter() - started) * 1000)

    return wrapper


async def compute(conn: asyncpg.Connection, event: asyncpg.Record) -> dict[str, Any]:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await stats.figures(conn, event, WINDOW)


def check(night: Night, shown: dict[str, Any]) -> None:
    """The figures must be what was loaded: a rewrite that miscounts fails the bench."""
    got = {k: shown[k] for k in night.expected}
    if got != night.expected:
        raise BenchError(f"figures {got} differ from the loaded rows {night.expected}")
    if sum(g["admitted"] for g in shown["gates"]) != shown["admitted"]:
        raise BenchError("the gates' admissions do not add up to the total")
    exp = ", ".join(f"{k} {v:,}" for k, v in night.expected.items())
    print(f"figures agree with the loaded rows: {exp}", flush=True)


async def measure(conn: asyncpg.Connection, night: Night, runs: int) -> Timings:
    event = await event_q.event_by_id(conn, night.event_id)
    check(night, await compute(conn, event))
    await compute(conn, event)  # warm-up: statements prepared, pages cached
    timings: Timings = {"figures()": []}
    undo = timed_queries(timings)
    try:
        for _ in range(runs):
            started = time.perf_counter()
            await compute(conn, event)
            timings["figures()"].append((time.perf_counter() - started) * 1000)
    finally:
        undo()
    return {k: v for k, v in timings.items() if v}


def cell(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} / {pct(values, 95):.1f}"


def report(results: list[tuple[Size, float, Timings]]) -> None:
    names = list(results[0][2])
    print("\nmedian / p95 ms of one computation, and of each query in it")
    print("| check-ins | tickets | gates | load s | " + " | ".join(names) + " |")
    print("|---:" * (4 + len(names)) + "|")
    for size, seconds, timings in results:
        cells = " | ".join(cell(timings[n]) if n in timings else "-" for n in names)
        print(f"| {size.checkins:,} | {size.tickets:,} | {size.gates} | {seconds:.0f} | {cells} |")


async def bench_size(size: Size, runs: int, made: list[str]) -> tuple[float, Timings]:
    """Loads ``size`` into a new database (its name appended to ``made``) and times it."""
    db = f"tessera_bench_stats_{uuid.uuid4().hex[:8]}"
    made.append(db)
    await admin_sql(f'CREATE DATABASE "{db}"')
    conn = await asyncpg.connect(PG_URL.rsplit("/", 1)[0] + "/" + db)
    try:
        await migrate(conn)
        started = time.perf_counter()
        night = await load(conn, size)
        seconds = time.perf_counter() - started
        print(
            f"event {night.event_id}: {night.checkins:,} check-ins, {size.tickets:,} tickets,"
            f" {size.gates} gates, loaded in {seconds:.1f} s",
            flush=True,
        )
        timings = await measure(conn, night, runs)
    finally:
        await conn.close()
    figures = timings["figures()"]
    print(
        f"stats: {size.checkins:,} check-ins: figures() median {statistics.median(figures):.1f} ms,"
        f" p95 {pct(figures, 95):.1f} ms",
        flush=True,
    )
    return seconds, timings


async def run(args: argparse.Namespace, made: list[str]) -> None:
    results = []
    for checkins in args.checkins:
        tickets = args.tickets or max(1, checkins * 2 // 5)
        size = Size(checkins, tickets, args.gates, args.hours)
        seconds, timings = await bench_size(size, args.runs, made)
        if not args.keep:
            await drop(made)
        results.append((size, seconds, timings))
    report(results)


async def drop(made: list[str]) -> None:
    while made:
        name = made.pop()
        await admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print(f"dropped database {name}", flush=True)


def sizes(text: str) -> list[int]:
    try:
        values = [int(v.replace("_", "")) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not values or min(values) < 10:
        raise argparse.ArgumentTypeError("each size must be at least 10 check-ins")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_stats", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--checkins", type=sizes, default=[20_000, 200_000, 1_000_000], help="event sizes"
    )
    parser.add_argument("--tickets", type=int, default=0, help="tickets (default: 2/5 of C)")
    parser.add_argument("--gates", type=int, default=40, help="gates of the event (40)")
    parser.add_argument("--hours", type=float, default=6.0, help="the night's length (6)")
    parser.add_argument("--runs", type=int, default=15, help="timed computations per size (15)")
    parser.add_argument("--quick", action="store_true", help="2,000 check-ins, 3 runs")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    args = parser.parse_args(argv)
    if args.quick:
        args.checkins, args.runs = [2_000], 3
    if args.gates < 2 or args.runs < 1 or args.tickets < 0 or args.hours <= 1:
        parser.error(
            "--gates must be at least 2, --runs at least 1, --tickets not negative,"
            " --hours more than 1"
        )
    return args


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, _terminated)
    made: list[str] = []
    status: int | str = 0
    try:
        asyncio.run(run(args, made))
    except KeyboardInterrupt:
        status = "bench_stats: interrupted"
    except BenchError as exc:
        status = f"bench_stats: {exc}"
    finally:
        if args.keep and made:
            print(f"kept database(s) {', '.join(made)}")
        elif not args.keep:
            asyncio.run(drop(made))
    sys.exit(status)


if __name__ == "__main__":
    main()
