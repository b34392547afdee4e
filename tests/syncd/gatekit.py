"""Helpers for gate-sync tests: an event with tickets, enrolled gates, check-in batches."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient

from tests.syncd.conftest import Org, create_event, push

HEADER = "external_ref,holder_name,email,category,zones,valid_from,valid_until\n"


@dataclass
class Gate:
    gate_id: int
    name: str
    credential: str
    seq: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)

    def h(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}

    def checkin(
        self,
        ticket_id: int | None,
        direction: str = "in",
        outcome: str = "admit",
        at: float | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        self.seq += 1
        row = {
            "seq": self.seq,
            "scan_id": uuid.uuid4().hex,
            "ticket_id": ticket_id,
            "direction": direction,
            "outcome": outcome,
            "reason": reason,
            "via": "scanner",
            "scanned_at": time.time() if at is None else at,
        }
        self.sent.append(row)
        return row


async def event_with_tickets(client: TestClient, org: Org, n: int = 5) -> tuple[int, list[int]]:
    event = await create_event(client, org)
    eid = event["event_id"]
    rows = "".join(f"R{i},Holder {i},,{'VIP' if i % 2 else 'GA'},,,\n" for i in range(n))
    status, body = await push(client, org, eid, HEADER + rows)
    assert status == 200, body
    resp = await client.get(f"/api/v1/events/{eid}/tickets", headers=org.h())
    ids = sorted(t["ticket_id"] for t in (await resp.json())["tickets"])
    return eid, ids


async def create_gate(
    client: TestClient, org: Org, event_id: int, name: str, zone: str = ""
) -> dict[str, Any]:
    resp = await client.post(
        f"/api/v1/events/{event_id}/gates",
        json={"name": name, "zone": zone},
        headers=org.h("organiser"),
    )
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def enrolled_gate(client: TestClient, org: Org, event_id: int, name: str) -> Gate:
    created = await create_gate(client, org, event_id, name)
    resp = await client.post(
        "/api/v1/gate/enroll", json={"code": created["code"], "device": f"{name}-host"}
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    return Gate(body["gate_id"], name, body["credential"])


async def send(
    client: TestClient, gate: Gate, rows: list[dict[str, Any]], sent_at: float | None = None
) -> tuple[int, dict[str, Any]]:
    body = {"sent_at": time.time() if sent_at is None else sent_at, "checkins": rows}
    resp = await client.post("/api/v1/gate/checkins", json=body, headers=gate.h())
    return resp.status, dict(await resp.json())


async def changes(
    client: TestClient, gate: Gate, cursor: str = "", wait: float = 0
) -> dict[str, Any]:
    resp = await client.get(
        "/api/v1/gate/changes", params={"cursor": cursor, "wait": str(wait)}, headers=gate.h()
    )
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())
