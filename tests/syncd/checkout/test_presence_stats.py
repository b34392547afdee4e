"""syncd applies the automatic check-out with no writes: figures, the gates' presence and the
conflict flags leave out admissions before the boundary. Real Postgres, real pushes; the
boundary is set a few hours before now and the admissions are placed around it."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient

from shared.checkout import latest_checkout
from tests.syncd.conftest import Org
from tests.syncd.gatekit import Gate, enrolled_gate, event_with_tickets, send

ZONE = "Asia/Kathmandu"  # +05:45 all year: no daylight-saving day makes a test flaky


async def _checkout_hours_ago(client: TestClient, org: Org, eid: int, hours: float) -> float:
    """Set the event's check-out time to the local time ``hours`` ago; returns the boundary."""
    now = time.time()
    checkout = datetime.fromtimestamp(now - hours * 3600, ZoneInfo(ZONE)).strftime("%H:%M")
    resp = await client.patch(
        f"/api/v1/events/{eid}",
        json={"checkout_time": checkout, "timezone": ZONE},
        headers=org.h("organiser"),
    )
    assert resp.status == 200, await resp.text()
    boundary = latest_checkout(now, ZONE, checkout)
    assert boundary is not None and now - boundary > hours * 3600 - 120
    return boundary


async def _push(client: TestClient, gate: Gate, *rows: tuple[int, str, float]) -> dict[str, Any]:
    status, body = await send(client, gate, [gate.checkin(t, d, at=at) for t, d, at in rows])
    assert status == 200, body
    return body


async def _stats(client: TestClient, org: Org, eid: int) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/events/{eid}/stats", headers=org.h("viewer"))
    assert resp.status == 200
    return dict(await resp.json())


async def _conflicted(client: TestClient, org: Org, eid: int) -> list[tuple[int, str]]:
    resp = await client.get(f"/api/v1/events/{eid}/conflicts", headers=org.h("viewer"))
    return [(c["ticket_id"], c["gate_name"]) for c in (await resp.json())["conflicts"]]


async def test_inside_presence_and_conflicts_start_clean_each_day(
    client: TestClient, org_a: Org
) -> None:
    eid, (t0, t1, t2, t3) = await event_with_tickets(client, org_a, 4)
    b = await _checkout_hours_ago(client, org_a, eid, 3)
    gate_a = await enrolled_gate(client, org_a, eid, "A")
    gate_b = await enrolled_gate(client, org_a, eid, "B")
    await _push(
        client,
        gate_a,
        (t0, "in", b - 3600),  # in last night, never left: outside now
        (t2, "in", b - 7200),
        (t2, "out", b - 3600),
        (t3, "in", b - 600),  # in last night at A ...
        (t1, "in", b + 60),  # in today
    )
    body = await _push(client, gate_b, (t3, "in", b + 600))  # ... and again today at B
    assert body["acked_seq"] == 1
    stats = await _stats(client, org_a, eid)
    assert stats["checked_out_at"] == b
    assert (stats["inside"], stats["admitted"], stats["conflicts"]) == (2, 5, 0)
    assert {g["name"]: g["inside"] for g in stats["gates"]} == {"A": 1, "B": 1}
    assert sum(c["inside"] for c in stats["categories"].values()) == 2
    assert sum(c["seen"] for c in stats["categories"].values()) == 4
    presence = await client.get("/api/v1/gate/presence", headers=gate_a.h())
    inside = {c["ticket_id"]: c["gate_name"] for c in (await presence.json())["inside"]}
    assert inside == {t1: "A", t3: "B"}
    # A second entry on the same day is still a conflict.
    await _push(client, gate_a, (t1, "in", b + 900))
    assert await _conflicted(client, org_a, eid) == [(t1, "A")]
    # Without the setting, last night's entry counts as inside again.
    await client.patch(
        f"/api/v1/events/{eid}", json={"checkout_time": None}, headers=org_a.h("organiser")
    )
    stats = await _stats(client, org_a, eid)
    assert (stats["checked_out_at"], stats["inside"]) == (None, 3)


async def test_a_second_entry_on_a_later_day_is_no_conflict(client: TestClient, org_a: Org) -> None:
    """Regression guard: gates apart overnight each admitted the ticket once, a day apart."""
    eid, (t0, t1, *_) = await event_with_tickets(client, org_a, 2)
    b = await _checkout_hours_ago(client, org_a, eid, 2)
    gate_a = await enrolled_gate(client, org_a, eid, "A")
    gate_b = await enrolled_gate(client, org_a, eid, "B")
    await _push(client, gate_a, (t0, "in", b - 60), (t1, "in", b - 60))
    await _push(client, gate_b, (t0, "in", b + 60))
    assert await _conflicted(client, org_a, eid) == []
    # The same two entries without a check-out time: the later one is a conflict.
    await client.patch(
        f"/api/v1/events/{eid}", json={"checkout_time": None}, headers=org_a.h("organiser")
    )
    await _push(client, gate_b, (t1, "in", b + 60))
    assert await _conflicted(client, org_a, eid) == [(t1, "B")]


async def test_reentry_never_allows_one_entry_a_day(client: TestClient, org_a: Org) -> None:
    eid, (t0, *_) = await event_with_tickets(client, org_a, 1)
    resp = await client.patch(
        f"/api/v1/events/{eid}", json={"reentry": "never"}, headers=org_a.h("organiser")
    )
    assert resp.status == 200
    b = await _checkout_hours_ago(client, org_a, eid, 3)
    gate_a = await enrolled_gate(client, org_a, eid, "A")
    gate_b = await enrolled_gate(client, org_a, eid, "B")
    await _push(client, gate_a, (t0, "in", b - 7200), (t0, "out", b - 7000))
    await _push(client, gate_b, (t0, "in", b + 60), (t0, "out", b + 120))
    assert await _conflicted(client, org_a, eid) == []
    await _push(client, gate_a, (t0, "in", b + 300))  # twice today: refused by the rule
    assert await _conflicted(client, org_a, eid) == [(t0, "A")]
