"""The simulated gates of scripts/bench_sync: their traffic planned, pushed and probed.

``plan_journals`` writes each load gate's journal before the measured window (the mix is
described in bench_sync's docstring: fresh admissions, exits and re-entries, denials,
cross-gate doubles); ``gate_loop`` pushes one journal batch by batch, filling in only the scan
and send times; ``probes`` measures convergence between two probe gates. ``traffic_line`` and
``planned_conflicts`` summarise what was pushed for the report.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import json
import os
import random
import re
import time
from dataclasses import dataclass, field

import aiohttp

from shared.protocol import CHANGES_PATH, PRESENCE_PATH, PUSH_PATH
from tessera_dev.bench.kit import BenchError

# Row kinds of a load gate's journal, as counted in the report.
FRESH, EXIT, REENTRY, INSIDE, UNKNOWN, DOUBLE = range(6)
KIND_NAMES = ("fresh", "exits", "re-entries", "denied already_inside", "denied unknown", "doubles")


# --- planning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mix:
    exits: float
    denials: float
    doubles: float
    batch: int


@dataclass
class Journal:
    """One load gate's planned rows: JSON up to ``"scanned_at":``, kind, fresh index -> seq."""

    batch: int
    rows: list[bytes] = field(default_factory=list)
    kinds: bytearray = field(default_factory=bytearray)
    fresh_seq: list[int] = field(default_factory=list)
    doubles: list[tuple[int, int]] = field(default_factory=list)  # (my seq, next gate's index)


def scan_row(
    seq: int, ticket: int | None, direction: str, outcome: str, reason: str | None
) -> bytes:
    row = {
        "seq": seq,
        "scan_id": os.urandom(16).hex(),
        "ticket_id": ticket,
        "direction": direction,
        "outcome": outcome,
        "reason": reason,
    }
    return json.dumps(row, separators=(",", ":"))[:-1].encode() + b',"scanned_at":'


class Planner:
    """Writes one gate's journal until its fresh tickets run out (see bench_sync's docstring).

    Only tickets at even slice indexes ever exit (so an exit is always of a ticket inside, at
    least two batches after its admission, and its re-entry two to ten batches later); only odd
    ones are doubled, each once, at least three batches behind this gate's own progress, by the
    one gate before it: every double is exactly one conflict, whichever admission syncd sees
    first.
    """

    def __init__(self, mine: list[int], nxt: list[int] | None, mix: Mix, seed: int) -> None:
        self.mine, self.nxt, self.mix = mine, nxt, mix
        self.rng = random.Random(seed)
        self.j = Journal(mix.batch)
        self.fresh = 0
        self.exitable: list[tuple[int, int]] = []  # (seq admitted, ticket), in seq order
        self.due: list[tuple[int, int]] = []  # heap of (seq from which to re-enter, ticket)
        self.doubled = -1

    def plan(self) -> Journal:
        while self.fresh < len(self.mine):
            seq = len(self.j.rows) + 1
            if self.due and self.due[0][0] <= seq:
                self._add(REENTRY, heapq.heappop(self.due)[1], "in", "admit", None)
                continue
            r, m = self.rng.random(), self.mix
            if not (
                (r < m.exits and self._exit(seq))
                or (m.exits <= r < m.exits + m.denials and self._deny(r - m.exits))
                or (0 <= r - m.exits - m.denials < m.doubles and self._double())
            ):
                self._fresh(seq)
        return self.j

    def _add(
        self, kind: int, ticket: int | None, direction: str, outcome: str, why: str | None
    ) -> None:
        self.j.rows.append(scan_row(len(self.j.rows) + 1, ticket, direction, outcome, why))
        self.j.kinds.append(kind)

    def _fresh(self, seq: int) -> None:
        ticket = self.mine[self.fresh]
        if self.fresh % 2 == 0:
            self.exitable.append((seq, ticket))
        self.j.fresh_seq.append(seq)
        self.fresh += 1
        self._add(FRESH, ticket, "in", "admit", None)

    def _exit(self, seq: int) -> bool:
        batch = self.mix.batch
        ready = bisect.bisect_right(self.exitable, (seq - 2 * batch, 2**63))
        if not ready:
            return False
        _, ticket = self.exitable.pop(self.rng.randrange(ready))
        self._add(EXIT, ticket, "out", "admit", None)
        heapq.heappush(self.due, (seq + self.rng.randint(2 * batch, 10 * batch), ticket))
        return True

    def _deny(self, r: float) -> bool:
        if r < self.mix.denials / 2:
            self._add(UNKNOWN, None, "in", "deny", "unknown_ticket")
            return True
        if self.fresh < 2:
            return False
        ticket = self.mine[2 * self.rng.randrange(self.fresh // 2) + 1]  # odd: never exits
        self._add(INSIDE, ticket, "in", "deny", "already_inside")
        return True

    def _double(self) -> bool:
        limit = min(self.fresh - 3 * self.mix.batch, len(self.nxt or []) - 1)
        first = max(self.doubled + 2, limit - self.mix.batch) | 1  # odd, unused, a batch wide
        if self.nxt is None or limit < first:
            return False
        target = self.rng.randrange(first, limit + 1) | 1
        if target > limit:
            return False
        self.doubled = target
        self.j.doubles.append((len(self.j.rows) + 1, target))
        self._add(DOUBLE, self.nxt[target], "in", "admit", None)
        return True


def plan_journals(tickets: list[int], gates: int, mix: Mix) -> list[Journal]:
    """Gate i owns ``tickets[i*k:(i+1)*k]``; gate i doubles tickets of gate i+1 (mod gates)."""
    k = len(tickets) // gates
    slices = [tickets[i * k : (i + 1) * k] for i in range(gates)]
    return [
        Planner(slices[i], slices[(i + 1) % gates] if gates > 1 else None, mix, seed=i).plan()
        for i in range(gates)
    ]


def body(rows: list[bytes], since: float) -> bytes:
    """The push request: scan times spread from ``since`` (the previous push) to now."""
    now = time.time()
    step = (now - since) / len(rows)
    checkins = b",".join([b"%s%.3f}" % (r, since + step * (i + 1)) for i, r in enumerate(rows)])
    return b'{"sent_at":%.6f,"checkins":[%s]}' % (now, checkins)


# --- load and probe gates ------------------------------------------------------------------


@dataclass
class Pushed:
    """What one load gate did in the window."""

    stored: int = 0
    acked: int = 0
    latencies: list[float] = field(default_factory=list)
    committed: list[tuple[int, float]] = field(default_factory=list)  # (last seq, committed_at)
    ran_out_at: float | None = None


async def post(session: aiohttp.ClientSession, url: str, credential: str, data: bytes) -> dict:
    headers = {"Authorization": f"Bearer {credential}", "Content-Type": "application/json"}
    async with session.post(url, data=data, headers=headers) as resp:
        raw = await resp.read()
    if resp.status != 200:
        raise BenchError(f"push answered {resp.status}: {raw[:300]!r}")
    answer: dict = json.loads(raw)
    return answer


async def gate_loop(
    session: aiohttp.ClientSession, url: str, credential: str, journal: Journal, stop: float
) -> Pushed:
    """Push the journal in seq order, one batch at a time, until ``stop``."""
    out, since = Pushed(), time.time()
    batch = journal.batch
    for first in range(0, len(journal.rows), batch):
        if time.time() >= stop:
            return out
        rows = journal.rows[first : first + batch]
        data, since = body(rows, since), time.time()
        t0 = time.perf_counter()
        answer = await post(session, url, credential, data)
        out.latencies.append(time.perf_counter() - t0)
        out.committed.append((first + len(rows), answer["committed_at"]))
        out.stored += answer["stored"]
        out.acked = answer["acked_seq"]
    out.ran_out_at = time.time()
    return out


async def get_raw(
    session: aiohttp.ClientSession, url: str, credential: str, **params: str
) -> bytes:
    headers = {"Authorization": f"Bearer {credential}"}
    async with session.get(url, params=params, headers=headers) as resp:
        raw = await resp.read()
    if resp.status != 200:
        raise BenchError(f"GET {url} answered {resp.status}: {raw[:300]!r}")
    return raw


async def get_json(
    session: aiohttp.ClientSession, url: str, credential: str, **params: str
) -> dict:
    page: dict = json.loads(await get_raw(session, url, credential, **params))
    return page


@dataclass(frozen=True)
class Probe:
    base: str
    a: str  # credential of gate A (admits)
    b: str  # credential of gate B (long-polls)
    a_name: str
    tickets: list[int]
    a_done: asyncio.Event = field(default_factory=asyncio.Event)  # A's last push answered


async def probes(session: aiohttp.ClientSession, p: Probe, stop: float, out: list[float]) -> None:
    """Gate A admits one probe ticket every 100 ms; gate B long-polls the feed from its head.

    Convergence = B's long-poll answer carrying A's admission minus the start of A's push. B
    starts at the feed head (like a gate fresh from a snapshot) instead of paging through the
    whole ticket list, and re-takes the head if it ever gets ``snapshot_required``.
    """
    sent: dict[int, float] = {}
    cursor = (await get_json(session, p.base + PRESENCE_PATH, p.b))["cursor"]
    pushing = True

    async def follow() -> None:
        nonlocal cursor
        while pushing or (sent and time.time() < stop + 5):
            page = await get_json(session, p.base + CHANGES_PATH, p.b, cursor=cursor, wait="1")
            now = time.time()
            if page.get("snapshot_required"):
                cursor = (await get_json(session, p.base + PRESENCE_PATH, p.b))["cursor"]
                continue
            cursor = page["cursor"]
            for c in page["changes"]:
                ck = c.get("checkin")
                if ck and ck["gate_name"] == p.a_name and ck["ticket_id"] in sent:
                    out.append(now - sent.pop(ck["ticket_id"]))

    follower = asyncio.create_task(follow())
    try:
        for seq, ticket in enumerate(p.tickets, start=1):
            if time.time() >= stop:
                break
            tick = time.time()
            sent[ticket] = tick
            row = scan_row(seq, ticket, "in", "admit", None)
            await post(session, p.base + PUSH_PATH, p.a, body([row], tick - 0.01))  # in order
            await asyncio.sleep(max(0.0, 0.1 - (time.time() - tick)))
    finally:
        pushing = False
        p.a_done.set()
    await follower
    if sent:
        print(f"convergence: {len(sent)} probe admission(s) never reached B")


_CURSOR = re.compile(rb'"cursor":\s*("[^"]*")')
_CHANGE = re.compile(rb'\{"seq":\s*\d')
_SNAPSHOT = re.compile(rb'"snapshot_required":\s*true')


async def follow_feed(
    session: aiohttp.ClientSession, base: str, credential: str, stop: float
) -> int:
    """A load gate's pull loop: long-poll the change feed from its head until ``stop``, as an
    online gate does beside its pushes; returns how many changes it received. Pages are
    skimmed (cursor, change count), not decoded: decoding them is the gates' CPU, not syncd's,
    and here it would share the cores syncd is measured on."""
    received = 0
    cursor = (await get_json(session, base + PRESENCE_PATH, credential))["cursor"]
    while time.time() < stop:
        raw = await get_raw(session, base + CHANGES_PATH, credential, cursor=cursor, wait="1")
        if (found := _CURSOR.search(raw)) is None:
            raise BenchError(f"GET {CHANGES_PATH} answered a page without cursor: {raw[:300]!r}")
        if _SNAPSHOT.search(raw):
            cursor = (await get_json(session, base + PRESENCE_PATH, credential))["cursor"]
            continue
        cursor = json.loads(found[1])
        received += len(_CHANGE.findall(raw))
    return received


# --- report --------------------------------------------------------------------------------


def planned_conflicts(journals: list[Journal], pushed: list[Pushed]) -> int:
    """Doubles whose both admissions were pushed: each is exactly one conflict."""
    n = 0
    for i, j in enumerate(journals):
        nxt, theirs = journals[(i + 1) % len(journals)], pushed[(i + 1) % len(journals)]
        n += sum(
            seq <= pushed[i].acked and t < len(nxt.fresh_seq) and nxt.fresh_seq[t] <= theirs.acked
            for seq, t in j.doubles
        )
    return n


def traffic_line(journals: list[Journal], pushed: list[Pushed], mix: Mix) -> str:
    counts = [0] * len(KIND_NAMES)
    for j, p in zip(journals, pushed, strict=True):
        for kind in range(len(KIND_NAMES)):
            counts[kind] += j.kinds.count(kind, 0, p.acked)
    total = sum(counts) or 1
    shares = " ".join(f"{name} {c / total:.1%}" for name, c in zip(KIND_NAMES, counts, strict=True))
    return (
        f"traffic: {total:,} rows pushed: {shares} "
        f"(--exits {mix.exits:g} --denials {mix.denials:g} --doubles {mix.doubles:g})"
    )
