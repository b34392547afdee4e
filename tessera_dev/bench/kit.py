"""Pieces the benchmark scripts share (scripts/bench_sync, scripts/bench_relay).

The local services they use (TESSERA_TEST_DATABASE_URL, TESSERA_TEST_AMQP_URL), a free port,
percentiles, admin SQL on the server's default database, deleting a run's exchange, and the CPU
accounting from /proc: per component (syncd, Postgres, RabbitMQ, the bench and its consumer) and
the machine's idle and other busy time, in % of one core.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass

import aio_pika
import asyncpg

PG_URL = os.environ.get(
    "TESSERA_TEST_DATABASE_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("TESSERA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


class BenchError(Exception):
    """Something the benchmark needs failed (a push answered an error, the consumer died)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


async def admin_sql(sql: str) -> None:
    """Run ``sql`` on PG_URL's database (CREATE or DROP of a bench database)."""
    admin = await asyncpg.connect(PG_URL)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


async def cleanup_exchange(name: str) -> None:
    """Delete a run's exchange and the dead-letter and unrouted ones syncd declared with it."""
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        ch = await conn.channel()
        for q in (f"{name}.dead", f"{name}.unrouted"):
            await ch.queue_delete(q)
        for ex in (name, f"{name}.dlx", f"{name}.unrouted"):
            await ch.exchange_delete(ex)


# --- CPU accounting ------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")  # /proc counts CPU time in these


def _processes() -> dict[int, tuple[str, int, int, int]]:
    """pid -> (comm, ppid, own utime+stime, reaped children's cutime+cstime), in ticks."""
    procs = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                raw = f.read()
            comm = raw[raw.index(b"(") + 1 : raw.rindex(b")")].decode(errors="replace")
            f_ = raw[raw.rindex(b")") + 2 :].split()
            own, reaped = int(f_[11]) + int(f_[12]), int(f_[13]) + int(f_[14])
            procs[int(entry.name)] = (comm, int(f_[1]), own, reaped)
    return procs


def _cpu_stat() -> dict[str, int]:
    """The whole machine's ticks from /proc/stat: all, idle, irq (hard+soft), steal."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return {"all": sum(v), "idle": v[3] + v[4], "irq": v[5] + v[6], "steal": v[7]}


@dataclass(frozen=True)
class CpuGroups:
    """Which processes each component is: roots with their descendants, or single pids."""

    trees: dict[str, list[int]]  # name -> root pids (descendants and reaped children count)
    single: dict[str, int]  # name -> pid (only its own threads)


@dataclass(frozen=True)
class CpuSnapshot:
    ticks: dict[str, int]  # per component, plus the machine's (see _cpu_stat)
    others: dict[int, tuple[str, int]]  # pid -> (comm, own ticks) of every other process


def cpu_snapshot(g: CpuGroups) -> CpuSnapshot:
    procs = _processes()
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    ticks = {name: procs[pid][2] if pid in procs else 0 for name, pid in g.single.items()}
    members = set(g.single.values())
    for name, roots in g.trees.items():
        todo = [r for r in roots if r in procs]
        total = sum(procs[r][3] for r in todo)
        while todo:
            pid = todo.pop()
            members.add(pid)
            total += procs[pid][2]
            todo += children.get(pid, [])
        ticks[name] = total
    ticks.update(_cpu_stat())
    others = {pid: (v[0], v[2]) for pid, v in procs.items() if pid not in members}
    return CpuSnapshot(ticks, others)


def cpu_groups(syncd_pids: list[int], consumer_pid: int) -> CpuGroups:
    """syncd's pids with their descendants; Postgres and RabbitMQ (each process tree rooted at
    a ``postgres`` or ``beam.smp`` whose parent is not one); this process; the consumer."""
    procs = _processes()

    def roots(comm: str) -> list[int]:
        return [p for p, v in procs.items() if v[0] == comm and procs.get(v[1], ("",))[0] != comm]

    return CpuGroups(
        trees={"syncd": syncd_pids, "postgres": roots("postgres"), "rabbitmq": roots("beam.smp")},
        single={"bench": os.getpid(), "consumer": consumer_pid},
    )


def cpu_line(start: CpuSnapshot, end: CpuSnapshot, seconds: float) -> str:
    """Components in % of one core. ``other`` is the machine's busy time beyond them (other
    processes, interrupts); its biggest parts are named: another run or tests skew figures."""
    cores = os.cpu_count() or 1
    d = {k: end.ticks[k] - start.ticks[k] for k in start.ticks}
    scale = cores * 100 / (d["all"] or 1)  # machine ticks -> % of one core
    names = ("syncd", "postgres", "rabbitmq", "bench", "consumer")
    parts = {k: d[k] / CLK_TCK / seconds * 100 for k in names}
    busy = (d["all"] - d["idle"] - d["steal"]) * scale
    parts["other"] = max(0.0, busy - sum(parts.values()))
    parts["idle"] = d["idle"] * scale
    line = f"CPU (of {cores} cores, % of one core) " + " ".join(
        f"{k} {v:.0f}%" for k, v in parts.items()
    )
    notes = [f"{k} {d[k] * scale:.0f}%" for k in ("irq", "steal") if d[k] * scale >= 1]
    used = {p: t - start.others.get(p, ("", 0))[1] for p, (_, t) in end.others.items()}
    if used and (top := max(used, key=used.__getitem__)) and used[top] / CLK_TCK / seconds > 0.03:
        notes.append(
            f"busiest other {end.others[top][0]} pid {top} {used[top] / CLK_TCK / seconds:.0%}"
        )
    return line + (f" ({'; '.join(notes)})" if notes else "")
