"""The plain-CSV fast path of the list parser and the COPY text payload it writes.

A list's plain chunks are checked column by column, the rest row by row (``parse.CsvRows``);
both must give the same records, the same problems and the same COPY payload, whatever mix of
plain and quoted text a list has and wherever a chunk boundary falls.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient

from syncd.lists import parse
from syncd.lists.parse import Limits, Task, check_list, run_task
from syncd.lists.rows import Problem, RowChecker
from tests.syncd.conftest import Org, create_event, push

HEADER = "external_ref,holder_name,email,category,zones,valid_from,valid_until\n"
ZONES = ["Main", "VIP", "Backstage"]
LIMITS = Limits(record_chars=2000, rows=1_000_000)


def rows(count: int) -> list[list[str]]:
    zones = ["", "Main", "Main|VIP", "backstage"]
    return [
        [f"R{i}", f"Holder {i}", f"h{i}@example.org", "GA", zones[i % 4], "2026-06-01T10:00", ""]
        for i in range(count)
    ]


def csv_text(table: list[list[str]], quoted: set[int] = frozenset(), eol: str = "\n") -> str:  # type: ignore[assignment]
    """The table as CSV; the rows in ``quoted`` have every field quoted (same values)."""
    lines = [HEADER.rstrip("\n")]
    for i, fields in enumerate(table):
        lines.append(",".join(f'"{f}"' for f in fields) if i in quoted else ",".join(fields))
    return eol.join(lines) + eol


def check(tmp_path: Path, text: str, limits: Limits = LIMITS) -> tuple[int, list[Problem], str]:
    body, copy_file = tmp_path / "body", tmp_path / "copy"
    body.write_text(text, encoding="utf-8", newline="")
    checker = RowChecker(ZONES, "UTC", 1000)
    count = check_list(body, copy_file, "text/csv", checker, limits)
    return count, checker.problems, copy_file.read_bytes().decode()


def test_plain_quoted_and_crlf_lists_give_the_same_copy_payload(tmp_path: Path) -> None:
    """Scenario: a 30,000-row list (several fast chunks) that turns careful late (a quoted
    row past the first chunks), one careful from its first row, and a CRLF one: identical
    payloads, one line per record in row order."""
    table = rows(30_000)
    plain = check(tmp_path, csv_text(table))
    assert plain[0] == 30_000 and plain[1] == []
    payload = plain[2]
    assert payload.count("\n") == 30_000
    assert payload.startswith("1\tR0\tHolder 0\th0@example.org\tGA\t65535\t1780308000\t0\t\n")
    assert payload.splitlines()[29_999].startswith("30000\tR29999\t")
    assert len(csv_text(table)) > 3 * parse.FAST_CHUNK_CHARS
    for variant in (
        csv_text(table, quoted={25_000}),
        csv_text(table, quoted={0, 17}),
        csv_text(table, eol="\r\n"),
    ):
        assert check(tmp_path, variant) == plain


def test_bad_rows_in_plain_chunks_get_the_problems_of_the_careful_path(tmp_path: Path) -> None:
    """Scenario: bad rows (no ref, bad email, unknown zone, field count, until before from,
    bad time, an over-long line, an empty line) in plain text and in the same list made careful
    by a quoted first row: the same problems, row and column named."""
    table = rows(40)
    table[3][0] = ""
    table[5][2] = "not-an-email"
    table[7][4] = "Roof"
    table[9].append("extra")
    table[11][5], table[11][6] = "2026-06-03T10:00", "2026-06-01T10:00"
    table[13][6] = "soon"
    table[15][1] = "x" * 1500
    text = csv_text(table).replace("\nR20,", "\n\nR20,")
    limits = Limits(record_chars=1000, rows=1000)
    plain = check(tmp_path, text, limits)
    careful = check(tmp_path, text.replace("\nR0,", '\n"R0",', 1), limits)
    assert plain[:2] == careful[:2]
    assert [(p.row, p.column) for p in plain[1]] == [
        (4, "external_ref"),
        (6, "email"),
        (8, "zones"),
        (10, "(row)"),
        (12, "valid_until"),
        (14, "valid_until"),
        (16, "holder_name"),
    ]


def test_plain_list_over_the_row_limit_is_413(tmp_path: Path) -> None:
    """Scenario: a plain list one row over SYNCD_LIST_MAX_ROWS is refused whole (413)."""
    body = tmp_path / "body"
    body.write_text(csv_text(rows(101)), encoding="utf-8")
    task = Task(body, tmp_path / "copy", "text/csv", ZONES, "UTC", 10, Limits(1000, 100))
    outcome = run_task(task)
    assert outcome.error is not None and outcome.error.status == 413
    assert outcome.error.code == "too_many_rows"


def test_duplicates_of_escaped_references_are_named(tmp_path: Path) -> None:
    """Scenario: two rows share a reference with a backslash and a tab (escaped in the COPY
    payload): the second is named a duplicate of the first."""
    table = rows(10)
    table[2][0] = '"a\\b\tc"'
    table[7][0] = '"a\\b\tc"'
    count, problems, payload = check(tmp_path, csv_text(table))
    assert count == 10
    assert problems == [Problem(8, "external_ref", "duplicate of row 3")]
    assert "\ta\\\\b\\tc\t" in payload


async def test_backslash_tab_newline_and_null_marker_reach_postgres_unchanged(
    client: TestClient, org_a: Org
) -> None:
    """Scenario: holders with ``\\N`` (COPY's NULL marker), a backslash, a tab and a quoted
    newline, in plain and quoted rows: stored exactly as sent, none as NULL."""
    event = await create_event(client, org_a)
    backslashes_only = HEADER + "B1,\\N,,GA,,,\nB2,back\\slash \\t,,GA,,,\nB4,\\\\N,,GA,,,\n"
    tab_and_newline = HEADER + 'B3,"tab\there\nand a new line",,GA,,,\n'
    for body in (backslashes_only, tab_and_newline):
        status, result = await push(client, org_a, event["event_id"], body)
        assert status == 200, result
        assert result["added"] == body.count("\nB")
    resp = await client.get(
        f"/api/v1/events/{event['event_id']}/tickets", headers=org_a.h("viewer")
    )
    got = {t["external_ref"]: t["holder_name"] for t in (await resp.json())["tickets"]}
    assert got == {
        "B1": "\\N",
        "B2": "back\\slash \\t",
        "B3": "tab\there\nand a new line",
        "B4": "\\\\N",
    }
