"""The drill's checks that need only this gate: list, keys, journal, disk, hooks.

Reads only (the store's own connection, cheap queries); the hooks are the one thing with an
effect outside: they run their commands, with ``TESSERA_DRILL=1`` in the environment.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import time
from dataclasses import dataclass
from typing import Any

from gate.drill.board import Item
from gate.feedback.hooks import hook_env
from gate.settings import GateSettings
from gate.store.db import Store
from gate.store.records import EventInfo
from gate.store.syncstate import SyncState

BYTES_PER_SCAN = 1024
"""What one scan costs on disk, generously: the journal row, its entry state and indexes take
about 90 bytes (measured); the rest covers the WAL between checkpoints and the decision's log
lines, which journald usually keeps on the same disk."""
RESERVE_BYTES = 64 << 20  # the WAL at its largest, a snapshot's download, SQLite's temp files
BACKLOG_GRACE = 60.0
"""Seconds an unsynced scan may wait before the journal is red: a running, online gate pushes
within a few seconds."""


def age_text(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def list_age(event: EventInfo, state: SyncState, now: float) -> float | None:
    """Seconds since the list was current: its bundle's issue time, or, for the event this gate
    is enrolled in, its last pull of the change feed when that is later. None: no date."""
    fresh = float(event.list_issued_at or 0)
    if state.event_id == event.event_id and state.last_pull_at:
        fresh = max(fresh, state.last_pull_at)
    return max(0.0, now - fresh) if fresh else None


async def _one(store: Store, sql: str, *params: Any) -> Any:
    rows = list(await store.conn.execute_fetchall(sql, params))
    return rows[0][0] if rows else None


async def check_list(settings: GateSettings, store: Store, state: SyncState, now: float) -> Item:
    """Tickets loaded and as many as the bundle said, its signer still a trusted key, its age."""
    await store.refresh(force=False)
    events = list(store.events.values())
    if not events:
        return Item("list", "fail", "no list loaded", "enrol the gate or run `gate import-list`")
    problems: list[tuple[str, str]] = []
    for event in events:
        problems += await _event_problems(store, event)
    ages = [age for e in events if (age := list_age(e, state, now)) is not None]
    oldest = max(ages) if ages else None
    limit = settings.drill.list_max_age * 3600
    if oldest is None:
        problems.append(("fail", "the list carries no date: load a fresh one"))
    elif oldest > limit:
        problems.append(
            ("fail", f"older than {age_text(limit)}: start the gate (it syncs) or load a new list")
        )
    signers = await _signers(store)
    figure = (
        f"{sum(e.ticket_count for e in events):,} tickets"
        + (f" in {len(events)} events" if len(events) > 1 else f" ({events[0].name})")
        + (f", signed by {', '.join(signers)}" if signers else "")
        + (f", {age_text(oldest)} old" if oldest is not None else "")
    )
    return _worst("list", figure, problems, "signed by a trusted key, fresh")


async def _event_problems(store: Store, event: EventInfo) -> list[tuple[str, str]]:
    problems = []
    held = await _one(store, "SELECT count(*) FROM tickets WHERE event_id = ?", event.event_id)
    if not held:
        problems.append(("fail", f"event {event.event_id} has no tickets: nobody would get in"))
    elif held != event.ticket_count:
        problems.append(
            ("fail", f"{held:,} tickets held, {event.ticket_count:,} loaded: load the list again")
        )
    signer = await _one(store, "SELECT list_signer FROM events WHERE event_id = ?", event.event_id)
    if signer is None:
        problems.append(("fail", f"event {event.event_id}: no signer recorded for its list"))
        return problems
    row = await store.conn.execute_fetchall(
        "SELECT trusted, status, event_id FROM keys WHERE kid = ?", (bytes(signer),)
    )
    key = next(iter(row), None)
    if key is None or not key[0] or key[2] not in (None, event.event_id):
        problems.append(("fail", f"signed by {bytes(signer).hex()}, a key this gate distrusts"))
    elif key[1] != "active":
        problems.append(("warn", f"signed by {bytes(signer).hex()}, now retired: load a new list"))
    return problems


async def _signers(store: Store) -> list[str]:
    rows = await store.conn.execute_fetchall(
        "SELECT DISTINCT list_signer FROM events WHERE list_signer IS NOT NULL"
    )
    return sorted(bytes(r[0]).hex() for r in rows)


def _worst(name: str, figure: str, problems: list[tuple[str, str]], fine: str) -> Item:
    """The item for ``problems`` (status, why): the worst status, the first such reason."""
    for status in ("fail", "warn"):
        reasons = [why for s, why in problems if s == status]
        if reasons:
            return Item(name, status, figure, "; ".join(reasons))  # type: ignore[arg-type]
    return Item(name, "ok", figure, fine)


async def check_keys(store: Store) -> Item:
    """A key trusted to sign lists is pinned, and every event has an active ticket key."""
    trusted = await store.trusted_keyring()
    if not trusted:
        return Item("keys", "fail", "no trusted key", "enrol the gate or pin one with `gate trust`")
    problems: list[tuple[str, str]] = []
    parts = [f"{len(trusted)} trusted"]
    for event in store.events.values():
        active = sorted(
            k.kid.hex() for k in store.keys.values() if k.event_id == event.event_id and k.active
        )
        if not active:
            why = f"event {event.event_id} has no active ticket key: every ticket would be refused"
            problems.append(("fail", why))
        parts.append(f"event {event.event_id}: {', '.join(active) or 'none'} active")
    return _worst("keys", "; ".join(parts), problems, "pinned on this gate, no network needed")


async def check_journal(store: Store, state: SyncState, enrolled: bool, now: float) -> Item:
    """Every scan acknowledged by syncd; one waiting longer than ``BACKLOG_GRACE`` is red."""
    waiting = await _one(store, "SELECT count(*) FROM journal WHERE synced = 0") or 0
    oldest = await _one(store, "SELECT min(scanned_at) FROM journal WHERE synced = 0")
    if not enrolled:
        return Item("journal", "skip", f"{waiting:,} scans kept here", "not enrolled: no syncd")
    if not waiting:
        return Item("journal", "ok", f"drained, syncd holds seq {state.acked_seq:,}", "")
    age = max(0.0, now - float(oldest))
    figure = f"{waiting:,} scans not at syncd, oldest {age_text(age)}"
    if age < BACKLOG_GRACE:
        return Item("journal", "warn", figure, "the running gate is pushing them")
    return Item("journal", "fail", figure, "is `gate run` running and syncd reachable?")


def check_disk(settings: GateSettings) -> Item:
    """Free space on the data folder's disk for GATE_DRILL_HOURS of GATE_DRILL_SCANS_PER_HOUR,
    plus a fresh list (as big again as the database) and a reserve; amber below twice that."""
    d = settings.drill
    folder = settings.data_dir
    database = sum(p.stat().st_size for p in folder.glob(settings.db_path.name + "*"))
    need = d.scans_per_hour * d.hours * BYTES_PER_SCAN + database + RESERVE_BYTES
    free = shutil.disk_usage(folder).free
    figure = f"{_size(free)} free; {d.hours:g} h at {d.scans_per_hour:,} scans/h need {_size(need)}"
    if free < need:
        return Item("disk", "fail", figure, f"free space on {folder} before doors open")
    if free < 2 * need:
        return Item("disk", "warn", figure, "less than twice what the day needs")
    return Item("disk", "ok", figure, "")


def _size(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


@dataclass(frozen=True, slots=True)
class _DrillDecision:
    """What a hook sees of a drill: TESSERA_REASON=drill, no ticket; TESSERA_DRILL=1 besides."""

    outcome: str
    reason: str = "drill"
    message: str = "Drill"
    category: str = ""
    ticket_id: int | None = None
    direction: str = "in"


async def check_hooks(settings: GateSettings) -> Item:
    """Run the admit and the deny hook as a decision would (``TESSERA_DRILL=1`` added): each
    must exit 0 within GATE_HOOK_TIMEOUT. The commands themselves are never shown (they may
    carry a relay's address or token)."""
    hooks = settings.hooks
    wanted = (("admit", hooks.on_admit), ("deny", hooks.on_deny))
    commands = [(outcome, command) for outcome, command in wanted if command.strip()]
    if not commands:
        return Item("hooks", "skip", "no hooks", "GATE_HOOK_ON_ADMIT and _ON_DENY are unset")
    limit = min(hooks.timeout, settings.drill.timeout * 0.9)
    runs = await asyncio.gather(*(_run_hook(o, c, limit) for o, c in commands))
    figure = "; ".join(f"{o} {text}" for (o, _), (_, text) in zip(commands, runs, strict=True))
    if all(ok for ok, _ in runs):
        return Item("hooks", "ok", figure, "ran with TESSERA_DRILL=1")
    return Item("hooks", "fail", figure, "a hook did not run or exit 0: see the gate's log")


async def _run_hook(outcome: str, command: str, limit: float) -> tuple[bool, str]:
    env = {**os.environ, **hook_env(_DrillDecision(outcome)), "TESSERA_DRILL": "1"}
    started = time.perf_counter()
    try:
        proc = await asyncio.create_subprocess_exec(
            *shlex.split(command),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except (OSError, ValueError) as exc:
        return False, f"cannot start ({getattr(exc, 'strerror', None) or type(exc).__name__})"
    try:
        await asyncio.wait_for(proc.wait(), limit)
    except TimeoutError:
        return False, f"killed after {limit:g} s"
    finally:
        if proc.returncode is None:  # timed out, or the drill was cancelled: no orphan
            proc.kill()
            await asyncio.shield(proc.wait())
    ms = (time.perf_counter() - started) * 1000
    return proc.returncode == 0, f"exit {proc.returncode} in {ms:.0f} ms"
