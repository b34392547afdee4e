"""`gate lookup` and the store's search: Unicode case and accents, numbers out of range.

Regressions for issue 13.10 ("müller" missed "MÜLLER": case was folded for ASCII only; "muller"
could not find "Müller") and 13.6 (`gate admit 9223372036854775808` and `gate lookup
18446744073709551616` printed OverflowError tracebacks).
"""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from gate.store.db import Store
from gate.store.migrate import migration_files
from gate.store.search import SearchError, TicketIdError, fold
from gate.store.snapshot import import_snapshot
from shared.bundle import BundleTicket
from tessera_dev.sample_event import bundle_bytes, loaded_store, pipeline
from tests.gate.test_cli import gate

FULLWIDTH = "\uff26\uff55\uff4c\uff4c"  # "Full" in fullwidth letters: NFKD makes it ASCII
NAMES = [
    "Jörg Müller",
    "ANNA MÜLLER",
    "Bea Straße",
    "Zoë Ünal",
    "İlkay Şahin",
    "50% Off",
    FULLWIDTH,
]
LIST = [BundleTicket(i, i, holder=name) for i, name in enumerate(NAMES, start=1)]


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    return await loaded_store(tmp_path / "data" / "gate.sqlite3", bundle_bytes(LIST))


async def _holders(store: Store, query: str) -> list[str | None]:
    return sorted(e.holder for e in await store.search(query))


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("muller", ["ANNA MÜLLER", "Jörg Müller"]),
        ("müller", ["ANNA MÜLLER", "Jörg Müller"]),
        ("MÜLLER", ["ANNA MÜLLER", "Jörg Müller"]),
        ("MUL", ["ANNA MÜLLER", "Jörg Müller"]),
        ("strasse", ["Bea Straße"]),
        ("zoe unal", ["Zoë Ünal"]),
        ("ilkay sahin", ["İlkay Şahin"]),
        ("full", [FULLWIDTH]),
        ("50%", ["50% Off"]),
        ("%", ["50% Off"]),  # no wildcard: a literal character
        ("_", []),
        ("   ", []),
        ("\u0308", []),  # only a combining mark: nothing left to look for
    ],
)
async def test_names_match_without_case_or_accents(
    store: Store, query: str, found: list[str]
) -> None:
    try:
        assert await _holders(store, query) == found
    finally:
        await store.close()


def test_fold_is_casefold_nfkd_without_marks() -> None:
    assert fold("  MÜLLER\tStraße ") == "muller strasse"
    assert fold(None) is None


async def test_out_of_range_numbers_are_a_named_error(store: Store) -> None:
    """Never an OverflowError from SQLite, from the store or the pipeline."""
    try:
        for text in ("9223372036854775808", "18446744073709551616", "9" * 5000):
            with pytest.raises(TicketIdError, match="out of range"):
                await store.search(text)
        with pytest.raises(TicketIdError):
            await pipeline(store).manual_admit(2**63)
        assert (await store.lookup(7, 2**64)).entry is None
        assert await store.search("²") == []  # a digit to str.isdigit, not a ticket number
        with pytest.raises(SearchError, match="longer than"):
            await store.search("x" * 101)
        assert [e.ticket_id for e in await store.search("9223372036854775807")] == []
    finally:
        await store.close()


def test_cli_big_numbers_exit_2_with_a_message(tmp_path: Path) -> None:
    for args in (["admit", "9223372036854775808"], ["lookup", "18446744073709551616"]):
        done = gate(tmp_path, *args)
        assert done.returncode == 2, done.stderr
        assert "out of range (0 to 9223372036854775807)" in done.stderr
        assert "Traceback" not in done.stderr and "OverflowError" not in done.stderr


def test_cli_admit_takes_ascii_digits_only(tmp_path: Path) -> None:
    """Scenario: `gate admit 1_0` admitted ticket 10 and `gate admit ١٢٣` ticket 123 (int()
    takes underscores and any script's digits): a typo must not pick another ticket."""
    for typed in ("1_0", "١٢٣", "\uff11\uff12", "-1", "1e3"):
        done = gate(tmp_path, "admit", "--", typed)
        assert done.returncode == 2, (typed, done.stderr)
        assert "digits 0-9 only" in done.stderr and not done.stdout


async def test_cli_lookup_folds_accents(tmp_path: Path) -> None:
    await (await loaded_store(tmp_path / "data" / "gate.sqlite3", bundle_bytes(LIST))).close()
    done = gate(tmp_path, "lookup", "--json", "muller")
    assert done.returncode == 0, done.stderr
    assert sorted(r["holder"] for r in json.loads(done.stdout)) == ["ANNA MÜLLER", "Jörg Müller"]


async def test_snapshots_keep_the_name_index(store: Store) -> None:
    """A snapshot swaps in a staging table; its index (under the other name) comes along."""
    try:
        for round_ in range(3):
            data = bundle_bytes([*LIST, BundleTicket(100 + round_, 1, holder="Müller Neu")])
            await import_snapshot(store, io.BytesIO(data))
            assert "Müller Neu" in await _holders(store, "muller neu")
            plan = await store.conn.execute_fetchall(
                "EXPLAIN QUERY PLAN SELECT ticket_id FROM tickets"
                " WHERE search IS NOT NULL AND instr(search, 'x') > 0 ORDER BY search"
            )
            assert "COVERING INDEX tickets_search_" in str(list(plan))
    finally:
        await store.close()


async def test_upgrade_folds_names_of_a_list_loaded_before(tmp_path: Path) -> None:
    """A version-2 database (no search column, no validity) is brought up to date at open:
    names are folded, the windows default to none, and the sync cursor starts over so an
    enrolled gate fetches every ticket's window again."""
    path = tmp_path / "gate.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, at REAL)")
    for version, name, sql in migration_files()[:2]:
        db.executescript(sql)
        db.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (version, name))
    db.execute("INSERT INTO events (event_id, name) VALUES (7, 'Fest')")
    db.execute("INSERT INTO tickets VALUES (7, 1, 1, 0, 1, 0, 'MÜLLER'), (7, 2, 2, 0, 1, 0, NULL)")
    db.execute("UPDATE sync_state SET cursor = '42'")
    db.close()
    store = await Store.open(path)
    try:
        assert [e.ticket_id for e in await store.search("muller")] == [1]
        assert (await store.lookup(7, 1)).entry is not None
        rows = await store.conn.execute_fetchall("SELECT cursor FROM sync_state")
        assert list(rows) == [("",)]
    finally:
        await store.close()
