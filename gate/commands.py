"""What the CLI commands do, as coroutines returning plain data (the CLI only prints)."""

from __future__ import annotations

import dataclasses
import socket
import time
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from gate.checkin.decide import zone_mask
from gate.checkin.decision import Decision
from gate.checkin.messages import day_time
from gate.checkin.pipeline import Pipeline
from gate.door.annul import Annulment
from gate.peer import identity
from gate.peer.mesh import read_status
from gate.settings import GateSettings
from gate.store.db import Store, writes_to
from gate.store.importer import ImportResult
from gate.store.records import Direction, LocalState
from gate.store.snapshot import import_snapshot
from gate.store.stats import read_stats
from gate.store.syncstate import read_sync_state, save_enrolment
from gate.sync.client import SyncClient
from gate.sync.credential import write_credential
from gate.sync.revocation import learn_before_enrolment
from gate.sync.status import format_sync, sync_summary
from gate.sync.worker import fetch_snapshot
from shared.ticket import public_key_from_b64, public_key_to_b64


async def check_config(settings: GateSettings) -> dict[str, Any]:
    """Open the database and check the zones against the loaded events."""
    problems: list[str] = []
    store = await Store.open(settings.db_path)
    try:
        events = list(store.events.values())
        if not events:
            problems.append("no ticket list loaded yet: run `gate import-list`")
        for event in events:
            if settings.zones and not zone_mask(settings.zones, event.zones):
                problems.append(f"GATE_ZONES {settings.zones} opens no zone of event {event.name}")
        trusted = await store.trusted_keyring()
    finally:
        await store.close()
    return {
        "ok": not [p for p in problems if not p.startswith("no ticket list")],
        "problems": problems,
        "database": str(settings.db_path),
        "events": [e.name for e in events],
        "trusted_keys": [k.hex() for k in trusted],
        "settings": settings.model_dump(mode="json"),
    }


async def import_list(settings: GateSettings, file: Path, *, progress: bool) -> ImportResult:
    """Load a bundle beside the live list and swap it in: a running `gate run` keeps scanning."""
    store = await Store.open(settings.db_path)
    try:
        with (
            file.open("rb") as stream,
            tqdm(unit=" tickets", disable=not progress, unit_scale=True) as bar,
        ):
            async with writes_to(settings.db_path):
                result, _cursor = await import_snapshot(store, stream, progress=bar.update)
            return result
    finally:
        await store.close()


async def trust(settings: GateSettings, public_key: str) -> str:
    try:
        key = public_key_from_b64(public_key.strip())
    except ValueError as exc:
        raise ValueError(f"not a base64url Ed25519 public key: {exc}") from exc
    store = await Store.open(settings.db_path)
    try:
        async with writes_to(settings.db_path):
            return (await store.trust(key)).hex()
    finally:
        await store.close()


async def list_keys(settings: GateSettings) -> list[str]:
    store = await Store.open(settings.db_path)
    try:
        rows = await store.conn.execute_fetchall(
            "SELECT kid, event_id, status, trusted, pinned_at FROM keys ORDER BY kid"
        )
    finally:
        await store.close()
    return [
        f"{bytes(kid).hex()}  event={event if event is not None else '-'}  {status}"
        f"{'  trusted for bundles' if trusted else ''}{'  (pinned)' if pinned else ''}"
        for kid, event, status, trusted, pinned in rows
    ]


async def status(settings: GateSettings) -> dict[str, Any]:
    store = await Store.open(settings.db_path)
    try:
        stats = await read_stats(store, time.time())
        sync = await sync_summary(store, settings, time.time())
    finally:
        await store.close()
    data = dataclasses.asdict(stats)
    for row in data["last_decisions"]:
        row["scan_id"] = row["scan_id"].hex()
    data["gate_name"] = settings.gate_name
    data["sync"] = sync
    data["peers"] = peer_summary(settings, time.time())
    data["database_bytes"] = sum(
        p.stat().st_size for p in settings.data_dir.glob(settings.db_path.name + "*")
    )
    return data


def format_status(s: dict[str, Any]) -> str:
    events = ", ".join(f"{e['name']} (#{e['event_id']})" for e in s["events"]) or "none loaded"
    age = s["list_age_seconds"]
    lines = [
        f"Gate:            {s['gate_name']}",
        f"Event:           {events}",
        f"List:            {s['list_size']:,} tickets"
        + (f", {_age(age)} old" if age is not None else ""),
        f"Admitted today:  {s['admitted_today']:,}",
        f"Inside now:      {s['inside_now']:,}",
        *[
            f"Check-out:       everyone outside at {e['checkout_time']} ({e['timezone']})"
            for e in s["events"]
            if e.get("checkout_time")
        ],
        f"Journal:         {s['journal_size']:,} scans, {s['unsynced']:,} not yet synced",
        f"Database:        {s['database_bytes'] / 1e6:.1f} MB",
        *format_sync(s["sync"]),
        *format_peers(s["peers"]),
        "Last decisions:",
    ]
    tz = s["events"][0]["timezone"] if s["events"] else "UTC"
    for row in s["last_decisions"]:
        lines.append(
            f"  #{row['seq']:<7} {day_time(row['scanned_at'], tz)}  {row['outcome'].upper():5}"
            f"  {row['direction']:3}  ticket {_dash(row['ticket_id'])}"
            f"  {row['reason'] or ''}  via {row['via']}"
        )
    return "\n".join(lines)


def peer_summary(settings: GateSettings, now: float) -> dict[str, Any] | None:
    """The running gate's mesh (``DATA_DIR/peers.json``), stale when it is older than 10 s."""
    if settings.peer.port is None:
        return None
    mesh = read_status(settings.data_dir)
    if mesh is None:
        return {"enabled": False, "off": "the gate is not running", "peers": []}
    mesh["stale"] = now - mesh.get("updated_at", 0) > 10
    for link in mesh["peers"]:
        heard = link.get("last_heard_at")
        link["last_heard_age_s"] = now - heard if heard else None
    return mesh


def format_peers(mesh: dict[str, Any] | None) -> list[str]:
    if mesh is None:
        return []
    if not mesh["enabled"]:
        return [f"Peers:           off ({mesh['off']})"]
    stale = "  (gate not running: last known)" if mesh.get("stale") else ""
    lines = [
        f"Peers:           {mesh['online']} of {len(mesh['peers'])} online, serving"
        f" {len(mesh['followers'])}, at {', '.join(mesh['urls'])}{stale}"
    ]
    for link in mesh["peers"]:
        name = f"{link['name']} (#{link['gate_id']})" if link["gate_id"] else link["url"]
        heard = link["last_heard_age_s"]
        lag = link["lag_ms"]
        lines.append(
            f"  {name:<24} {link['state'].upper():<9}"
            + (f" heard {heard:.0f} s ago" if heard is not None else " never heard")
            + (f", lag {lag:.0f} ms" if lag is not None else "")
            + (f", {link['behind']} behind" if link["behind"] else "")
            + (f", {link['annulled']} annulled" if link.get("annulled") else "")
            + (f", {link['ignored']} ignored" if link.get("ignored") else "")
            + (", protocol 1" if link.get("protocol") == 1 else "")
            + (f"  {link['error']}" if link["error"] and link["state"] != "online" else "")
        )
    return lines


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


async def lookup(settings: GateSettings, query: str, limit: int) -> list[dict[str, Any]]:
    store = await Store.open(settings.db_path)
    try:
        found = await Pipeline(store, settings).search(query, limit=limit)
        zones = {e.event_id: e.timezone for e in store.events.values()}
    finally:
        await store.close()
    return [_match(m, zones) for m in found]


def _match(m: LocalState, timezones: dict[int, str]) -> dict[str, Any]:
    assert m.entry is not None
    state = m.state
    return {
        **dataclasses.asdict(m.entry),
        "timezone": timezones.get(m.entry.event_id, "UTC"),
        "inside": bool(state and state.inside),
        "last_in_at": state.last_in_at if state else None,
        "last_in_gate": state.last_in_gate if state else None,
    }


def format_match(row: dict[str, Any]) -> str:
    inside = (
        f"inside since {day_time(row['last_in_at'], row['timezone'])} ({row['last_in_gate']})"
        if row["inside"]
        else "not inside"
    )
    return (
        f"#{row['ticket_id']}  {row['holder'] or '(no name)'}  {row['category'] or '-'}"
        f"  {row['status']}{_window(row)}  event {row['event_id']}  {inside}"
    )


def _window(row: dict[str, Any]) -> str:
    """'  valid from Sat 18:00 until Sun 04:00' (the parts that are set), or ''."""
    parts = [
        f"{word} {day_time(row[key], row['timezone'])}"
        for word, key in (("from", "valid_from"), ("until", "valid_until"))
        if row[key]
    ]
    return f"  valid {' '.join(parts)}" if parts else ""


async def admit(
    settings: GateSettings,
    ticket_id: int,
    event_id: int | None,
    direction: str | None,
    group: bool | None = None,
) -> Decision:
    store = await Store.open(settings.db_path)
    try:
        pipeline = Pipeline(store, settings)
        way: Direction | None = "in" if direction == "in" else "out" if direction else None
        return await pipeline.manual_admit(ticket_id, event_id=event_id, direction=way, group=group)
    finally:
        await store.close()


async def annul(settings: GateSettings, seq: int | None, whole_scan: bool) -> Annulment:
    """Undo admission ``seq`` (None: the latest), ``whole_scan``: with the rest of its group
    scan; ``AnnulRefused`` says why not."""
    store = await Store.open(settings.db_path)
    try:
        return await Pipeline(store, settings).annul(seq, via="cli", whole_scan=whole_scan)
    finally:
        await store.close()


async def enroll(
    settings: GateSettings,
    server: str,
    code: str,
    device: str = "",
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    """Trade the one-time code for this gate's credential, pin the keys, load the snapshot.

    A revoked gate comes back as a new gate: its journal is archived and what syncd has not got
    is carried to the new identity (``gate.store.carry``; ``carried`` in the answer).
    ``transport`` is for tests (``httpx.MockTransport``)."""
    store = await Store.open(settings.db_path)
    try:
        await learn_before_enrolment(store, settings, transport)
        before = await read_sync_state(store)
        peer_key = identity.new_key()
        async with SyncClient(server, timeout=settings.sync_timeout, transport=transport) as client:
            enrolled = await client.enroll(
                code, device or socket.gethostname(), public_key_to_b64(peer_key.public_key())
            )
        carry_from = None
        if before.gate_id not in (None, enrolled.gate_id):
            if before.revoked_at is None:
                raise ValueError(
                    f"this database belongs to gate #{before.gate_id} ({before.gate_name}), which"
                    " syncd has not revoked; its journal cannot move to another gate: revoke"
                    " it first, or use a fresh GATE_DATA_DIR"
                )
            carry_from = before.gate_id
        write_credential(settings.credential_path, enrolled.credential)
        identity.write_key(settings.peer_key_path, peer_key)
        carried = await save_enrolment(
            store, server, settings.credential_path, enrolled, carry_from=carry_from
        )
        async with SyncClient(
            server, enrolled.credential, timeout=settings.sync_timeout, transport=transport
        ) as client:
            tickets = await fetch_snapshot(store, client, settings.data_dir)
    finally:
        await store.close()
    return {
        "gate_id": enrolled.gate_id,
        "gate_name": enrolled.gate_name,
        "event_id": enrolled.event_id,
        "keys": [k.kid for k in enrolled.keys],
        "tickets": tickets,
        "credential_file": str(settings.credential_path),
        "skew_s": enrolled.server_time - time.time(),
        "peer_certificate": enrolled.certificate is not None,
        "carried": carried.as_dict() if carried is not None else None,
    }
