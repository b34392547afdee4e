"""Attendee list pushes: formats, upsert and reissue rules, complete pushes, whole-file refusal."""

from __future__ import annotations

import json

import asyncpg
from aiohttp.test_utils import TestClient

from tests.syncd.conftest import Org, create_event, push

HEADER = "external_ref,holder_name,email,category,zones,valid_from,valid_until\n"


async def tickets(client: TestClient, org: Org, event_id: int) -> dict[str, dict]:
    resp = await client.get(
        f"/api/v1/events/{event_id}/tickets", headers=org.h("viewer"), params={"limit": "1000"}
    )
    assert resp.status == 200
    return {t["external_ref"]: t for t in (await resp.json())["tickets"]}


async def feed(db_url: str, event_id: int) -> list[tuple[int, str, int | None]]:
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT seq, kind, ticket_id FROM change_feed WHERE event_id = $1 ORDER BY seq",
            event_id,
        )
        assert await conn.fetchval(
            "SELECT change_seq FROM events WHERE event_id = $1", event_id
        ) == len(rows)
    finally:
        await conn.close()
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1)), "feed has gaps"
    return [(r["seq"], r["kind"], r["ticket_id"]) for r in rows]


async def test_csv_push_creates_tickets_with_zones_and_validity(
    client: TestClient, org_a: Org, db_url: str
) -> None:
    event = await create_event(client, org_a)
    body = HEADER + (
        "A1,Ann,ann@example.org,VIP,Main|VIP,2026-06-01T10:00:00,1780527600\n"
        "A2,Bob,,GA,,,\n"
        '"A3","Smith, ""Jo""",,GA,backstage,,\n'
    )
    status, result = await push(client, org_a, event["event_id"], body)
    assert status == 200, result
    assert result["added"] == 3 and result["rows"] == 3
    got = await tickets(client, org_a, event["event_id"])
    assert got["A1"]["zone"] == 0b011 and got["A2"]["zone"] == 0xFFFF
    assert got["A3"]["zone"] == 0b100 and got["A3"]["holder_name"] == 'Smith, "Jo"'
    assert got["A1"]["valid_from"] == 1780300800  # 10:00 Europe/Berlin (event time zone)
    assert got["A1"]["valid_until"] == 1780527600
    assert all(0 <= t["nonce"] <= 0xFFFFFFFF for t in got.values())
    kinds = [k for _, k, _ in await feed(db_url, event["event_id"])]
    assert kinds == ["key.added"] + ["ticket.added"] * 3


async def test_json_and_ndjson_pushes(client: TestClient, org_a: Org) -> None:
    event = await create_event(client, org_a)
    rows = [
        {"external_ref": "J1", "holder": "Ann", "zones": ["VIP"], "valid_from": 1780000000},
        {"external_ref": "J2", "category": "GA"},
    ]
    status, result = await push(
        client, org_a, event["event_id"], json.dumps(rows), "application/json"
    )
    assert status == 200 and result["added"] == 2, result
    ndjson = "\n".join(json.dumps(r) for r in [*rows, {"external_ref": "J3"}]) + "\n"
    status, result = await push(client, org_a, event["event_id"], ndjson, "application/x-ndjson")
    assert status == 200 and (result["added"], result["same"]) == (1, 2), result
    got = await tickets(client, org_a, event["event_id"])
    assert got["J1"]["zone"] == 0b010 and got["J1"]["valid_from"] == 1780000000


async def test_reissue_only_on_admission_relevant_change(
    client: TestClient, org_a: Org, db_url: str
) -> None:
    event = await create_event(client, org_a)
    eid = event["event_id"]
    await push(
        client,
        org_a,
        eid,
        HEADER + "R1,Ann,a@x.org,GA,Main,,\nR2,Bob,,GA,Main,,\nR3,Cy,,GA,Main,,\n",
    )
    before = await tickets(client, org_a, eid)
    status, result = await push(
        client,
        org_a,
        eid,
        HEADER + "R1,Ann,new@x.org,VIP,Main,,\nR2,Bob,,GA,Main|VIP,,\nR3,Cy,,GA,Main,,\n",
    )
    assert status == 200
    assert (result["updated"], result["reissued"], result["same"]) == (1, 1, 1), result
    after = await tickets(client, org_a, eid)
    assert after["R1"]["nonce"] == before["R1"]["nonce"] and after["R1"]["category"] == "VIP"
    assert after["R2"]["nonce"] != before["R2"]["nonce"] and after["R2"]["zone"] == 0b011
    assert after["R3"] == before["R3"]
    assert {t["ticket_id"] for t in after.values()} == {t["ticket_id"] for t in before.values()}
    kinds = [k for _, k, _ in await feed(db_url, eid)][-2:]
    assert kinds == ["ticket.updated", "ticket.reissued"]


async def test_complete_push_revokes_missing_and_reinstates_returning(
    client: TestClient, org_a: Org, db_url: str
) -> None:
    event = await create_event(client, org_a)
    eid = event["event_id"]
    await push(client, org_a, eid, HEADER + "C1,,,,,,\nC2,,,,,,\nC3,,,,,,\n")
    status, result = await push(client, org_a, eid, HEADER + "C1,,,,,,\n")
    assert status == 200 and result["revoked"] == 0, "an incomplete push revokes nothing"
    status, result = await push(client, org_a, eid, HEADER + "C1,,,,,,\n", complete="1")
    assert status == 200 and result["revoked"] == 2, result
    got = await tickets(client, org_a, eid)
    assert [got[r]["status"] for r in ("C1", "C2", "C3")] == ["valid", "revoked", "revoked"]
    old_nonce = got["C2"]["nonce"]
    status, result = await push(
        client, org_a, eid, HEADER + "C1,,,,,,\nC2,,,,,,\n", complete="true"
    )
    assert (result["reissued"], result["revoked"]) == (1, 0), result
    got = await tickets(client, org_a, eid)
    assert got["C2"]["status"] == "valid" and got["C2"]["nonce"] != old_nonce
    kinds = [k for _, k, _ in await feed(db_url, eid)]
    assert kinds.count("ticket.revoked") == 2 and kinds[-1] == "ticket.reissued"


async def test_bad_file_is_rejected_whole_with_every_problem(
    client: TestClient, org_a: Org, db_url: str
) -> None:
    event = await create_event(client, org_a)
    eid = event["event_id"]
    await push(client, org_a, eid, HEADER + "K1,Keep,,,,,\n")
    good = "".join(f"G{i},,,,,,\n" for i in range(200))
    bad = (
        HEADER
        + good
        + "B1,,not-an-email,,,,\n"
        + "B2,,,,Moon,,\n"
        + ",,,,,,\n"
        + "B3,,,,,yesterday,\n"
        + "B4,,,,,2026-06-02T00:00:00,2026-06-01T00:00:00\n"
        + "G1,,,,,,\n"
        + "B5,too,many,fields,,,,,\n"
    )
    status, body = await push(client, org_a, eid, bad, complete="1")
    assert status == 422, body
    assert body["error"] == "invalid_list" and body["problem_count"] == 7
    found = {(p["row"], p["column"]) for p in body["problems"]}
    assert found == {
        (201, "email"),
        (202, "zones"),
        (203, "external_ref"),
        (204, "valid_from"),
        (205, "valid_until"),
        (206, "external_ref"),
        (207, "(row)"),
    }
    assert "duplicate of row 2" in str(body["problems"])
    got = await tickets(client, org_a, eid)
    assert list(got) == ["K1"] and got["K1"]["status"] == "valid", "nothing half-applied"
    assert [k for _, k, _ in await feed(db_url, eid)] == ["key.added", "ticket.added"]


async def test_header_and_format_errors(client: TestClient, org_a: Org) -> None:
    event = await create_event(client, org_a)
    eid = event["event_id"]
    status, body = await push(client, org_a, eid, "ref,holder\nx,y\n")
    assert status == 422 and body["problems"][0]["row"] == 0
    status, body = await push(client, org_a, eid, "")
    assert status == 422
    status, body = await push(client, org_a, eid, b"external_ref\n\xff\xfe\n")
    assert status == 400 and body["error"] == "bad_encoding"
    status, body = await push(client, org_a, eid, "external_ref\nA\x00B\n")
    assert status == 422 and "NUL" in body["problems"][0]["problem"]
    status, body = await push(client, org_a, eid, '[{"external_ref": "x"}', "application/json")
    assert status == 400 and body["error"] == "bad_json"
    status, body = await push(client, org_a, eid, '{"a": 1}', "application/json")
    assert status == 400
    status, body = await push(client, org_a, eid, "x", "application/xml")
    assert status == 415


async def test_quoted_newline_across_chunks_and_dry_run(client: TestClient, org_a: Org) -> None:
    """Guards the CSV record cutter: a quoted newline straddling a 256 KiB chunk boundary."""
    event = await create_event(client, org_a)
    eid = event["event_id"]
    filler = "".join(f"F{i:06d},{'x' * 40},,,,,\n" for i in range(6000))
    body = HEADER + filler + 'Q1,"line one\nline two",,,,,\n' + filler.replace("F", "H")
    status, result = await push(client, org_a, eid, body, dry_run="1")
    assert status == 200 and result["added"] == 12001 and result["dry_run"]
    assert await tickets(client, org_a, eid) == {}, "a dry run changes nothing"
    status, result = await push(client, org_a, eid, body)
    assert result["added"] == 12001
    resp = await client.get(
        f"/api/v1/events/{eid}/tickets", params={"external_ref": "Q1"}, headers=org_a.h()
    )
    assert (await resp.json())["tickets"][0]["holder_name"] == "line one\nline two"


async def test_oversized_list_is_413(settings, org_a: Org) -> None:  # type: ignore[no-untyped-def]
    from aiohttp.test_utils import TestServer

    from syncd.app import create_app

    small = settings.model_copy(update={"max_list_bytes": 4096})
    async with TestClient(TestServer(create_app(small))) as client:
        event = await create_event(client, org_a)
        status, body = await push(client, org_a, event["event_id"], HEADER + "x,,,,,,\n" * 2000)
        assert status == 413 and body["error"] == "too_large"


async def test_first_list_duplicates_across_batches_are_refused(
    settings,
    org_a: Org,
    db_url: str,  # type: ignore[no-untyped-def]
) -> None:
    """Guards the fresh-event fast path (no lookup, savepoint per batch): a reference repeated
    in a later batch, or within one batch, is reported and nothing is applied."""
    from aiohttp.test_utils import TestServer

    from syncd.app import create_app

    small = settings.model_copy(update={"list_batch_rows": 10})
    async with TestClient(TestServer(create_app(small))) as client:
        for dup_row in (35, 3):
            event = await create_event(client, org_a)
            eid = event["event_id"]
            rows = [f"D{i}" for i in range(1, 51)]
            rows[dup_row - 1] = "D1"
            status, body = await push(client, org_a, eid, "external_ref\n" + "\n".join(rows))
            assert status == 422, body
            assert body["problems"] == [
                {"row": dup_row, "column": "external_ref", "problem": "duplicate of row 1"}
            ]
            assert await tickets(client, org_a, eid) == {}
            assert [k for _, k, _ in await feed(db_url, eid)] == ["key.added"]
            status, body = await push(
                client, org_a, eid, "external_ref\n" + "\n".join(f"D{i}" for i in range(50))
            )
            assert status == 200 and body["added"] == 50
            assert len(await feed(db_url, eid)) == 51
