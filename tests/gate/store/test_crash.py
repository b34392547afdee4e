"""A gate killed with SIGKILL mid-burst loses no check-in it had already shown as admitted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from gate.store.db import Store
from shared.bundle import BundleTicket
from tessera_dev.sample_event import bundle_bytes, code, loaded_store

N = 2000


def test_sigkill_during_a_burst_loses_no_printed_admit(tmp_path: Path) -> None:
    """Regression guard: the result is printed only after the journal commit (fsync)."""
    data_dir = tmp_path / "data"
    asyncio.run(_prepare(data_dir / "gate.sqlite3"))
    env = {**os.environ, "GATE_DATA_DIR": str(data_dir), "GATE_DEBOUNCE_SECONDS": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gate", "run", "--source", "stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    burst = "".join(f"{code(i, i * 7)}\n" for i in range(1, N + 1)).encode()
    writer = threading.Thread(target=_feed, args=(proc.stdin, burst))
    writer.start()  # more than a pipe holds: the gate is mid-burst when it is killed
    printed = [json.loads(proc.stdout.readline()) for _ in range(N // 20)]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    writer.join()
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()
    printed += [json.loads(line) for line in proc.stdout.read().splitlines()]
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    admitted = {d["ticket_id"]: d["seq"] for d in printed if d["decision"] == "admit"}
    assert len(admitted) >= N // 20

    journal, inside = asyncio.run(_recorded(data_dir / "gate.sqlite3"))
    assert {t: journal.get(t) for t in admitted} == admitted
    assert set(admitted) <= inside
    assert sorted(journal.values()) == list(range(1, len(journal) + 1))


async def _prepare(path: Path) -> None:
    tickets = [BundleTicket(i, i * 7, "valid", 1, "GA") for i in range(1, N + 1)]
    store = await loaded_store(path, bundle_bytes(tickets))
    await store.close()


async def _recorded(path: Path) -> tuple[dict[int, int], set[int]]:
    """Admitted ticket -> seq from the journal, and the tickets the entry state has inside."""
    store = await Store.open(path)
    try:
        sql = "SELECT ticket_id, seq FROM journal WHERE decision = 'admit'"
        journal = {t: seq for t, seq in await store.conn.execute_fetchall(sql)}
        sql = "SELECT ticket_id FROM entry_state WHERE inside = 1"
        inside = {t for (t,) in await store.conn.execute_fetchall(sql)}
    finally:
        await store.close()
    return journal, inside


def _feed(stream: IO[bytes], data: bytes) -> None:
    """Type the burst; stdin stays open, so the gate is still running when it is killed."""
    with contextlib.suppress(BrokenPipeError):  # killed while we were still typing
        stream.write(data)
        stream.flush()
