"""Concurrent pushes of many gates: conflicts still found, the feed still gap-free and ordered."""

from __future__ import annotations

import asyncio
import secrets
import time

import asyncpg
from aiohttp.test_utils import TestClient

from shared.protocol import ChangesPage, PushRequest
from syncd.checkins.pusher import JournalClashError as JournalClash
from syncd.checkins.pusher import Pusher, Stored, store_push
from tests.syncd.conftest import Org
from tests.syncd.gatekit import changes, enrolled_gate, event_with_tickets, send


async def test_concurrent_admissions_of_one_ticket_flag_all_but_the_earliest(
    client: TestClient, org_a: Org
) -> None:
    eid, tickets = await event_with_tickets(client, org_a, n=3)
    gates = [await enrolled_gate(client, org_a, eid, f"G{i}") for i in range(6)]
    watcher = await enrolled_gate(client, org_a, eid, "W")
    head = ChangesPage.model_validate(await changes(client, watcher, "")).cursor
    now = time.time()
    for rnd in range(3):  # every gate admits every ticket once per round, all pushed at once
        pushes = [
            send(client, g, [g.checkin(t, at=now + rnd * 10 + i) for t in tickets])
            for i, g in enumerate(gates)
        ]
        assert {status for status, _ in await asyncio.gather(*pushes)} == {200}
    page = ChangesPage.model_validate(await changes(client, watcher, head))
    seqs = [c.seq for c in page.changes]
    assert seqs == list(range(int(head) + 1, int(head) + 1 + len(tickets) * 18))  # gap-free
    entries: dict[int, list[bool]] = {}
    for c in page.changes:
        assert c.checkin is not None
        entries.setdefault(c.checkin.ticket_id, []).append(c.checkin.conflict)
    assert {t: sum(not f for f in flags) for t, flags in entries.items()} == dict.fromkeys(
        tickets, 1
    )  # only each ticket's earliest admission is the entry, however the pushes interleaved
    first = {c.checkin.ticket_id: c for c in page.changes if c.checkin and not c.checkin.conflict}
    assert {c.checkin.gate_name for c in first.values() if c.checkin} == {"G0"}


async def test_a_push_recomputes_conflicts_only_after_the_other_push_on_its_ticket_commits(
    client: TestClient, org_a: Org, db_url: str
) -> None:
    eid, tickets = await event_with_tickets(client, org_a, n=1)
    a = await enrolled_gate(client, org_a, eid, "A")
    b = await enrolled_gate(client, org_a, eid, "B")
    now = time.time()
    first = PushRequest.model_validate(
        {"sent_at": now, "checkins": [a.checkin(tickets[0], at=now)]}
    )
    late = PushRequest.model_validate(
        {"sent_at": now, "checkins": [b.checkin(tickets[0], at=now + 5)]}
    )
    one, two = await asyncpg.connect(db_url), await asyncpg.connect(db_url)
    try:
        held = one.transaction()
        await held.start()  # A's push is stored but not committed yet
        await store_push(one, a.gate_id, first, 0.0)
        pushing_b = asyncio.create_task(store_push(two, b.gate_id, late, 0.0))
        await asyncio.sleep(0.3)
        await held.commit()
        stored = await pushing_b
    finally:
        await one.close()
        await two.close()
    assert stored.conflicts == 1  # B saw A's admission, though both were in flight together
    page = ChangesPage.model_validate(await changes(client, b, ""))
    flags = [(c.checkin.gate_name, c.checkin.conflict) for c in page.changes if c.checkin]
    assert flags == [("A", False)]  # B's own check-in is left out of B's feed
    page = ChangesPage.model_validate(await changes(client, a, ""))
    assert [(c.checkin.gate_name, c.checkin.conflict) for c in page.changes if c.checkin] == [
        ("B", True)
    ]


async def test_conflict_recompute_looks_each_ticket_up_by_index_even_with_stale_statistics(
    db_url: str,
) -> None:
    """Conflicts of the pushed tickets are recomputed from a look-up per ticket, not from a scan
    of every admission of the event (which the planner chose once the table had grown since its
    last ANALYZE: 36 ms a push, and rising). Counts index entries read, not time."""
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("ANALYZE checkins")  # statistics of an empty table: the worst case
        await conn.execute(
            "INSERT INTO orgs (name) VALUES ('p'); INSERT INTO events (org_id, name)"
            " SELECT org_id, 'p' FROM orgs; INSERT INTO gates (event_id, org_id, name)"
            " SELECT event_id, org_id, 'g' FROM events"
        )
        gate, event = await conn.fetchrow("SELECT gate_id, event_id FROM gates")
        await conn.execute(
            "INSERT INTO checkins (gate_id, seq, event_id, scan_id, ticket_id, direction,"
            " outcome, scanned_at, at, skew) SELECT $1, i, $2, uuid_send(gen_random_uuid()),"
            " i, 'in', 'admit', i, i, 0 FROM generate_series(1, 20000) i",
            gate,
            event,
        )
        before = await _admitted_index_reads(conn)
        seq, now = 20000, time.time()
        for _ in range(8):  # past the 5 custom plans, onto the cached generic one
            rows = []
            for ticket in (5, 7, 11):
                seq += 1
                rows.append(
                    {
                        "seq": seq,
                        "scan_id": secrets.token_hex(16),
                        "ticket_id": ticket,
                        "direction": "out" if seq % 2 else "in",
                        "outcome": "admit",
                        "scanned_at": now + seq,
                    }
                )
            push = PushRequest.model_validate({"sent_at": now, "checkins": rows})
            await store_push(conn, gate, push, 0.0)
        read = await _admitted_index_reads(conn) - before
    finally:
        await conn.close()
    assert 0 < read < 500, read  # a scan of the event's admissions reads 20,000 per push


async def _admitted_index_reads(conn: asyncpg.Connection) -> int:
    await conn.execute("SELECT pg_stat_force_next_flush()")
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    return int(
        await conn.fetchval(
            "SELECT sum(idx_tup_read) FROM pg_stat_user_indexes"
            " WHERE indexrelname IN ('checkins_admitted', 'checkins_latest')"
        )
    )


async def test_pushes_arriving_together_share_one_commit_and_a_clash_refuses_only_its_own(
    db_url: str,
) -> None:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        await pool.execute(
            "INSERT INTO orgs (name) VALUES ('p'); INSERT INTO events (org_id, name)"
            " SELECT org_id, 'p' FROM orgs; INSERT INTO gates (event_id, org_id, name)"
            " SELECT event_id, org_id, 'g' || i FROM events, generate_series(1, 5) i"
        )
        gates = [r[0] for r in await pool.fetch("SELECT gate_id FROM gates ORDER BY gate_id")]
        now = time.time()

        def push(seq: int, ticket: int, scan_id: str | None = None) -> PushRequest:
            row = {
                "seq": seq,
                "scan_id": scan_id or secrets.token_hex(16),
                "ticket_id": ticket,
                "direction": "in",
                "outcome": "admit",
                "scanned_at": now + ticket,
            }
            return PushRequest.model_validate({"sent_at": now, "checkins": [row]})

        pusher = Pusher(concurrency=1)
        first = await pusher.store(pool, gates[0], push(1, 100, "aa" * 16), 0.0)
        assert (first.acked_seq, first.stored, pusher.groups) == (1, 1, 1)
        results = await asyncio.gather(
            *(pusher.store(pool, g, push(1 if g != gates[0] else 2, 200 + g), 0.0) for g in gates),
            *(pusher.store(pool, g, push(2 if g != gates[0] else 3, 300 + g), 0.0) for g in gates),
            pusher.store(pool, gates[0], push(1, 999, "bb" * 16), 0.0),  # seq 1 is "aa..."
            return_exceptions=True,
        )
        stored = await pool.fetchval("SELECT count(*) FROM checkins")
        feed = [r[0] for r in await pool.fetch("SELECT seq FROM change_feed ORDER BY seq")]
    finally:
        await pool.close()
    *ok, clash = results
    assert isinstance(clash, JournalClash) and clash.seq == 1
    assert all(isinstance(r, Stored) and r.stored == 1 for r in ok), ok
    assert sorted(r.acked_seq for r in ok if isinstance(r, Stored)) == [
        1,
        1,
        1,
        1,
        2,
        2,
        2,
        2,
        2,
        3,
    ]
    assert (pusher.groups, pusher.pushes) == (2, 11)  # the ten arrived together: one commit
    assert stored == 11 and feed == list(range(1, 12))
