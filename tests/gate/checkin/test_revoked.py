"""A revoked gate decides nothing (issue 18, wipe on revoke): every scan and manual admit is
DENY ``gate_revoked``, nothing is journaled, and the refusal holds across processes and
restarts until ``gate enroll`` clears it (another connection: the pipeline notices)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gate.store.db import Store
from gate.store.wipe import mark_revoked, wipe_holder_data
from shared.errors import RejectReason
from tessera_dev.sample_event import SAT_18, code, loaded_store, pipeline, write_bundle_file

MESSAGE = "Gate revoked: no scans until it is enrolled again"
LONG_QUERY = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000)"
    " SELECT count(*) FROM c"
)


async def revoked_store(tmp_path: Path) -> Store:
    store = await loaded_store(tmp_path / "gate.sqlite3")
    assert (await pipeline(store).process(code(1, 11))).admitted  # seq 1, before the revocation
    await mark_revoked(store, SAT_18, "gate credential revoked")
    return store


async def journal(store: Store) -> list[tuple[object, ...]]:
    return [tuple(r) for r in await store.conn.execute_fetchall("SELECT * FROM journal")]


@pytest.mark.parametrize(
    "text",
    [code(2, 22), code(1, 11), code(4, 44), "T1:forged", "https://example.org", ""],
    ids=["valid", "inside", "blocked", "malformed", "not-a-ticket", "empty"],
)
async def test_every_scan_is_refused_and_none_is_journaled(tmp_path: Path, text: str) -> None:
    store = await revoked_store(tmp_path)
    try:
        kept = await journal(store)
        decision = await pipeline(store).process(text)
        assert (decision.outcome, decision.reason) == ("deny", RejectReason.gate_revoked)
        assert decision.message == MESSAGE
        assert decision.seq is None and decision.holder is None
        assert await journal(store) == kept
    finally:
        await store.close()


async def test_a_manual_admit_is_refused_with_the_number_typed(tmp_path: Path) -> None:
    store = await revoked_store(tmp_path)
    try:
        kept = await journal(store)
        decision = await pipeline(store).manual_admit(2)
        assert (decision.outcome, decision.reason, decision.ticket_id) == (
            "deny",
            RejectReason.gate_revoked,
            2,
        )
        assert decision.via == "manual" and await journal(store) == kept
    finally:
        await store.close()


async def test_a_new_enrolment_by_another_process_ends_the_refusal(tmp_path: Path) -> None:
    """`gate enroll` runs beside `gate run`: once the store is read again (the sync worker
    does it while revoked), the running pipeline scans again."""
    store = await revoked_store(tmp_path)
    try:
        gate = pipeline(store)
        assert (await gate.process(code(2, 22))).reason == RejectReason.gate_revoked
        other = sqlite3.connect(store.path)
        with other:
            other.execute("UPDATE sync_state SET revoked_at = NULL, wiped_at = NULL")
        other.close()
        assert (await gate.process(code(2, 22))).reason == RejectReason.gate_revoked
        assert await store.refresh(force=False)
        assert (await gate.process(code(2, 22))).admitted
    finally:
        await store.close()


async def test_a_refusal_does_not_wait_for_the_database(tmp_path: Path) -> None:
    """Regression guard: during the wipe (VACUUM holds the connection for seconds on a big
    list) a scan is still refused at once; the refusal reads only the store's flag."""
    store = await revoked_store(tmp_path)
    try:
        gate = pipeline(store)
        busy = asyncio.ensure_future(store.conn.execute_fetchall(LONG_QUERY))
        await asyncio.sleep(0.05)  # the connection's thread is in the query now
        decision = await asyncio.wait_for(gate.process(code(2, 22)), 5)
        assert decision.reason == RejectReason.gate_revoked
        assert not busy.done()  # the connection was busy all along
        await store.conn.interrupt()
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):
            await busy
    finally:
        await store.close()


def gate_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
    env["GATE_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "gate", *args], env=env, capture_output=True, text=True, timeout=60
    )


async def test_the_cli_refuses_after_a_restart_and_says_why(tmp_path: Path) -> None:
    """A restarted gate (a new process) still refuses: `gate admit` exits 1 with the reason,
    `gate import-list` loads no names, `gate status` says scans are refused, names gone."""
    store = await revoked_store(tmp_path)
    await wipe_holder_data(store, tmp_path, now=SAT_18 + 1)
    await store.close()

    admit = gate_cli(tmp_path, "admit", "2")
    assert admit.returncode == 1, admit.stderr
    decision = json.loads(admit.stdout)
    assert (decision["decision"], decision["reason"]) == ("deny", "gate_revoked")

    bundle = write_bundle_file(tmp_path / "list.bundle")
    loaded = gate_cli(tmp_path, "import-list", "-q", str(bundle))
    assert loaded.returncode == 1 and "revoked" in loaded.stderr
    found = gate_cli(tmp_path, "lookup", "ada")
    assert found.returncode == 0 and found.stdout.strip() == "No ticket found"

    status = gate_cli(tmp_path, "status")
    assert status.returncode == 0, status.stderr
    assert "Scanning:        REFUSED" in status.stdout
    assert "Holder data:     deleted from this gate" in status.stdout
    assert "Journal:         1 scans, 1 not yet synced" in status.stdout
    as_json = json.loads(gate_cli(tmp_path, "status", "--json").stdout)
    assert as_json["sync"]["holder_data"] == "deleted"
    assert as_json["sync"]["revoked_at"] == SAT_18
