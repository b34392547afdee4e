"""The gate endpoints of shared/protocol.py: enrol, push, change feed (long-poll), snapshot,
presence, peers, drill reports. All but enrolment take a ``tsg_`` gate credential and act on
that gate's event only.

A database that is unreachable answers 503 with Retry-After (the gate retries with backoff),
never a 500: ``middleware.errors`` maps it, as for every endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from contextlib import suppress

import asyncpg
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.peering import PeerError, b64, make_certificate, unb64
from shared.protocol import (
    CHANGES_PATH,
    DRILL_PATH,
    ENROLL_PATH,
    GATE_CREDENTIAL_PREFIX,
    MAX_WAIT_SECONDS,
    PEERS_PATH,
    PRESENCE_PATH,
    PUSH_PATH,
    SNAPSHOT_PATH,
    STREAM_PATH,
    DrillAnswer,
    DrillReport,
    EnrollRequest,
    EnrollResponse,
    PeersPage,
    PeersReport,
    PushRequest,
    PushResponse,
)
from syncd import signing
from syncd.api import bundle
from syncd.api.common import pool, vault
from syncd.api.gate_admin import hash_code
from syncd.api.queries import events as event_queries
from syncd.api.queries import gate_admin as admin_queries
from syncd.api.queries import gate_sync as q
from syncd.checkins.pusher import (
    JournalBusyError,
    JournalClashError,
    PushFailedError,
    PushRefusedError,
)
from syncd.feed import append as feed_append
from syncd.feed import read as feed
from syncd.feed.stream import FeedStream, StreamConfig
from syncd.keys import BROADCASTER, FEED_READS, NOTIFIER, PUSHER, SEEN, SETTINGS
from syncd.vault import hash_token
from syncd.web.auth import Principal, forget_credential, principal_of, resolve
from syncd.web.errors import ApiError
from syncd.web.operations import Param, op
from syncd.web.params import json_response, read_model

log = logging.getLogger("syncd.gatesync")
GATE = frozenset({"gate"})


def _gate(request: web.Request) -> Principal:
    principal = principal_of(request)
    assert principal.kind == "gate" and principal.event_id is not None
    return principal


@op(
    "POST",
    ENROLL_PATH,
    "Trade a one-time enrolment code for the gate's credential and keys.",
    role=None,
    body=EnrollRequest,
    tag="gate",
)
async def enroll(request: web.Request) -> web.Response:
    body = await read_model(request, EnrollRequest)
    credential = GATE_CREDENTIAL_PREFIX + secrets.token_urlsafe(32)
    async with pool(request).acquire() as conn, conn.transaction():
        row = await q.enroll_gate(conn, hash_code(body.code), hash_token(credential), body.device)
        if row is None:
            raise ApiError(401, "bad_code", "enrolment code unknown, used or expired")
        keys = await q.gate_keys(conn, row["event_id"])
        cert = await _certify(request, conn, row, body.peer_key)
    forget_credential(request, "gate", row["gate_id"])  # a re-enrolment replaced its credential
    log.info("gate enrolled", extra={"gate_id": row["gate_id"], "event_id": row["event_id"]})
    answer = EnrollResponse(
        gate_id=row["gate_id"],
        gate_name=row["name"],
        event_id=row["event_id"],
        credential=credential,
        server_time=time.time(),
        keys=[feed.key_info(k["kid"], k["public_key"], k["status"]) for k in keys],
        certificate=b64(cert) if cert else None,
    )
    return json_response(answer.model_dump(mode="json"))


async def _certify(
    request: web.Request, conn: asyncpg.Connection, gate: asyncpg.Record, peer_key: str | None
) -> bytes | None:
    """Certify the gate's own peer key with the event's signing key (docs/design.md section 6)
    and tell the event's gates through the feed; None when the gate sent no key (an older gate).
    """
    if peer_key is None:
        return None
    try:
        raw = unb64(peer_key, 43)
        public = Ed25519PublicKey.from_public_bytes(raw)
    except (PeerError, ValueError):
        raise ApiError(422, "invalid", "peer_key is not a base64url Ed25519 public key") from None
    event_id = gate["event_id"]
    kid = await signing.signer(conn, event_id)
    private = (await signing.private_keys(conn, vault(request), event_id))[kid]
    cert = make_certificate(private, event_id, gate["gate_id"], public, gate["name"])
    await q.certify_gate(conn, gate["gate_id"], raw, cert)
    await feed_append.append_gate(conn, event_id, "enrolled", gate["gate_id"])
    return cert


def _clock_warning(request: web.Request, gate: Principal, skew: float) -> str | None:
    """The warning for a gate whose clock is off by more than the limit. ``sent_at`` is bounded
    (``shared.protocol.MAX_GATE_TIME``), so the skew printed has at most 11 digits."""
    limit = request.app[SETTINGS].clock_warn_seconds
    if abs(skew) <= limit:
        return None
    log.warning("gate clock off", extra={"gate_id": gate.subject_id, "skew": round(skew, 1)})
    return f"gate clock is {skew:+.1f} s off syncd's clock (limit {limit:g} s): set its time"


@op(
    "POST",
    PUSH_PATH,
    "Store a batch of the gate's check-ins (idempotent on gate + seq).",
    principals=GATE,
    body=PushRequest,
    tag="gate",
)
async def push(request: web.Request) -> web.Response:
    now = time.time()
    body = await read_model(request, PushRequest)
    gate = _gate(request)
    skew = now - body.sent_at
    try:
        stored = await request.app[PUSHER].store(pool(request), gate.subject_id, body, skew)
    except JournalClashError as exc:
        raise ApiError(409, "journal_clash", str(exc), seq=exc.seq) from None
    except JournalBusyError:
        raise ApiError(503, "busy", "check-ins of the same tickets collided, retry") from None
    except PushRefusedError as exc:
        raise ApiError(422, "push_refused", str(exc)) from None
    except PushFailedError as exc:
        raise ApiError(503, "push_failed", str(exc)) from None
    request.app[SEEN].saw(gate.subject_id, body.backlog)  # the dashboard's online and backlog
    answer = PushResponse(
        acked_seq=stored.acked_seq,
        stored=stored.stored,
        server_time=now,
        skew=skew,
        clock_warning=_clock_warning(request, gate, skew),
        committed_at=stored.committed_at,
    )
    return json_response(answer.model_dump(mode="json"))


def _wait(request: web.Request) -> float:
    try:
        wait = float(request.query.get("wait", "0"))
    except ValueError:
        raise ApiError(400, "bad_query", "wait must be a number of seconds") from None
    if not 0 <= wait <= MAX_WAIT_SECONDS:
        raise ApiError(400, "bad_query", f"wait must be between 0 and {MAX_WAIT_SECONDS}")
    return wait


@op(
    "GET",
    CHANGES_PATH,
    "Changes after the cursor; long-polls up to `wait` seconds.",
    principals=GATE,
    tag="gate",
    query=(
        Param("cursor", {"type": "string"}, "opaque; empty = from the start"),
        Param(
            "wait",
            {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS},
            "seconds to hold the request while nothing changed",
        ),
    ),
)
async def changes_page(request: web.Request) -> web.Response:
    gate = _gate(request)
    settings = request.app[SETTINGS]
    reader = feed.Reader(
        gate.event_id or 0, gate.subject_id, settings.feed_page, settings.feed_max_behind
    )
    cursor, deadline = request.query.get("cursor", ""), time.monotonic() + _wait(request)
    request.app[SEEN].saw(gate.subject_id)  # online (a stream is seen while it is open)
    while True:
        flag = request.app[NOTIFIER].feed_event(reader.event_id)
        page = await request.app[FEED_READS].page(pool(request), reader, cursor, flag)
        left = deadline - time.monotonic()
        if page.changes or page.snapshot_required or page.cursor != cursor or left <= 0:
            return web.Response(body=page.json(), content_type="application/json")
        with suppress(TimeoutError):  # no re-read while idle: the notifier wakes us
            await asyncio.wait_for(flag.wait(), left)


@op(
    "GET",
    STREAM_PATH,
    "The change feed pushed as server-sent events (`event: page`, one ChangesPage each) from"
    " the cursor on, for as long as the gate stays connected.",
    principals=GATE,
    tag="gate",
    produces="text/event-stream",
    query=(Param("cursor", {"type": "string"}, "opaque; empty = from the start"),),
)
async def stream(request: web.Request) -> web.StreamResponse:
    gate = _gate(request)
    settings = request.app[SETTINGS]
    reader = feed.Reader(
        gate.event_id or 0, gate.subject_id, settings.feed_page, settings.feed_max_behind
    )
    cursor = request.query.get("cursor", "")
    credential = request.headers.get("Authorization", "").partition(" ")[2].strip()

    async def still_valid() -> bool:
        now = await resolve(request.app, credential)
        return now is not None and now.kind == "gate" and now.subject_id == gate.subject_id

    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    app = request.app
    config = StreamConfig(settings.stream_heartbeat, settings.stream_write_timeout)
    feed_stream = FeedStream(
        response,
        request.transport,
        app[FEED_READS],
        pool(request),
        app[NOTIFIER],
        config,
        app[BROADCASTER],
    )
    await feed_stream.run(reader, cursor, still_valid)
    return response


@op(
    "GET",
    PRESENCE_PATH,
    "Who is inside now (latest admission per ticket is an entry).",
    principals=GATE,
    tag="gate",
)
async def presence(request: web.Request) -> web.Response:
    page = await feed.presence(pool(request), _gate(request).event_id or 0)
    return json_response(page.model_dump(mode="json"))


@op(
    "POST",
    PEERS_PATH,
    "Report where this gate's peer server answers; get the event's other gates (certificates,"
    " URLs, revoked) for the venue LAN mesh.",
    principals=GATE,
    body=PeersReport,
    tag="gate",
)
async def peers(request: web.Request) -> web.Response:
    body = await read_model(request, PeersReport)
    gate = _gate(request)
    async with pool(request).acquire() as conn:
        if body.urls is not None:
            await q.report_urls(conn, gate.subject_id, body.urls)
        rows = await q.event_peers(conn, gate.event_id or 0, gate.subject_id)
    page = PeersPage(
        gates=[feed.gate_change(r) for r in rows],
        urls={str(r["p_gate"]): list(r["peer_urls"]) for r in rows if not r["p_revoked"]},
    )
    return json_response(page.model_dump(mode="json"))


@op(
    "POST",
    DRILL_PATH,
    "Report this gate's pre-doors drill (its board of checks); the event's gate list and stats"
    " show each gate's last one.",
    principals=GATE,
    body=DrillReport,
    tag="gate",
)
async def drill(request: web.Request) -> web.Response:
    body = await read_model(request, DrillReport)
    gate = _gate(request)
    board = body.model_dump(mode="json")
    stored = await admin_queries.record_drill(pool(request), gate.subject_id, body.result, board)
    if stored is None:  # revoked since its credential was last looked up
        raise ApiError(401, "unauthorized", "this gate's credential was revoked")
    log.info(
        "gate drilled",
        extra={"gate_id": gate.subject_id, "event_id": gate.event_id, "result": body.result},
    )
    answer = DrillAnswer(result=body.result, server_time=time.time())
    return json_response(answer.model_dump(mode="json"))


@op(
    "GET",
    SNAPSHOT_PATH,
    "The event's signed list bundle; header.cursor is the feed position.",
    principals=GATE,
    tag="gate",
    produces="application/octet-stream",
    query=(bundle.FORMAT_PARAM,),
)
async def snapshot(request: web.Request) -> web.StreamResponse:
    fmt = bundle.bundle_format(request, "2")  # a gate built before groups reads 2 only
    event = await event_queries.event_by_id(pool(request), _gate(request).event_id)
    return await bundle.stream_bundle(request, event, names=True, fmt=fmt)
