"""Groups end to end (issue 18): a real ``syncd serve``, real ``gate run`` processes, Postgres and
RabbitMQ.

The organiser pushes the list again with a group column (FAM = R0-R3): no code is reissued.
Gate A, enrolled before, learns the groups from the feed; gate B, enrolled after, from its
snapshot (format 3). B admits R1 alone (group admission is off there) and the organiser revokes
R2. Then one scan of R0 at A (GATE_GROUP_ADMIT=true) decides the whole group: R0 and R3 in, R1
already inside, R2 cancelled, each on its own journal row. Every row reaches Postgres exactly once
(same gate, seq, ticket, outcome, via) and the exchange; B refuses R3, let in at A by the group.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from tests.e2e.event_stack import Stack, drain_queue
from tests.e2e.stack import Gate, eventually

GROUPED = "external_ref,holder_name,group\n" + "".join(
    f"R{i},P{i},{'FAM' if i < 4 else ''}\n" for i in range(40)
)


def _gate_db(gate: Gate, query: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{gate.data_dir / 'gate.sqlite3'}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def _ticket_ids(stack: Stack) -> dict[str, int]:
    page = stack.api.get(f"/api/v1/events/{stack.event_id}/tickets", params={"limit": "100"})
    return {t["external_ref"]: t["ticket_id"] for t in page.json()["tickets"]}


def _inside(gate: Gate, ticket_id: int) -> bool:
    rows = _gate_db(gate, f"SELECT inside FROM entry_state WHERE ticket_id = {ticket_id}")
    return bool(rows and rows[0][0])


def test_one_scan_admits_a_group_and_every_row_reaches_syncd(stack: Stack) -> None:
    ids = _ticket_ids(stack)
    a = stack.gate("A", GATE_GROUP_ADMIT="true")
    pushed = stack.api.post(
        f"/api/v1/events/{stack.event_id}/list",
        content=GROUPED,
        headers={"Content-Type": "text/csv"},
        params={"complete": "1"},
    )
    assert pushed.status_code == 200, pushed.text
    assert (pushed.json()["updated"], pushed.json()["reissued"]) == (4, 0)
    fam = "SELECT ticket_id FROM tickets WHERE group_ref = 'FAM' ORDER BY ticket_id"
    want = sorted(ids[f"R{i}"] for i in range(4))
    eventually(lambda: [r[0] for r in _gate_db(a, fam)] == want, "A learnt the group (feed)")
    b = stack.gate("B")
    assert [r[0] for r in _gate_db(b, fam)] == want, "B's snapshot carries the group"

    assert b.scan(stack.codes[1])["decision"] == "admit"  # R1 alone: B has groups off
    revoked = stack.api.post(f"/api/v1/events/{stack.event_id}/tickets/{ids['R2']}/revoke")
    assert revoked.status_code == 200, revoked.text
    eventually(lambda: _inside(a, ids["R1"]), "A applied B's admission of R1")
    eventually(
        lambda: _gate_db(a, f"SELECT status FROM tickets WHERE ticket_id = {ids['R2']}")[0][0] == 1,
        "A applied the revocation of R2",
    )

    decision = a.scan(stack.codes[0])
    assert (decision["decision"], decision["ticket_id"]) == ("admit", ids["R0"])
    group = decision["group"]
    assert group["message"] == "Group of 4: 2 admitted, 1 already inside, 1 cancelled"
    members = {m["ticket_id"]: (m["decision"], m["reason"]) for m in group["members"]}
    assert members == {
        ids["R1"]: ("deny", "already_inside"),
        ids["R2"]: ("deny", "revoked"),
        ids["R3"]: ("admit", None),
    }
    eventually(lambda: _inside(b, ids["R3"]), "B applied A's group admission of R3")
    refused = b.scan(stack.codes[3])
    assert refused["decision"] == "deny" and "A" in refused["message"]

    a.stop()
    b.stop()
    journaled = {
        ("A", decision["seq"]): (ids["R0"], "admit", decision["via"]),
        **{("A", m["seq"]): (m["ticket_id"], m["decision"], "group") for m in group["members"]},
        **{("B", d["seq"]): (d["ticket_id"], d["decision"], d["via"]) for d in b.decisions},
    }
    stored = {
        (r["name"], r["seq"]): (r["ticket_id"], r["outcome"], r["via"])
        for r in stack.sql(
            "SELECT g.name, c.seq, c.ticket_id, c.outcome, c.via FROM checkins c"
            " JOIN gates g USING (gate_id)"
        )
    }
    assert stored == journaled  # each member on its own row, exactly once
    eventually(lambda: not stack.sql("SELECT 1 FROM outbox"), "outbox relayed")
    seen = dict(asyncio.run(drain_queue(stack.queue)))  # message_id -> key: duplicates folded
    keys = [k for k in seen.values() if k.startswith("checkin.")]
    assert keys.count("checkin.performed") == 3  # R1 at B, R0 and R3 at A
    assert keys.count("checkin.invalid") == 3  # R1 and R2 in the group, R3 at B
