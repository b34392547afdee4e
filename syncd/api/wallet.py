"""The holder's wallet: claim links, the passes of holder-bound rotating codes, and the page.

The story (docs/design.md section 5): the organiser makes a ticket's claim link
(``POST .../wallet-link``, shown once) and mails it. The holder opens it on their phone; the
wallet page (``syncd/wallet/static``) makes a non-extractable Ed25519 key there and claims
with its public half. Claiming *reissues* the ticket bound to that key (new nonce: every earlier
code of the ticket, static or rotating, stops working once gates have the change) and answers
the pass, which the page turns into a new T2 code every period, offline.

The link's token travels in the URL's fragment (never sent in a request line, so never in a
proxy's log) and in the claim's JSON body; only its SHA-256 is stored. Claiming again with the
same key is idempotent (a reload); with another key (a lost phone) it moves the ticket to the
new phone, at most ``wallet_max_claims`` times per link and not within
``wallet_reclaim_seconds`` of the last move (429), and the organiser sees the count and the
device. ``/wallet/api/pass`` gives a phone whose key is still bound a fresh pass (after a
reissue or a key rotation) and tells a replaced phone so (409 ``claimed_elsewhere``). An unknown
link is a 401, so guessing feeds the per-address failure limit like a wrong token.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from shared.peering import b64, unb64
from shared.rotating import sign_pass
from syncd import signing
from syncd.api.common import pool, vault
from syncd.api.queries import events as event_q
from syncd.api.queries import wallet as q
from syncd.api.tickets import load_ticket
from syncd.feed import append as feed
from syncd.keys import SETTINGS
from syncd.vault import hash_token
from syncd.web.errors import ApiError, not_found
from syncd.web.operations import op
from syncd.web.params import json_response, read_model
from syncd.web.static_page import StaticPage

log = logging.getLogger(__name__)
LINK_PREFIX = "tsw_"
STATIC = Path(__file__).resolve().parents[1] / "wallet" / "static"
WALLET_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self';"
    " connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none';"
    " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".md": "text/plain",
    ".txt": "text/plain",
    "": "text/plain",  # LICENSE
}


class ClaimIn(BaseModel):
    """A phone's claim (or pass refresh): the link's token and the phone's public key."""

    model_config = ConfigDict(extra="forbid", strict=True)
    token: str = Field(min_length=20, max_length=80, pattern=r"^tsw_[A-Za-z0-9_-]+$")
    holder_key: str = Field(
        min_length=43,
        max_length=43,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The phone's raw 32-byte Ed25519 public key, unpadded base64url.",
    )


def _holder_key(body: ClaimIn) -> bytes:
    try:
        return unb64(body.holder_key, 43)
    except ValueError:
        raise ApiError(422, "invalid", "holder_key is not 32 bytes of base64url") from None


def _unknown_link() -> ApiError:
    return ApiError(401, "unknown_link", "this wallet link is unknown or was replaced")


def _base_url(request: web.Request) -> str:
    public = request.app[SETTINGS].public_url
    return (public or f"{request.scheme}://{request.host}").rstrip("/")


@op(
    "POST",
    "/api/v1/events/{event_id}/tickets/{ticket_id}/wallet-link",
    "Make the ticket's wallet claim link (shown once; it replaces an earlier link).",
    role="organiser",
    tag="wallet",
    ok_status=201,
)
async def wallet_link(request: web.Request) -> web.Response:
    token = LINK_PREFIX + secrets.token_urlsafe(32)
    async with pool(request).acquire() as conn, conn.transaction():
        ticket = await load_ticket(conn, request, lock=True)
        if ticket["status"] != "valid":
            raise ApiError(409, "bad_status", f"the ticket is {ticket['status']}")
        await q.put_link(conn, ticket["ticket_id"], ticket["event_id"], hash_token(token))
    path = f"/wallet/#claim={token}"
    log.info("wallet link made", extra={"ticket_id": ticket["ticket_id"]})
    return json_response(
        {"url": _base_url(request) + path, "path": path, "ticket_id": ticket["ticket_id"]},
        status=201,
    )


@op(
    "POST",
    "/wallet/api/claim",
    "A holder's phone claims its ticket with its own public key: the answer is its pass.",
    role=None,
    body=ClaimIn,
    tag="wallet",
)
async def claim(request: web.Request) -> web.Response:
    body = await read_model(request, ClaimIn)
    holder_key = _holder_key(body)
    token_hash = hash_token(body.token)
    device = request.headers.get("User-Agent", "").replace("\x00", "")[:200]
    async with pool(request).acquire() as conn, conn.transaction():
        row = await q.link(conn, token_hash)
        if row is not None and row["holder_key"] != holder_key:
            row = await _move(request, conn, token_hash, holder_key, device)
        answer = await _pass(request, conn, row)
    return json_response(answer)


async def _move(
    request: web.Request, conn: asyncpg.Connection, token_hash: bytes, key: bytes, device: str
) -> asyncpg.Record:
    """Bind the ticket to a new phone's key: checks, reissue, feed, counts (one transaction)."""
    event_id = await q.link_event(conn, token_hash)
    if event_id is None:
        raise _unknown_link()
    await q.lock_event(conn, event_id)
    row = await q.link(conn, token_hash, lock=True)
    if row is None:
        raise _unknown_link()
    if row["holder_key"] == key:  # the same phone, twice at once
        return row
    _check_status(row)
    _may_move(request, row)
    signer = await signing.signer(conn, event_id)
    moved = await q.bind_holder(conn, row["ticket_id"], event_id, key, signer)
    await feed.append_ticket(conn, "reissued", event_id, row["ticket_id"])
    counts = await q.count_claim(conn, row["ticket_id"], device)
    log.info(
        "wallet claimed",
        extra={"ticket_id": row["ticket_id"], "event_id": event_id, "claims": counts["claims"]},
    )
    return moved


def _check_status(row: asyncpg.Record) -> None:
    if row["status"] != "valid":
        raise ApiError(409, "bad_status", f"the ticket is {row['status']}: ask the organiser")


def _may_move(request: web.Request, row: asyncpg.Record) -> None:
    """A claim with a new key moves the ticket; bounded per link and in time."""
    settings = request.app[SETTINGS]
    if row["claims"] >= settings.wallet_max_claims:
        raise ApiError(
            429,
            "claim_limit",
            "this link has moved the ticket too often: ask the organiser for a new link",
        )
    if row["claimed_at"] is not None:
        wait = settings.wallet_reclaim_seconds - (time.time() - row["claimed_at"].timestamp())
        if wait > 0:
            raise ApiError(
                429,
                "claim_rate_limited",
                f"the ticket moved to a phone moments ago: try again in {int(wait) + 1} s",
                headers={"Retry-After": str(int(wait) + 1)},
            )


@op(
    "POST",
    "/wallet/api/pass",
    "A claimed phone's current pass (after a reissue); 409 once another phone claimed.",
    role=None,
    body=ClaimIn,
    tag="wallet",
)
async def current_pass(request: web.Request) -> web.Response:
    body = await read_model(request, ClaimIn)
    holder_key = _holder_key(body)
    async with pool(request).acquire() as conn:
        row = await q.link(conn, hash_token(body.token))
        if row is not None and row["holder_key"] != holder_key:
            raise ApiError(409, "claimed_elsewhere", "this ticket was moved to another phone")
        answer = await _pass(request, conn, row)
    return json_response(answer)


async def _pass(
    request: web.Request, conn: asyncpg.Connection, row: asyncpg.Record | None
) -> dict[str, Any]:
    """The pass JSON the wallet page stores: signed bytes, period, what it shows."""
    if row is None:
        raise _unknown_link()
    _check_status(row)
    event = await event_q.event_by_id(conn, row["event_id"])
    keys = await signing.private_keys(conn, vault(request), row["event_id"])
    key = keys.get(bytes(row["kid"]))
    if key is None or event is None:
        raise ApiError(409, "key_unavailable", "the ticket's key was retired: ask the organiser")
    signed = sign_pass(
        key,
        holder_key=bytes(row["holder_key"]),
        event_id=row["event_id"],
        ticket_id=row["ticket_id"],
        nonce=row["nonce"],
        zone=row["zone"],
        valid_from=row["valid_from"],
        valid_until=row["valid_until"],
    )
    return {
        "pass": b64(signed),
        "period": event["rotation_period"],
        "rotating": event["rotating"],
        "event": _event_json(event),
        "ticket_id": row["ticket_id"],
        "holder": row["holder"] or None,
        "category": row["category"],
        "server_time": time.time(),
    }


def _event_json(event: asyncpg.Record) -> dict[str, Any]:
    starts: datetime | None = event["starts_at"]
    return {
        "event_id": event["event_id"],
        "name": event["name"],
        "venue": event["venue"],
        "starts_at": starts.isoformat() if starts else None,
        "timezone": event["timezone"],
    }


_PAGE = StaticPage(STATIC, WALLET_CSP, _TYPES)


@op("GET", "/wallet/", "The holder's wallet page.", role=None, tag="wallet", produces="text/html")
async def page(request: web.Request) -> web.Response:
    if "index.html" not in _PAGE.files:
        raise not_found("page")
    return _PAGE.response("index.html")


@op("GET", "/wallet/{name}", "A file of the wallet page.", role=None, tag="wallet")
async def page_file(request: web.Request) -> web.Response:
    return _static(request.match_info["name"])


@op("GET", "/wallet/vendor/{name}", "A vendored library of the page.", role=None, tag="wallet")
async def vendor_file(request: web.Request) -> web.Response:
    return _static("vendor/" + request.match_info["name"])


def _static(name: str) -> web.Response:
    return _PAGE.response(name)
