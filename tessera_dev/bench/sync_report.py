"""What ``bench_sync`` prints after its window: rates, fan-out and convergence latencies, CPU."""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg

from tessera_dev.bench.consumer import Received
from tessera_dev.bench.kit import pct
from tessera_dev.bench.traffic import Pushed, planned_conflicts, traffic_line

if TYPE_CHECKING:
    from tessera_dev.bench.sync import Run, Window

CHECKIN_KEYS = (b"checkin.performed", b"checkin.invalid", b"checkout.performed")


@dataclass
class Fanout:
    commit: list[float] = field(default_factory=list)  # arrival - committed_at
    stored: list[float] = field(default_factory=list)  # arrival - stored_at
    pg: list[float] = field(default_factory=list)  # arrival - Postgres commit timestamp


def _committed(msg: dict, pushed: list[Pushed]) -> float | None:
    """``committed_at`` of the push that carried this (load gate's) check-in."""
    gate, seq = msg.get("gate_name") or "", msg.get("seq")
    if not gate[1:].isdigit() or int(gate[1:]) >= len(pushed) or seq is None:
        return None
    commits = pushed[int(gate[1:])].committed
    i = bisect.bisect_left(commits, (seq, 0.0))
    return commits[i][1] if i < len(commits) else None


async def fanout(pool: asyncpg.Pool, got: Received, pushed: list[Pushed]) -> Fanout:
    """Latencies of every check-in message (see the module docstring)."""
    f, by_row = Fanout(), {}
    for arrived, key, raw in zip(got.arrivals, got.routing_keys, got.bodies, strict=True):
        if not key.startswith(b"check"):
            continue
        msg = json.loads(raw)
        f.stored.append(arrived - msg["stored_at"])
        if key in CHECKIN_KEYS and (committed := _committed(msg, pushed)) is not None:
            f.commit.append(arrived - committed)
            by_row[msg["gate_name"], msg["seq"]] = arrived
    if await pool.fetchval("SHOW track_commit_timestamp") == "on":
        rows = await pool.fetch(
            "SELECT g.name, c.seq, extract(epoch FROM pg_xact_commit_timestamp(c.xmin))::float8"
            " FROM checkins c JOIN gates g USING (gate_id)"
        )
        f.pg = [by_row[n, q] - t for n, q, t in rows if t is not None and (n, q) in by_row]
    return f


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 50) * 1000:7.1f} ms  p99 {pct(values, 99) * 1000:7.1f} ms"


# --- the run -------------------------------------------------------------------------------


async def report(r: Run, w: Window) -> int:
    """Print the figures; returns the exit status (0 ok, 1 messages missing, 3 tickets ran out)."""
    args, fan = r.s.args, await fanout(r.pool, w.got, w.pushed)
    stored = sum(p.stored for p in w.pushed)
    latencies = [x for p in w.pushed for x in p.latencies]
    want = w.stored_rows + w.conflicts
    missing = max(0, want - w.arrived)
    print(
        f"stored {stored:,} check-ins in {w.elapsed:.1f} s = {stored / w.elapsed:,.0f} "
        f"check-ins/s ({args.gates} gates x {args.batch}/push, {len(r.s.bases)} replica(s))"
    )
    print(traffic_line(r.journals, w.pushed, r.s.mix))
    print(
        f"fan-out messages: expected {want:,} (check-ins in Postgres {w.stored_rows:,} + "
        f"conflicts flagged {w.conflicts:,}; doubles pushed "
        f"{planned_conflicts(r.journals, w.pushed):,}); consumer got {w.arrived:,} distinct, "
        f"duplicates {w.got.duplicates:,}; "
        + ("all arrived" if not missing else f"MISSING {missing:,}")
        + f"; {max(0, w.behind):,} behind when pushing stopped, "
        + (f"all in +{w.caught_up:.2f} s" if not missing else f"gave up at +{w.caught_up:.0f} s")
    )
    print(f"push latency    {ms(latencies)}  ({len(latencies):,} pushes)")
    print(f"fan-out latency {ms(fan.commit)}  (commit -> consumer, {len(fan.commit):,} messages)")
    print(
        f"                {ms(fan.stored)}  (stored_at -> consumer, {len(fan.stored):,} messages:"
        " adds the group transaction)"
    )
    if fan.pg:
        print(
            f"                {ms(fan.pg)}  (Postgres commit timestamp -> consumer, "
            f"{len(fan.pg):,} messages)"
        )
    print(
        f"convergence     {ms(w.convergence)}  (A push start -> B long-poll answer, "
        f"{len(w.convergence)} probes)"
    )
    if args.followers:
        print(
            f"feed            {args.followers} load gates long-polled it beside their pushes and"
            f" received {w.followed:,} changes ({w.followed / w.elapsed:,.0f}/s)"
        )
    print(f"{w.cpu}  over the {w.elapsed:.1f} s window")
    early = [p.ran_out_at for p in w.pushed if p.ran_out_at is not None]
    if early:
        print(
            f"WARNING: {len(early)} load gate(s) ran out of fresh tickets before the window ended"
            f" (the first {min(early) - w.started:.1f} s into it): the rate is understated;"
            " raise --tickets"
        )
        return 3
    return 1 if missing else 0
