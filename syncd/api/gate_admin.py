"""Gates of an event (organiser side): create with a one-time enrolment code, list, new code,
revoke.

An enrolment code is 16 characters from an unambiguous alphabet (80 bits), shown once, stored
as SHA-256 and usable once before it expires (``SYNCD_ENROLL_CODE_TTL``). The gate trades it at
``POST /api/v1/gate/enroll`` for its own ``tsg_`` credential, also stored only as a hash.
Revoking a gate refuses its credential (and any open code) from the next request on.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from syncd.api.common import event_id_of, load_event, pool
from syncd.api.queries import gate_admin as q
from syncd.feed import append as feed_append
from syncd.keys import SETTINGS
from syncd.vault import hash_token
from syncd.web.auth import forget_credential
from syncd.web.docs import PATH_PARAMS
from syncd.web.errors import ApiError, not_found
from syncd.web.operations import op
from syncd.web.params import UINT64, json_response, path_int, read_model

log = logging.getLogger("syncd.gates")
PATH_PARAMS.setdefault("gate_id", {"type": "integer", "minimum": 1, "maximum": (1 << 63) - 1})
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class GateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=200)
    zone: str = Field(default="", max_length=64, description="Zone name this gate stands at.")


def new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def hash_code(code: str) -> bytes:
    """Codes compare without dashes, spaces or case, so a code read aloud still works."""
    return hash_token("".join(code.split()).replace("-", "").upper())


def gate_state(row: asyncpg.Record | dict) -> str:
    if row["revoked_at"] is not None:
        return "revoked"
    return "enrolled" if row["enrolled_at"] is not None else "pending"


def gate_json(row: asyncpg.Record) -> dict[str, Any]:
    data = dict(row)
    data["state"] = gate_state(row)
    for key in ("enrolled_at", "revoked_at", "code_expires_at", "last_push_at", "created_at"):
        data[key] = data[key].isoformat() if data[key] else None
    data["last_drill"] = drill_json(row)
    del data["last_drill_at"], data["last_drill_result"]
    return data


def drill_json(row: asyncpg.Record | dict) -> dict[str, Any] | None:
    """A gate's last pre-doors drill as organisers see it (None: never drilled): when it reached
    syncd (syncd's clock), green/amber/red, the names of the items that failed and warned. A row
    with the board (``last_drill``, the gate list) adds when the gate ran it (its clock), how
    long it took and the problems: the failed and warned items with their figures and reasons.
    A row without it (the stats) carries the names as ``drill_failing`` / ``drill_warning``."""
    if row["last_drill_at"] is None:
        return None
    data: dict[str, Any] = {
        "at": row["last_drill_at"].isoformat(),
        "result": row["last_drill_result"],
    }
    if "last_drill" not in row:
        data.update(failing=list(row["drill_failing"]), warning=list(row["drill_warning"]))
        return data
    board = row["last_drill"] or {}
    problems = [i for i in board.get("items", []) if i["status"] in ("fail", "warn")]
    data.update(
        failing=[i["name"] for i in problems if i["status"] == "fail"],
        warning=[i["name"] for i in problems if i["status"] == "warn"],
        ran_at=board.get("ran_at"),
        seconds=board.get("seconds"),
        problems=problems,
    )
    return data


def _expiry(request: web.Request) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=request.app[SETTINGS].enroll_code_ttl)


@op(
    "POST",
    "/api/v1/events/{event_id}/gates",
    "Create a gate; the answer carries its one-time enrolment code (shown only here).",
    role="organiser",
    body=GateIn,
    tag="gates",
    ok_status=201,
)
async def create_gate(request: web.Request) -> web.Response:
    body = await read_model(request, GateIn)
    event = await load_event(pool(request), request)
    if body.zone and body.zone.lower() not in {z.lower() for z in event["zones"]}:
        raise ApiError(422, "invalid", f"zone {body.zone!r} is not one of {event['zones']}")
    code = new_code()
    row = await q.insert_gate(
        pool(request), event["event_id"], body.name, body.zone, hash_code(code), _expiry(request)
    )
    log.info("gate created", extra={"gate_id": row["gate_id"], "event_id": event["event_id"]})
    return json_response({**gate_json(row), "code": code}, status=201)


@op("GET", "/api/v1/events/{event_id}/gates", "List an event's gates.", tag="gates")
async def list_gates(request: web.Request) -> web.Response:
    event = await load_event(pool(request), request)
    rows = await q.event_gates(pool(request), event["event_id"])
    return json_response({"gates": [gate_json(r) for r in rows]})


async def _update_gate(
    request: web.Request, sets: str, *args: Any, active_only: bool = False, feed: str = ""
) -> asyncpg.Record:
    """Update the path's gate; 404 if the event has no such gate. ``active_only``: a revoked
    gate is left untouched and the answer is 409 (nothing is written for it). ``feed``: a
    ``gate.*`` change appended in the same transaction (peers learn it from the feed)."""
    await load_event(pool(request), request)
    gate_id = path_int(request, "gate_id", UINT64 >> 1)
    event_id = event_id_of(request)
    async with pool(request).acquire() as conn, conn.transaction():
        row = await q.update_gate(conn, gate_id, event_id, sets, *args, active_only=active_only)
        if row is not None and feed:
            await feed_append.append_gate(conn, event_id, feed, gate_id)
    if row is not None:
        return row
    exists = await q.gate_exists(pool(request), gate_id, event_id)
    if exists:
        raise ApiError(409, "gate_revoked", "this gate is revoked; create a new gate")
    raise not_found("gate")


@op(
    "POST",
    "/api/v1/events/{event_id}/gates/{gate_id}/code",
    "New one-time enrolment code (e.g. a replaced device); enrolling with it replaces the"
    " gate's credential. A revoked gate gets none (409).",
    role="organiser",
    tag="gates",
)
async def new_gate_code(request: web.Request) -> web.Response:
    code = new_code()
    row = await _update_gate(
        request,
        "code_hash = $3, code_expires_at = $4",
        hash_code(code),
        _expiry(request),
        active_only=True,
    )
    return json_response({**gate_json(row), "code": code})


@op(
    "DELETE",
    "/api/v1/events/{event_id}/gates/{gate_id}",
    "Revoke a gate: its credential and any open code stop working at once. Its check-ins stay.",
    role="organiser",
    tag="gates",
)
async def revoke_gate(request: web.Request) -> web.Response:
    row = await _update_gate(
        request,
        "revoked_at = coalesce(revoked_at, now()), code_hash = NULL, credential_hash = NULL",
        feed="revoked",
    )
    forget_credential(request, "gate", row["gate_id"])  # other replicas: Postgres tells them
    log.info("gate revoked", extra={"gate_id": row["gate_id"], "event_id": row["event_id"]})
    return json_response(gate_json(row))
