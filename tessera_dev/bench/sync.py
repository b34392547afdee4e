"""Benchmark: simulated gates pushing check-ins to a real syncd, fan-out to a real consumer.

Starts ``syncd serve`` subprocess(es) on a fresh database (TESSERA_TEST_DATABASE_URL) with its
own exchange on the local RabbitMQ (TESSERA_TEST_AMQP_URL), uploads a ticket list, enrols
``--gates`` load gates and two probe gates, then for ``--seconds`` (the measured window):

* each load gate pushes its journal in seq order, one batch of ``--batch`` at a time, the next
  as soon as syncd answered the previous one. Traffic is what real gates send: each gate owns a
  disjoint slice of the tickets and admits fresh ones; ``--exits`` of the rows are exits of
  tickets it admitted, each followed some batches later by that ticket's re-entry;
  ``--denials`` are denied scans (half ``already_inside`` of a ticket it admitted, half
  ``unknown_ticket`` without a ticket id); ``--doubles`` admit a ticket the next gate admitted
  (the cross-gate double admission syncd must flag as a conflict). Journals and their JSON are
  built before the window; at send time only ``scanned_at``/``sent_at`` are filled in. All
  load gates share one aiohttp session. The report's ``traffic:`` line is the mix pushed;
* ``--followers`` of the load gates (default: all) also long-poll the change feed from its
  head, as online gates do, so syncd serves every admission to every one of them (each
  gate's own check-ins left out);
* a lean consumer (tessera_dev/bench/consumer.py, its own process) bound to the exchange with ``#``
  records each message's arrival, id and body. Fan-out latency is commit -> consumer: arrival
  minus the ``committed_at`` of the push answer that stored the check-in (syncd's clock read
  just after COMMIT returned; load gates' check-in messages, not conflicts, which a later push
  of another gate may raise). Arrival minus the body's ``stored_at`` (syncd's clock inside the
  group transaction, before commit) is printed too: it adds the transaction's own duration.
  When Postgres runs with ``track_commit_timestamp = on``, arrival minus the commit timestamp
  Postgres recorded for the check-in's row is printed as well: a check on ``committed_at``;
* probe gate A admits one ticket every 100 ms and probe gate B long-polls the change feed from
  its head (as after a snapshot; it receives every gate's check-ins, as a real gate does);
  convergence is from A starting its push to B's long-poll answer carrying that admission;
* CPU time of syncd, all Postgres processes, RabbitMQ (beam.smp), this process and the
  consumer is read from /proc at the window's start and end (``other`` = busy CPU of anything
  else; ``idle`` from /proc/stat), in % of one core.

The check-in rate counts only the load gates' pushing time (not the drain or the probes). The
expected fan-out is every check-in row in Postgres plus every row flagged as a conflict (one
``checkin.conflict`` message each); the report says whether all of it arrived, duplicates, how
far behind the consumer was when pushing stopped and how long it took to catch up.

``--tickets`` defaults to enough fresh tickets for 8,000 check-ins/s over ``--seconds``; a gate
that runs out stops early, and the report says so. ``--keep`` keeps the database for a
post-mortem (its name is printed); the exchange and the syncd processes are always cleaned up,
also on Ctrl-C or SIGTERM. ``BENCH_PROFILE=1`` writes a cProfile of each syncd to /tmp. Exit
status: 0; 1 if expected messages never arrived; 3 if a gate ran out of tickets; 130 if
interrupted.

    scripts/bench_sync [--gates 16] [--batch 100] [--seconds 20] [--replicas 1] [--tickets N]
                       [--exits 0.03] [--denials 0.02] [--doubles 0.005] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from dataclasses import dataclass

import aiohttp
import asyncpg

from shared.protocol import PUSH_PATH
from tessera_dev.bench.consumer import ConsumerProcess, Received
from tessera_dev.bench.kit import AMQP_URL, cpu_groups, cpu_line, cpu_snapshot
from tessera_dev.bench.stack import Gate, Stack, StackSpec, post, run_on_stack
from tessera_dev.bench.sync_report import report
from tessera_dev.bench.traffic import (
    Journal,
    Mix,
    Probe,
    Pushed,
    follow_feed,
    gate_loop,
    plan_journals,
    probes,
)

RATE_CEILING = 8_000  # check-ins/s the default --tickets provides fresh tickets for


# --- after the window ----------------------------------------------------------------------


async def expected_messages(pool: asyncpg.Pool) -> tuple[int, int]:
    """(check-ins stored, rows flagged as conflicts): one message each."""
    row = await pool.fetchrow("SELECT count(*), count(*) FILTER (WHERE conflict) FROM checkins")
    return int(row[0]), int(row[1])


@dataclass(frozen=True)
class Setup:
    args: argparse.Namespace
    stack: Stack

    @property
    def bases(self) -> list[str]:
        return self.stack.bases

    @property
    def token(self) -> str:
        return self.stack.tokens[0]

    @property
    def syncd_pids(self) -> list[int]:
        return self.stack.pids

    @property
    def mix(self) -> Mix:
        return Mix(self.args.exits, self.args.denials, self.args.doubles, self.args.batch)


async def prepare(
    session: aiohttp.ClientSession, base: str, token: str, n_tickets: int, gates: int
) -> tuple[int, list[str]]:
    """Create the event, upload its list, enrol ``gates`` gates (g0, g1, ...)."""
    auth = {"Authorization": f"Bearer {token}"}
    event = {"name": "Bench", "zones": ["Main"]}
    eid = int((await post(session, base + "/api/v1/events", event, auth))["event_id"])
    csv = "external_ref,category\n" + "".join(
        f"B{i},{'VIP' if i % 10 == 0 else 'GA'}\n" for i in range(n_tickets)
    )
    list_url = f"{base}/api/v1/events/{eid}/list"
    await post(session, list_url, csv.encode(), {**auth, "Content-Type": "text/csv"})
    enrolled = [await Gate.enrol(session, base, token, eid, f"g{i}") for i in range(gates)]
    return eid, [gate.credential for gate in enrolled]


async def bench(s: Setup) -> int:
    """Prepare, measure, report; returns the exit status."""
    args, mix = s.args, s.mix
    async with s.stack.clients(aiohttp.ClientTimeout(total=600)) as (session, pool):
        t = time.time()
        eid, creds = await prepare(session, s.bases[0], s.token, args.tickets, args.gates + 2)
        rows = await pool.fetch("SELECT ticket_id FROM tickets WHERE event_id = $1 ORDER BY 1", eid)
        tickets = [r[0] for r in rows]
        n_probe = probe_tickets(args.seconds)
        journals = plan_journals(tickets[n_probe:], args.gates, mix)
        print(
            f"event {eid}: {len(tickets):,} tickets ({(len(tickets) - n_probe) // args.gates:,}"
            f" per load gate), {args.gates} gates + 2 probes enrolled, journals planned;"
            f" prepared in {time.time() - t:.1f} s"
        )
        consumer = ConsumerProcess(AMQP_URL, s.stack.exchange)
        try:
            await asyncio.to_thread(consumer.start)
            probe = Probe(s.bases[-1], creds[-2], creds[-1], f"g{args.gates}", tickets[:n_probe])
            run = Run(s, session, pool, consumer, journals, creds[: args.gates], probe)
            return await report(run, await measure(run))
        finally:
            consumer.kill()


def probe_tickets(seconds: float) -> int:
    return int(seconds * 10) + 20


@dataclass(frozen=True)
class Run:
    s: Setup
    session: aiohttp.ClientSession
    pool: asyncpg.Pool
    consumer: ConsumerProcess
    journals: list[Journal]
    creds: list[str]  # the load gates'
    probe: Probe


@dataclass
class Window:
    """What the measured window and the drain after it produced."""

    pushed: list[Pushed]
    started: float
    elapsed: float  # load gates' pushing time
    cpu: str
    convergence: list[float]
    behind: int  # messages expected but not at the consumer when pushing stopped
    stored_rows: int
    conflicts: int
    arrived: int
    caught_up: float  # seconds after pushing stopped
    got: Received
    followed: int  # changes the following load gates received


async def measure(r: Run) -> Window:
    """The measured window, then the drain until the consumer has every expected message."""
    groups = cpu_groups(r.s.syncd_pids, r.consumer.pid)
    convergence: list[float] = []
    cpu0, t0 = cpu_snapshot(groups), time.time()
    stop = t0 + r.s.args.seconds
    probing = asyncio.create_task(probes(r.session, r.probe, stop, convergence))
    following = [
        asyncio.create_task(follow_feed(r.session, r.s.bases[i % len(r.s.bases)], cred, stop))
        for i, cred in enumerate(r.creds[: r.s.args.followers])
    ]
    try:
        pushed = await asyncio.gather(
            *(
                gate_loop(r.session, r.s.bases[i % len(r.s.bases)] + PUSH_PATH, cred, j, stop)
                for i, (cred, j) in enumerate(zip(r.creds, r.journals, strict=True))
            )
        )
        t_end = time.time()
        cpu = cpu_line(cpu0, cpu_snapshot(groups), t_end - t0)
        behind = sum(await expected_messages(r.pool)) - r.consumer.count
        await r.probe.a_done.wait()  # B may long-poll on; nothing more is pushed
        stored_rows, conflicts = await expected_messages(r.pool)
        while (  # noqa: ASYNC110
            r.consumer.count < stored_rows + conflicts
            and r.consumer.alive
            and time.time() - t_end < 120
        ):
            await asyncio.sleep(0.02)
        caught_up, arrived = time.time() - t_end, r.consumer.count
        await probing
        followed = sum(await asyncio.gather(*following))
    finally:
        for task in (probing, *following):  # on an error or Ctrl-C; their errors are not news
            task.cancel()
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
    got = await asyncio.to_thread(r.consumer.stop)
    return Window(
        pushed=pushed,
        started=t0,
        elapsed=t_end - t0,
        cpu=cpu,
        convergence=convergence,
        behind=behind,
        stored_rows=stored_rows,
        conflicts=conflicts,
        arrived=arrived,
        caught_up=caught_up,
        got=got,
        followed=followed,
    )


def default_tickets(args: argparse.Namespace) -> int:
    """Enough fresh tickets for RATE_CEILING check-ins/s (fresh admissions are ~the rest)."""
    fresh_share = max(0.5, 1 - 2 * args.exits - args.denials - args.doubles)
    return math.ceil(RATE_CEILING * args.seconds / fresh_share) + probe_tickets(args.seconds)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_sync", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gates", type=int, default=16, help="load gates (default 16)")
    parser.add_argument("--batch", type=int, default=100, help="check-ins per push (default 100)")
    parser.add_argument("--seconds", type=float, default=20, help="measured window (default 20)")
    parser.add_argument("--replicas", type=int, default=1, help="syncd processes (default 1)")
    parser.add_argument(
        "--tickets",
        type=int,
        help=f"tickets in the list (default: enough for {RATE_CEILING:,} check-ins/s over "
        "--seconds, plus the probe's)",
    )
    parser.add_argument("--exits", type=float, default=0.03, help="share of exits (0.03)")
    parser.add_argument("--denials", type=float, default=0.02, help="share of denials (0.02)")
    parser.add_argument(
        "--doubles", type=float, default=0.005, help="share of cross-gate doubles (0.005)"
    )
    parser.add_argument(
        "--followers",
        type=int,
        help="load gates that also long-poll the change feed (default: all of them)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--quick", action="store_true", help="a small run (4 gates, 2 s), as the test suite does"
    )
    args = parser.parse_args()
    if args.quick:  # tickets for three times the usual ceiling: a quiet machine goes fast
        args.gates, args.seconds = 4, 2.0
        args.tickets = args.tickets or 3 * default_tickets(args)
    shares = (args.exits, args.denials, args.doubles)
    if sum(shares) > 0.5 or min(shares) < 0:
        parser.error("--exits, --denials and --doubles are shares >= 0 adding up to <= 0.5")
    if args.tickets is None:
        args.tickets = default_tickets(args)
    if args.followers is None or args.followers > args.gates:
        args.followers = args.gates
    elif args.tickets < default_tickets(args):
        rate = RATE_CEILING * args.tickets / default_tickets(args)
        print(f"note: --tickets {args.tickets:,} has fresh tickets for ~{rate:,.0f} check-ins/s")
    if (args.tickets - probe_tickets(args.seconds)) // args.gates < 10 * args.batch:
        parser.error(f"--tickets {args.tickets:,} leaves fewer than 10 batches per gate")
    return args


def main() -> None:
    args = parse_args()
    spec = StackSpec("sync", keep=args.keep, replicas=args.replicas, pool_max=20)
    run_on_stack(spec, lambda stack: bench(Setup(args, stack)))


if __name__ == "__main__":
    main()
