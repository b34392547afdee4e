"""A synthetic event night for benchmarks (scripts/bench_stats): one event's check-in rows,
generated in time order and loaded with COPY, and the figures they must give.

The night: ``Size.tickets`` tickets (categories GA, VIP, Crew), ``Size.gates`` gates (zones
Main, VIP, Backstage; the last gate has no zone and no check-in; every third gate drilled),
``Size.checkins`` rows over the last ``Size.hours`` hours: entries (new tickets and re-entries;
now and then a double entry, flagged a conflict, or another event's ticket), exits of people
inside, denials with reasons (a known, an unknown or no ticket), admissions annulled by the
next row of their gate, passages confirming a gate's last admission, tailgates. Its automatic
check-out was 4 hours ago. ``Night.expected`` counts what the figures must show, inside now
included, while the rows are generated.
"""

from __future__ import annotations

import itertools
import json
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import time as wall_time
from typing import Any

import asyncpg

from shared.checkout import latest_checkout

ZONES = ("Main", "Main", "VIP", "Backstage")  # the last gate of each event has none ("")
CATEGORIES = (("GA", 80), ("VIP", 15), ("Crew", 5))
REASONS = (
    ("already_inside", 30),
    ("unknown_ticket", 20),
    ("wrong_zone", 15),
    ("revoked", 10),
    ("not_a_ticket", 10),
    ("bad_signature", 5),
    ("reentry_denied", 5),
    (None, 5),  # a gate that sent no reason: counted as "unknown"
)
COUNTED = ("admitted", "exits", "annulled", "passed", "tailgates", "denied", "conflicts")
CHECKIN_COLUMNS = (
    "gate_id", "seq", "event_id", "scan_id", "ticket_id", "direction", "outcome", "reason",
    "via", "scanned_at", "at", "skew", "conflict", "ref_seq", "annulled",
)  # fmt: skip


@dataclass(frozen=True)
class Size:
    """How big a night is."""

    checkins: int
    tickets: int
    gates: int
    hours: float


@dataclass
class Night:
    """One event's generated rows, and the figures they must give."""

    event_id: int
    gates: list[int]
    first_ticket: int
    tickets: int
    foreign: list[int]  # another event's ticket ids, admitted here now and then
    checkins: int
    boundary: float
    expected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))
    latest: dict[int, tuple[str, float]] = field(default_factory=dict)  # ticket -> direction, at

    def inside(self) -> int:
        return sum(1 for d, at in self.latest.values() if d == "in" and at >= self.boundary)


class Pool:
    """Tickets in one state (inside, left), with an O(1) random pick."""

    def __init__(self) -> None:
        self.items: list[int] = []
        self.where: dict[int, int] = {}

    def add(self, item: int) -> None:
        if item not in self.where:
            self.where[item] = len(self.items)
            self.items.append(item)

    def discard(self, item: int) -> None:
        if (i := self.where.pop(item, None)) is not None:
            last = self.items.pop()
            if i < len(self.items):
                self.items[i], self.where[last] = last, i

    def pick(self, rng: random.Random) -> int | None:
        return self.items[rng.randrange(len(self.items))] if self.items else None


@dataclass
class Gen:
    """The running state of one night's generator: who is inside, who left, each gate's seq."""

    night: Night
    rng: random.Random
    start: float
    step: float
    seqs: dict[int, int] = field(default_factory=dict)
    skews: dict[int, float] = field(default_factory=dict)
    last_admit: dict[int, tuple[int, int]] = field(default_factory=dict)  # gate -> seq, ticket
    inside: Pool = field(default_factory=Pool)
    left: Pool = field(default_factory=Pool)
    next_ticket: int = 0
    emitted: int = 0

    def row(self, gate: int, ticket: int | None, direction: str, outcome: str, **kw: Any) -> tuple:
        self.seqs[gate] = seq = self.seqs.get(gate, 0) + 1
        at = self.start + self.emitted * self.step
        skew = self.skews.setdefault(gate, self.rng.uniform(-2, 2))
        self.emitted += 1
        n = self.night
        return (
            gate, seq, n.event_id, uuid.UUID(int=self.rng.getrandbits(128)).bytes, ticket,
            direction, outcome, kw.get("reason"), kw.get("via", "scanner"), at - skew, at, skew,
            kw.get("conflict", False), kw.get("ref"), kw.get("annulled", False),
        )  # fmt: skip

    def entering(self) -> int:
        """Who enters: mostly a new ticket or one that left; now and then someone inside (an
        offline gate's double entry: a conflict) or another event's ticket."""
        n, rng, roll = self.night, self.rng, self.rng.random()
        if roll < 0.01 and (again := self.inside.pick(rng)) is not None:
            return again
        if roll < 0.013 and n.foreign:
            return rng.choice(n.foreign)
        back = self.left.pick(rng)
        if self.next_ticket < n.first_ticket + n.tickets and (back is None or roll < 0.6):
            self.next_ticket += 1
            return self.next_ticket - 1
        return back if back is not None else rng.randrange(n.first_ticket, self.next_ticket)

    def moved(self, ticket: int, direction: str) -> None:
        (self.inside if direction == "in" else self.left).add(ticket)
        (self.left if direction == "in" else self.inside).discard(ticket)


def weighted(rng: random.Random, choices: tuple[tuple[Any, int], ...]) -> Any:
    return rng.choices([c for c, _ in choices], [w for _, w in choices])[0]


def _admission(g: Gen, gate: int, exit_: bool) -> Iterator[tuple]:
    """An entry or an exit (of someone inside), now and then annulled by its gate's next row."""
    n, rng = g.night, g.rng
    leaving = g.inside.pick(rng) if exit_ else None
    direction, ticket = ("out", leaving) if leaving is not None else ("in", g.entering())
    annulled = rng.random() < 0.01
    prev = n.latest.get(ticket)
    conflict = direction == "in" and not annulled and prev is not None and prev[0] == "in"
    row = g.row(gate, ticket, direction, "admit", conflict=conflict, annulled=annulled)
    yield row
    if annulled:  # undone: as if it never happened
        n.expected["annulled"] += 1
        yield g.row(gate, ticket, direction, "annul", reason="staff", ref=row[1], via="kiosk")
        return
    n.latest[ticket] = (direction, row[10])
    n.expected["admitted" if direction == "in" else "exits"] += 1
    n.expected["conflicts"] += conflict
    g.last_admit[gate] = (row[1], ticket)
    g.moved(ticket, direction)


def _door(g: Gen, gate: int, kind: float) -> Iterator[tuple]:
    """A denial, a passage confirming the gate's last admission, or a tailgate."""
    n, rng = g.night, g.rng
    if kind < 0.07:
        who, ticket = rng.random(), None
        if who < 0.3:
            ticket = None  # no ticket read (not a ticket, bad signature)
        elif who < 0.45:
            ticket = 10**12 + g.emitted  # on no list
        else:
            ticket = rng.randrange(n.first_ticket, n.first_ticket + n.tickets)
        n.expected["denied"] += 1
        yield g.row(gate, ticket, "in", "deny", reason=weighted(rng, REASONS))
    elif kind < 0.10 and gate in g.last_admit:
        seq, ticket = g.last_admit[gate]
        n.expected["passed"] += 1
        yield g.row(gate, ticket, "in", "passed", ref=seq, via="sensor")
    else:
        n.expected["tailgates"] += 1
        yield g.row(gate, None, "in", "tailgate", via="sensor")


def checkin_rows(n: Night, hours: float, seed: int) -> Iterator[tuple]:
    """``n.checkins`` rows in time order over the last ``hours`` hours; fills ``n.expected``."""
    rng = random.Random(seed)
    span = hours * 3600
    g = Gen(n, rng, time.time() - span, span / n.checkins, next_ticket=n.first_ticket)
    doors = n.gates[:-1]  # the last gate has no check-ins
    while g.emitted < n.checkins:
        gate, kind = rng.choice(doors), rng.random()
        if kind < 0.105:
            yield from _door(g, gate, kind)
        else:
            yield from _admission(g, gate, exit_=kind < 0.36)
    n.checkins = g.emitted  # an annulment may end the night one row past the size
    n.expected["inside"] = n.inside()


# --- loading -----------------------------------------------------------------------------------


async def new_event(
    conn: asyncpg.Connection, org: int, name: str, size: Size, first_ticket: int
) -> Night:
    """An event with its gates and tickets (ids from ``first_ticket`` on); no check-in yet."""
    four_hours_ago = time.gmtime(time.time() - 4 * 3600)
    checkout = time.strftime("%H:%M", four_hours_ago)
    eid = await conn.fetchval(
        "INSERT INTO events (org_id, name, timezone, checkout_time) VALUES ($1, $2, 'UTC', $3)"
        " RETURNING event_id",
        org,
        name,
        wall_time(four_hours_ago.tm_hour, four_hours_ago.tm_min),
    )
    gates = [await _gate(conn, eid, org, i, size.gates) for i in range(size.gates)]
    boundary = latest_checkout(time.time(), "UTC", checkout)
    assert boundary is not None
    await conn.copy_records_to_table(
        "tickets",
        records=_tickets(eid, first_ticket, size.tickets),
        columns=("ticket_id", "event_id", "external_ref", "nonce", "kid", "zone", "category"),
    )
    return Night(eid, gates, first_ticket, size.tickets, [], size.checkins, boundary)


async def _gate(conn: asyncpg.Connection, eid: int, org: int, i: int, count: int) -> int:
    zone = "" if i == count - 1 else ZONES[i % len(ZONES)]
    drill = None
    if i % 3 == 0:
        items = [
            {"name": "camera", "status": "ok" if i % 2 else "fail", "figure": "", "detail": ""},
            {"name": "clock", "status": "warn", "figure": "3 s", "detail": "drift"},
        ]
        drill = {"ran_at": time.time(), "seconds": 4.2, "items": items}
    gate_id: int = await conn.fetchval(
        "INSERT INTO gates (event_id, org_id, name, zone, enrolled_at, last_drill_at,"
        " last_drill_result, last_drill) VALUES ($1, $2, $3, $4, now(),"
        " CASE WHEN $5::text IS NULL THEN NULL ELSE now() END, $5, $6::jsonb) RETURNING gate_id",
        eid,
        org,
        f"door {i}",
        zone,
        None if drill is None else ("green" if i % 2 else "red"),
        None if drill is None else json.dumps(drill),
    )
    return gate_id


def _tickets(eid: int, first: int, count: int) -> Iterator[tuple]:
    rng = random.Random(eid)
    for tid in range(first, first + count):
        category = weighted(rng, CATEGORIES)
        yield (tid, eid, f"ref-{tid}", rng.getrandbits(32), b"\x00\x01\x02\x03", 1, category)


async def load(conn: asyncpg.Connection, size: Size) -> Night:
    """The benchmarked event and another one of a quarter its size. VACUUM ANALYZE runs before
    the benchmarked event's last hour arrives: live traffic is what autovacuum has not visited
    yet (it comes after a fifth of a table is new), so its pages are not all-visible and an
    index-only scan reads their rows from the table."""
    org = await conn.fetchval("INSERT INTO orgs (name) VALUES ('Bench') RETURNING org_id")
    other_size = Size(
        max(1, size.checkins // 4), max(1, size.tickets // 4), max(2, size.gates // 4), size.hours
    )
    other = await new_event(conn, org, "Other night", other_size, size.tickets + 1)
    night = await new_event(conn, org, "Bench night", size, 1)
    night.foreign = list(range(other.first_ticket, other.first_ticket + min(other.tickets, 50)))
    await _copy(conn, checkin_rows(other, size.hours, seed=2))
    rows = checkin_rows(night, size.hours, seed=1)
    await _copy(conn, itertools.islice(rows, round(size.checkins * (1 - 1 / size.hours))))
    for table in ("checkins", "tickets", "gates", "events"):
        await conn.execute(f"VACUUM ANALYZE {table}")
    await _copy(conn, rows)  # the last hour
    await conn.execute(
        "UPDATE gates g SET acked_seq = m.seq, skew = m.skew, last_push_at = now()"
        " FROM (SELECT gate_id, max(seq) AS seq, max(skew) AS skew FROM checkins"
        " GROUP BY 1) m WHERE g.gate_id = m.gate_id"
    )
    return night


async def _copy(conn: asyncpg.Connection, rows: Iterable[tuple]) -> None:
    await conn.copy_records_to_table("checkins", records=rows, columns=CHECKIN_COLUMNS)
