"""The list's optional ``group`` column (an order, a family): parsed and bounded per row, stored,
and carried to gates by the feed, the snapshot and the organiser's bundle.

A group change alone is an update, not a reissue: a family's QR codes stay good when the
organiser regroups them. A gate built before groups gets a format-2 snapshot (it reads no other);
a gate that asks for format 3 gets each ticket's group.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from shared.bundle import BundleReader, BundleTicket
from shared.protocol import ChangesPage
from shared.ticket import public_key_from_b64
from syncd.api.queries.tickets import GROUP_PAGE
from syncd.lists.parse import Limits, check_list
from syncd.lists.rows import GROUP_PROBLEM, Problem, RowChecker
from tests.syncd.conftest import Org, create_event, push
from tests.syncd.gatekit import changes, enrolled_gate
from tests.syncd.lists.test_lists import feed, tickets

HEADER = "external_ref,holder_name,group\n"
LIMITS = Limits(record_chars=2000, rows=1000)


def check(tmp_path: Path, text: str, media_type: str = "text/csv") -> tuple[list[Problem], str]:
    """The problems and the COPY payload of one list, checked as a push checks it."""
    body, copy_file = tmp_path / "body", tmp_path / "copy"
    body.write_text(text, encoding="utf-8", newline="")
    checker = RowChecker(["Main"], "UTC", 100)
    check_list(body, copy_file, media_type, checker, LIMITS)
    return checker.problems, copy_file.read_text(encoding="utf-8")


def groups_of(payload: str) -> dict[str, str]:
    """external_ref -> group, from the COPY payload (the group is the last field)."""
    return {line.split("\t")[1]: line.split("\t")[8] for line in payload.splitlines()}


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "careful"])
def test_good_and_empty_groups(tmp_path: Path, quoted: bool) -> None:
    """Both CSV paths: a group kept as written (inner spaces, case, any script), surrounding
    blanks dropped, an empty cell no group."""
    rows = ["A1,Ann,ORD-1", "A2,Bob, ORD-1 ", "A3,Cy,", "A4,Di,Müller family 2", "A5,Ed,ord-1"]
    if quoted:
        rows[0] = '"A1","Ann","ORD-1"'
    problems, payload = check(tmp_path, HEADER + "\n".join(rows) + "\n")
    assert problems == []
    assert groups_of(payload) == {
        "A1": "ORD-1",
        "A2": "ORD-1",
        "A3": "",
        "A4": "Müller family 2",
        "A5": "ord-1",
    }


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "careful"])
def test_bad_groups_are_named_per_row(tmp_path: Path, quoted: bool) -> None:
    """Too long (65 characters), a control character (a bell in plain text, a tab or a line
    break inside quotes): one problem each, naming row and column; good rows are not blamed."""
    rows = [
        "B1,Ann,ORD-1",
        "B2,Bob," + "x" * 65,
        "B3,Cy,ring\abell",
        'B4,Di,"tab\there"',
        'B5,Ed,"two\nlines"',
        "B6,Flo," + "y" * 64,
    ]
    if quoted:
        rows[0] = '"B1","Ann","ORD-1"'
    problems, _ = check(tmp_path, HEADER + "\n".join(rows) + "\n")
    assert problems == [
        Problem(2, "group", "longer than 64 characters"),
        Problem(3, "group", GROUP_PROBLEM),
        Problem(4, "group", GROUP_PROBLEM),
        Problem(5, "group", GROUP_PROBLEM),
    ]


def test_json_groups_and_aliases(tmp_path: Path) -> None:
    """JSON takes text or a whole number (an order number); anything else is "must be text".
    The headers ``order``, ``order_code`` (pretix's "Order code") and ``group_ref`` mean group."""
    rows = [
        {"external_ref": "J1", "group": "ORD-1"},
        {"external_ref": "J2", "order": 1234},
        {"external_ref": "J3", "group": 12.5},
        {"external_ref": "J4", "group": ["a"]},
        {"external_ref": "J5", "group": True},
        {"external_ref": "J6", "group": "next\u0085line"},
    ]
    problems, payload = check(tmp_path, json.dumps(rows), "application/json")
    assert problems == [
        Problem(3, "group", "must be text"),
        Problem(4, "group", "must be text"),
        Problem(5, "group", "must be text"),
        Problem(6, "group", GROUP_PROBLEM),
    ]
    assert groups_of(payload) == {"J1": "ORD-1", "J2": "1234"}
    for header in ("order", "Order code", "group_ref", "GROUP"):
        problems, payload = check(tmp_path, f"external_ref,{header}\nC1,X-9\n")
        assert problems == [] and groups_of(payload) == {"C1": "X-9"}, header


async def test_push_feed_and_regrouping(client: TestClient, org_a: Org, db_url: str) -> None:
    """Groups are stored and shown (ticket API); the feed carries them; moving a ticket to
    another group is ``ticket.updated`` with the same nonce (its QR stays good)."""
    eid = (await create_event(client, org_a))["event_id"]
    north = await enrolled_gate(client, org_a, eid, "North")
    status, body = await push(client, org_a, eid, HEADER + "F1,Ann,FAM\nF2,Bob,FAM\nS1,Cy,\n")
    assert status == 200 and body["added"] == 3, body
    got = await tickets(client, org_a, eid)
    assert {ref: t["group"] for ref, t in got.items()} == {"F1": "FAM", "F2": "FAM", "S1": ""}
    page = ChangesPage.model_validate(await changes(client, north, ""))
    carried = {c.ticket.ticket_id: c.ticket.group for c in page.changes if c.ticket}
    assert carried == {got["F1"]["ticket_id"]: "FAM", got["F2"]["ticket_id"]: "FAM",
                       got["S1"]["ticket_id"]: ""}  # fmt: skip

    status, body = await push(client, org_a, eid, HEADER + "F1,Ann,FAM\nF2,Bob,\nS1,Cy,FAM\n")
    assert status == 200 and (body["updated"], body["reissued"], body["same"]) == (2, 0, 1), body
    after = await tickets(client, org_a, eid)
    assert {ref: t["group"] for ref, t in after.items()} == {"F1": "FAM", "F2": "", "S1": "FAM"}
    assert all(after[ref]["nonce"] == got[ref]["nonce"] for ref in got), "no reissue"
    moved = ChangesPage.model_validate(await changes(client, north, page.cursor))
    assert [(c.kind, c.ticket.group) for c in moved.changes if c.ticket] == [
        ("ticket.updated", ""),
        ("ticket.updated", "FAM"),
    ]
    assert [k for _, k, _ in await feed(db_url, eid)][-2:] == ["ticket.updated"] * 2


async def test_tickets_of_one_group(
    client: TestClient, org_a: Org, org_b: Org, db_url: str
) -> None:
    """``GET .../tickets?group=`` (``tessera tickets list --group``): that group's tickets of
    this event only, in pages, through the partial index; a bad name is a 400."""
    eid = (await create_event(client, org_a))["event_id"]
    rows = "".join(f"F{i},Member {i},Müller family\n" for i in range(5)) + "S1,Cy,\nO1,Di,ORD\n"
    assert (await push(client, org_a, eid, HEADER + rows))[0] == 200
    other = (await create_event(client, org_b))["event_id"]
    assert (await push(client, org_b, other, HEADER + "X1,Eve,Müller family\n"))[0] == 200

    async def page(**params: str) -> tuple[int, dict]:
        resp = await client.get(
            f"/api/v1/events/{eid}/tickets", headers=org_a.h("viewer"), params=params
        )
        return resp.status, await resp.json()

    status, body = await page(group="Müller family", limit="3")
    assert status == 200 and [t["external_ref"] for t in body["tickets"]] == ["F0", "F1", "F2"]
    status, rest = await page(group="Müller family", after=str(body["next_after"]))
    assert [t["external_ref"] for t in rest["tickets"]] == ["F3", "F4"]  # not X1 (org B)
    assert rest["next_after"] is None
    assert [t["external_ref"] for t in (await page(group="ORD"))[1]["tickets"]] == ["O1"]
    assert (await page(group="müller family"))[1]["tickets"] == []  # names are exact
    for bad in ("", "z" * 65, "a\x00b"):
        status, body = await page(group=bad)
        assert (status, body["error"]) == (400, "bad_query"), bad
    resp = await client.get(
        f"/api/v1/events/{eid}/tickets", headers=org_b.h("viewer"), params={"group": "ORD"}
    )
    assert resp.status == 404  # another organisation's event is not there at all

    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("SET enable_seqscan = off")  # a 7-row table: ask what could be used
        plan = "\n".join(
            r[0] for r in await conn.fetch("EXPLAIN " + GROUP_PAGE, eid, 0, None, None, 100, "ORD")
        )
    finally:
        await conn.close()
    assert "tickets_group" in plan, plan


async def test_a_bad_group_refuses_the_push_whole(client: TestClient, org_a: Org) -> None:
    eid = (await create_event(client, org_a))["event_id"]
    status, body = await push(client, org_a, eid, HEADER + "A1,Ann,ORD\nA2,Bob," + "z" * 65 + "\n")
    assert status == 422 and body["error"] == "invalid_list", body
    assert body["problems"] == [
        {"row": 2, "column": "group", "problem": "longer than 64 characters"}
    ]
    assert await tickets(client, org_a, eid) == {}


async def _bundle(client: TestClient, org: Org, eid: int, data: bytes) -> tuple[str, list]:
    resp = await client.get(f"/api/v1/events/{eid}/keys", headers=org.h())
    keys = (await resp.json())["keys"]
    ring = {bytes.fromhex(k["kid"]): public_key_from_b64(k["public_key"]) for k in keys}
    reader = BundleReader(io.BytesIO(data), ring)
    found: list[BundleTicket] = list(reader.tickets())
    reader.finish()
    return reader.header.format, sorted((t.holder, t.group) for t in found)


async def test_snapshot_and_bundle_formats(client: TestClient, org_a: Org) -> None:
    """The snapshot is format 2 unless the gate asks for 3; the organiser's file is 3 once a
    ticket has a group (2 before: it loads on any gate); ``format`` may force either."""
    eid = (await create_event(client, org_a))["event_id"]
    north = await enrolled_gate(client, org_a, eid, "North")
    organiser = org_a.h("organiser")

    async def get(path: str, headers: dict[str, str], **params: str) -> tuple[str, list]:
        resp = await client.get(path, headers=headers, params={"names": "1", **params})
        assert resp.status == 200, await resp.text()
        return await _bundle(client, org_a, eid, await resp.read())

    await push(client, org_a, eid, HEADER + "A1,Ann,\n")
    assert (await get(f"/api/v1/events/{eid}/bundle", organiser))[0] == "tessera-bundle/2"
    await push(client, org_a, eid, HEADER + "A1,Ann,\nF1,Bo,FAM\n")
    grouped = [("Ann", ""), ("Bo", "FAM")]
    plain = [("Ann", ""), ("Bo", "")]
    assert await get(f"/api/v1/events/{eid}/bundle", organiser) == ("tessera-bundle/3", grouped)
    old = await get(f"/api/v1/events/{eid}/bundle", organiser, format="2")
    assert old == ("tessera-bundle/2", plain)
    assert await get("/api/v1/gate/snapshot", north.h()) == ("tessera-bundle/2", plain)
    new = await get("/api/v1/gate/snapshot", north.h(), format="3")
    assert new == ("tessera-bundle/3", grouped)
    for path, headers in (
        (f"/api/v1/events/{eid}/bundle", organiser),
        ("/api/v1/gate/snapshot", north.h()),
    ):
        resp = await client.get(path, headers=headers, params={"format": "9"})
        assert resp.status == 400 and (await resp.json())["error"] == "bad_query"
    raw = await (await client.get("/api/v1/gate/snapshot", headers=north.h())).read()
    rows = gzip.decompress(raw).split(b"\n")[1:-2]
    assert [len(json.loads(r)) for r in rows] == [8, 8], "what a gate built before groups reads"
