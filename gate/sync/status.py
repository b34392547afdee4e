"""Sync state for `gate status`, read from the database (the worker may be another process).

Another process cannot ask the worker whether it is online, so "online" here means syncd
answered within the longest quiet time a healthy worker has (a long-poll plus a timeout).
"""

from __future__ import annotations

from typing import Any

from gate.settings import GateSettings
from gate.store.carry import archive_summary
from gate.store.db import Store
from gate.store.syncstate import backlog, read_sync_state
from gate.store.wipe import revocation
from gate.sync.credential import read_credential


async def sync_summary(store: Store, settings: GateSettings, now: float) -> dict[str, Any]:
    state = await read_sync_state(store)
    url = settings.server_url or state.server_url
    last = max(state.last_push_at or 0, state.last_pull_at or 0) or None
    quiet = settings.sync_long_poll + settings.sync_timeout + settings.sync_push_interval + 5
    if not url:
        label = "not configured"
    elif state.revoked_at is not None:
        label = "revoked"
    elif _credential(settings) is None:
        label = "not enrolled"
    elif last is not None and now - last <= quiet and not state.last_error:
        label = "online"
    else:
        label = "offline"
    return {
        "state": label,
        "online": label == "online",
        "server_url": url,
        "gate_id": state.gate_id,
        "enrolled_as": state.gate_name,
        "event_id": state.event_id,
        "last_sync_at": last,
        "last_sync_age_s": now - last if last else None,
        "last_push_at": state.last_push_at,
        "last_pull_at": state.last_pull_at,
        "backlog": await backlog(store),
        "acked_seq": state.acked_seq,
        "skew_s": state.skew if state.last_push_at else None,
        "clock_warning": state.clock_warning,
        "last_error": state.last_error,
        "revoked_at": state.revoked_at,
        "holder_data": (await revocation(store)).holder_data,
        "earlier_gates": await archive_summary(store),
    }


def _credential(settings: GateSettings) -> str | None:
    try:
        return read_credential(settings.credential_path)
    except ValueError:
        return None


def format_sync(s: dict[str, Any]) -> list[str]:
    state = s["state"].upper()
    if s["state"] == "revoked":
        state = "REVOKED (gate credential revoked: enrol again)"
    lines = [f"Sync:            {state}" + (f" to {s['server_url']}" if s["server_url"] else "")]
    if s["server_url"]:
        age = s["last_sync_age_s"]
        skew = s["skew_s"]
        lines.append(
            f"Last sync:       {'never' if age is None else f'{age:.0f} s ago'},"
            f" backlog {s['backlog']:,}, clock skew "
            + ("unknown" if skew is None else f"{skew:+.2f} s")
        )
    for key, label in (("clock_warning", "Clock warning"), ("last_error", "Sync error")):
        if s[key]:
            lines.append(f"{label + ':':<17}{s[key]}")
    return lines + _revoked_lines(s) + [_earlier(g) for g in s["earlier_gates"]]


def _revoked_lines(s: dict[str, Any]) -> list[str]:
    if s["revoked_at"] is None:
        return []
    deleted = s["holder_data"] == "deleted"
    return [
        "Scanning:        REFUSED until the gate is enrolled again (`gate enroll`)",
        "Holder data:     "
        + ("deleted from this gate" if deleted else "NOT YET DELETED: `gate run` deletes it"),
    ]


def _earlier(g: dict[str, int]) -> str:
    line = (
        f"Earlier gate #{g['from_gate']}: {g['archived']:,} scans archived on this gate,"
        f" {g['carried']:,} sent on as this gate's"
    )
    if g["kept"]:
        line += f", {g['kept']:,} never sent: they cannot travel (kept here only)"
    return line


def format_carried(c: dict[str, int]) -> str:
    """What `gate enroll` says when a revoked gate's journal came along."""
    text = (
        f"Journal of revoked gate #{c['from_gate']}: {c['carried']:,} scans syncd never got"
        f" are sent as this gate's first seqs; all {c['archived']:,} stay archived on this gate"
    )
    if c["kept"]:
        text += (
            f"; {c['kept']:,} cannot be sent as this gate's (another event's, or an annulment of"
            " an admission syncd holds under the old id): they stay on this gate"
        )
    return text
