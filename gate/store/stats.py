"""Figures for the display and `gate status`: cheap queries, no writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gate.checkin.messages import zone_info
from gate.store.db import Store
from gate.store.records import EventInfo, JournalRow, Stats
from shared.checkout import latest_checkout

_LAST = (
    "SELECT seq, scan_id, event_id, ticket_id, direction, decision, reason, scanned_at, via,"
    " synced, ref_seq FROM journal ORDER BY seq DESC LIMIT ?"
)


async def read_stats(store: Store, now: float, *, last: int = 10) -> Stats:
    """``admitted_today`` counts entries since local midnight in the (first) event's zone."""
    events = list(store.events.values())
    tz = zone_info(events[0].timezone if events else "UTC")
    midnight = datetime.fromtimestamp(now, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    admitted = await _one(
        store,
        "SELECT count(*) FROM journal j WHERE decision = 'admit' AND direction = 'in'"
        " AND scanned_at >= ? AND NOT EXISTS (SELECT 1 FROM journal a"
        " WHERE a.ref_seq = j.seq AND a.decision = 'annul')",
        midnight.timestamp(),
    )
    rows = await store.conn.execute_fetchall(_LAST, (last,))
    issued = [e.list_issued_at for e in events if e.list_issued_at]
    return Stats(
        events=events,
        admitted_today=admitted,
        inside_now=await _inside(store, events, now),
        list_size=sum(e.ticket_count for e in events),
        list_age_seconds=now - min(issued) if issued else None,
        journal_size=await _one(store, "SELECT coalesce(max(seq), 0) FROM journal"),
        unsynced=await _one(store, "SELECT count(*) FROM journal WHERE synced = 0"),
        last_decisions=[_row(r) for r in rows],
    )


async def _inside(store: Store, events: list[EventInfo], now: float) -> int:
    """Tickets inside: entries since their event's automatic check-out (shared.checkout)."""
    sql, params = "SELECT count(*) FROM entry_state WHERE inside = 1", []
    for e in events:
        if (boundary := latest_checkout(now, e.timezone, e.checkout_time)) is not None:
            sql += " AND NOT (event_id = ? AND last_in_at < ?)"
            params += [e.event_id, boundary]
    return await _one(store, sql, *params)


async def _one(store: Store, sql: str, *params: Any) -> int:
    rows = await store.conn.execute_fetchall(sql, params)
    return int(next(iter(rows))[0])


def _row(r: Any) -> JournalRow:
    return JournalRow(
        r[0], bytes(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], bool(r[9]), r[10]
    )
