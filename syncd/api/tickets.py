"""Tickets: list, show, and the single-ticket actions (revoke, block, unblock, reissue)."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from shared.bundle import MAX_GROUP_CHARS
from syncd import signing
from syncd.api.common import load_event, pool
from syncd.api.queries import Conn
from syncd.api.queries import tickets as q
from syncd.api.queries import wallet as wallet_q
from syncd.feed import append as feed
from syncd.web.errors import ApiError, not_found
from syncd.web.operations import Handler, Param, op
from syncd.web.params import UINT64, json_response, path_int, query_int, query_text

STATUS = {"type": "string", "enum": ["valid", "revoked", "blocked"]}


def ticket_json(row: asyncpg.Record) -> dict[str, Any]:
    data = dict(row)
    data["kid"] = bytes(data["kid"]).hex()
    data["holder_name"] = data.pop("holder")
    for key in ("issued_at", "updated_at"):
        data[key] = data[key].isoformat()
    return data


async def load_ticket(conn: Conn, request: web.Request, *, lock: bool = False) -> asyncpg.Record:
    """The path's ticket, within the caller's event (which ``load_event`` checked)."""
    event = await load_event(conn, request, lock=lock)
    ticket_id = path_int(request, "ticket_id", UINT64 >> 1)
    row = await q.event_ticket(conn, ticket_id, event["event_id"])
    if row is None:
        raise not_found("ticket")
    return row


@op(
    "GET",
    "/api/v1/events/{event_id}/tickets",
    "List tickets (keyset pages by ticket_id).",
    tag="tickets",
    query=(
        Param("external_ref", {"type": "string"}, "only this external reference"),
        Param("status", STATUS, "only tickets with this status"),
        Param("group", {"type": "string", "minLength": 1, "maxLength": 64}, "only this group"),
        Param("after", {"type": "integer", "minimum": 0}, "ticket_id to continue after"),
        Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size"),
    ),
)
async def list_tickets(request: web.Request) -> web.Response:
    event = await load_event(pool(request), request)
    after = query_int(request, "after", 0, 0, UINT64 >> 1)
    limit = query_int(request, "limit", 100, 1, 1000)
    status = request.query.get("status")
    if status is not None and status not in STATUS["enum"]:
        raise ApiError(400, "bad_query", "status must be valid, revoked or blocked")
    external_ref = query_text(request, "external_ref")
    group = query_text(request, "group", MAX_GROUP_CHARS)
    if group == "":
        raise ApiError(400, "bad_query", "group must name a group")
    rows = await q.ticket_page(
        pool(request), event["event_id"], after, external_ref, status, limit, group
    )
    tickets = [ticket_json(r) for r in rows]
    more = len(rows) == limit
    return json_response(
        {"tickets": tickets, "next_after": rows[-1]["ticket_id"] if more else None}
    )


@op("GET", "/api/v1/events/{event_id}/tickets/{ticket_id}", "Show one ticket.", tag="tickets")
async def get_ticket(request: web.Request) -> web.Response:
    """The ticket, with its wallet: the claim link's age, claims, last claiming device."""
    async with pool(request).acquire() as conn:
        ticket = await load_ticket(conn, request)
        wallet = await wallet_q.ticket_wallet(conn, ticket["ticket_id"])
    return json_response({**ticket_json(ticket), "wallet": wallet_json(wallet)})


def wallet_json(row: asyncpg.Record | None) -> dict[str, Any] | None:
    """What the organiser sees of a ticket's wallet (None: no claim link made)."""
    if row is None:
        return None
    return {
        "link_made_at": row["created_at"].isoformat(),
        "claims": row["claims"],
        "claims_total": row["claims_total"],
        "claimed_at": row["claimed_at"].isoformat() if row["claimed_at"] else None,
        "device": row["device"] or None,
    }


_ACTIONS = {
    # action: (allowed current statuses, new status, new nonce?, feed kind)
    "revoke": (("valid", "blocked"), "revoked", False, "revoked"),
    "block": (("valid",), "blocked", False, "blocked"),
    "unblock": (("blocked",), "valid", False, "unblocked"),
    "reissue": (("valid", "blocked", "revoked"), None, True, "reissued"),
}


async def _act(request: web.Request, action: str) -> web.Response:
    allowed, new_status, renonce, kind = _ACTIONS[action]
    async with pool(request).acquire() as conn, conn.transaction():
        ticket = await load_ticket(conn, request, lock=True)
        if ticket["status"] not in allowed:
            raise ApiError(409, "bad_status", f"cannot {action} a {ticket['status']} ticket")
        signer = await signing.signer(conn, ticket["event_id"]) if renonce else ticket["kid"]
        row = await q.set_ticket_state(conn, ticket, new_status, signer, renonce)
        await feed.append_ticket(conn, kind, row["event_id"], row["ticket_id"])
    return json_response(ticket_json(row))


def _action_op(action: str, summary: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return await _act(request, action)

    handler.__name__ = f"{action}_ticket"
    return op(
        "POST",
        f"/api/v1/events/{{event_id}}/tickets/{{ticket_id}}/{action}",
        summary,
        role="organiser",
        tag="tickets",
    )(handler)


revoke_ticket = _action_op("revoke", "Revoke a ticket (permanent unless reissued).")
block_ticket = _action_op("block", "Block a ticket temporarily (e.g. reported lost).")
unblock_ticket = _action_op("unblock", "Unblock a blocked ticket; its QR works again.")
reissue_ticket = _action_op(
    "reissue",
    "Reissue: new nonce (old QR stops working), signed by the current key; "
    "a revoked or blocked ticket keeps its status.",
)
