"""Wipe on revoke end to end (issue 18): real ``syncd serve``, real ``gate run`` processes.

Gate A scans online, then offline (its journal holds what syncd has not got); the organiser
revokes it over the API; when its network comes back, its first call is refused and it deletes
every holder name from its disk within seconds, refuses the next scan, keeps its journal
untouched, and still refuses after a restart. Enrolled again (a new gate: syncd never enrols a
revoked one) while it runs, it scans with names again, and the scans syncd never got from it
arrive as the new gate's, each exactly once. Gate B, revoked while it was off, learns it at its
first call after starting and wipes as well.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from tests.e2e.event_stack import Stack
from tests.e2e.stack import Gate, eventually

NAMES = [f"Wipetest Holder-{i:02d} Ærøskøbing" for i in range(8)]


def names_on_disk(gate: Gate) -> list[str]:
    """The names found in the gate's database file and its write-ahead log, as raw bytes."""
    db = gate.data_dir / "gate.sqlite3"
    raw = b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal")) if p.exists())
    return [n for n in NAMES if n.encode() in raw]


def journal(gate: Gate) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{gate.data_dir / 'gate.sqlite3'}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute("SELECT * FROM journal ORDER BY seq").fetchall()
    finally:
        db.close()


def holder_codes(stack: Stack) -> list[str]:
    """List NAMES as tickets W0..W7 (before any gate enrols) and return their QR texts."""
    rows = "external_ref,holder_name\n" + "".join(f"W{i},{n}\n" for i, n in enumerate(NAMES))
    stack.api.post(
        f"/api/v1/events/{stack.event_id}/list",
        content=rows.encode(),
        headers={"Content-Type": "text/csv"},
    ).raise_for_status()
    listed = stack.api.get(f"/api/v1/events/{stack.event_id}/tickets", params={"limit": "100"})
    ids = {t["external_ref"]: t["ticket_id"] for t in listed.json()["tickets"]}
    return [
        stack.api.get(f"/api/v1/events/{stack.event_id}/tickets/{ids[f'W{i}']}/qr").text.strip()
        for i in range(len(NAMES))
    ]


def stored(stack: Stack, gate_id: int) -> list[tuple[int, str]]:
    rows = stack.sql(
        "SELECT seq, encode(scan_id, 'hex') AS s FROM checkins WHERE gate_id = $1 ORDER BY seq",
        gate_id,
    )
    return [(r["seq"], r["s"]) for r in rows]


def gate_id(stack: Stack, name: str) -> int:
    return int(stack.sql("SELECT gate_id FROM gates WHERE name = $1", name)[0]["gate_id"])


def revoke(stack: Stack, name: str) -> None:
    resp = stack.api.delete(f"/api/v1/events/{stack.event_id}/gates/{gate_id(stack, name)}")
    assert resp.status_code == 200, resp.text


def test_a_revoked_gate_wipes_keeps_its_journal_and_comes_back_enrolled(stack: Stack) -> None:
    codes = holder_codes(stack)
    a, b = stack.gate("A"), stack.gate("B", start=False)
    first = a.scan(codes[0])
    assert first["decision"] == "admit" and first["holder"] == NAMES[0]
    eventually(lambda: [r[10] for r in journal(a)] == [1], "A's first scan synced")
    assert names_on_disk(a) == NAMES

    stack.net.cut()  # A is offline: what it scans now, syncd has not got
    assert [a.scan(c)["decision"] for c in codes[1:3]] == ["admit", "admit"]
    kept = journal(a)
    assert [r[10] for r in kept] == [1, 0, 0]
    revoke(stack, "A")
    revoke(stack, "B")  # B is off: it learns it when it starts
    stack.net.restore()
    back = time.monotonic()
    eventually(lambda: not names_on_disk(a), "A's holder names gone from its disk", 30)
    print(f"A wiped {time.monotonic() - back:.1f} s after its network came back")

    refused = a.scan(codes[3])
    assert (refused["decision"], refused["reason"], refused["seq"]) == (
        "deny",
        "gate_revoked",
        None,
    )
    assert journal(a) == kept  # rows and synced flags as they were
    a.stop()
    a.start()  # a restart: still revoked, nothing to call syncd about
    assert a.scan(codes[3])["reason"] == "gate_revoked"
    assert journal(a) == kept and not names_on_disk(a)

    b.start()
    eventually(lambda: not names_on_disk(b), "B's holder names gone after its first call", 30)
    assert b.scan(codes[4])["reason"] == "gate_revoked"
    b.stop()

    created = stack.api.post(f"/api/v1/events/{stack.event_id}/gates", json={"name": "A2"})
    a.enroll(created.json()["code"])  # beside the running gate
    new_id = gate_id(stack, "A2")
    eventually(lambda: len(stored(stack, new_id)) == 2, "A's undelivered scans at syncd as A2")
    assert stored(stack, new_id) == [(1, bytes(kept[1][1]).hex()), (2, bytes(kept[2][1]).hex())]
    assert [seq for seq, _ in stored(stack, gate_id(stack, "A"))] == [1]
    again = a.scan(codes[5])  # the running gate resumed: it delivered the carried scans
    assert again["decision"] == "admit" and again["holder"] == NAMES[5] and again["seq"] == 3
    eventually(lambda: len(stored(stack, new_id)) == 3, "A2's own scan synced")
    a.stop()
    scan_ids = [s for gid in (gate_id(stack, "A"), new_id) for _, s in stored(stack, gid)]
    assert len(scan_ids) == len(set(scan_ids)) == 4  # every scan exactly once at syncd
