"""The event's signed list bundle (``shared/bundle.py`` format), streamed to the client.

``write_bundle`` is synchronous, so it runs in a worker thread; it pulls ticket rows from an
asyncpg cursor and pushes compressed bytes to the response through the event loop. The header's
count, the rows and the cursor (the event's change-feed position) come from one repeatable-read
snapshot, so a gate that loads the bundle and then follows the feed from ``cursor`` misses
nothing.

``?format=`` picks the bundle format (``shared.bundle``): 3 carries each ticket's group, 2
leaves it out for a gate built before groups (which refuses format 3). Gates that know groups ask
for 3; a snapshot asked without it is 2. The organiser's file is 3 when a ticket of the event has
a group, else 2, so it loads on any gate until groups are used.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import asyncpg
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.bundle import (
    FORMATS,
    BundleEvent,
    BundleHeader,
    BundleKey,
    BundleTicket,
    write_bundle,
)
from shared.ticket import public_key_to_b64
from syncd import signing
from syncd.api.common import load_event, pool, vault
from syncd.api.queries import bundle as q
from syncd.api.queries.tickets import ticket_total
from syncd.web.errors import ApiError
from syncd.web.operations import Param, op
from syncd.web.params import query_flag

_BATCH = 5000
FORMAT_PARAM = Param(
    "format",
    {"type": "string", "enum": ["2", "3"]},
    "bundle format: 3 carries each ticket's group; 2 (for gates built before groups) leaves it out",
)


def bundle_format(request: web.Request, default: str | None) -> str | None:
    """The ``format`` asked for, as a ``shared.bundle`` format name (``default``: none asked)."""
    text = request.query.get("format", default)
    if text is None:
        return None
    name = f"tessera-bundle/{text}"
    if text not in ("2", "3") or name not in FORMATS:
        raise ApiError(400, "bad_query", "format must be 2 or 3")
    return name


class _Bridge:
    """Sync side of the bridge: a file-like sink and a row source, both served by the loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        response: web.StreamResponse,
        cursor: Any,
        names: bool,
    ) -> None:
        self._loop, self._response, self._cursor, self._names = loop, response, cursor, names
        self._buf = bytearray()

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def write(self, data: bytes) -> int:
        self._buf += data
        if len(self._buf) >= 1 << 16:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buf:
            self._run(self._response.write(bytes(self._buf)))
            self._buf.clear()

    def tickets(self) -> Iterator[BundleTicket]:
        while rows := self._run(self._cursor.fetch(_BATCH)):
            for r in rows:
                yield BundleTicket(
                    r["ticket_id"],
                    r["nonce"],
                    r["status"],
                    r["zone"],
                    r["category"],
                    r["holder"] if self._names else None,
                    r["valid_from"],
                    r["valid_until"],
                    r["group_ref"],
                )


async def _header(conn: asyncpg.Connection, event: asyncpg.Record, fmt: str | None) -> BundleHeader:
    keys = await q.active_keys(conn, event["event_id"])
    count = await ticket_total(conn, event["event_id"])
    cursor = await q.change_seq(conn, event["event_id"])
    if fmt is None:
        grouped = await q.has_groups(conn, event["event_id"])
        fmt = f"tessera-bundle/{3 if grouped else 2}"
    return BundleHeader(
        event=BundleEvent(
            event_id=event["event_id"],
            name=event["name"],
            zones={str(i): z for i, z in enumerate(event["zones"])},
            timezone=event["timezone"],
            reentry=event["reentry"],
            starts_at=int(event["starts_at"].timestamp()) if event["starts_at"] else 0,
            ends_at=int(event["ends_at"].timestamp()) if event["ends_at"] else 0,
            rotating=event["rotating"],
            rotation_period=event["rotation_period"],
            checkout_time=event["checkout_time"],
        ),
        keys=[
            BundleKey(
                bytes(k["kid"]).hex(),
                public_key_to_b64(Ed25519PublicKey.from_public_bytes(k["public_key"])),
                k["status"],
            )
            for k in keys
        ],
        ticket_count=count,
        issued_at=int(time.time()),
        cursor=str(cursor),
        format=fmt,
    )


@op(
    "GET",
    "/api/v1/events/{event_id}/bundle",
    "The event's signed list bundle (gzip JSON lines) for `gate import-list`.",
    role="organiser",
    tag="bundle",
    produces="application/octet-stream",
    query=(
        Param(
            "names",
            {"type": "string", "enum": ["0", "1", "true", "false"]},
            "include holder names (shown to door staff)",
        ),
        FORMAT_PARAM,
    ),
)
async def bundle(request: web.Request) -> web.StreamResponse:
    event = await load_event(pool(request), request)
    names = query_flag(request, "names")
    fmt = bundle_format(request, None)
    disposition = f'attachment; filename="event-{event["event_id"]}.bundle"'
    return await stream_bundle(
        request, event, names=names, fmt=fmt, headers={"Content-Disposition": disposition}
    )


async def stream_bundle(
    request: web.Request,
    event: asyncpg.Record,
    *,
    names: bool,
    fmt: str | None,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    """Stream ``event``'s list as a bundle signed by its current key, from one DB snapshot;
    in format ``fmt`` (None: 3 if a ticket of the event has a group, else 2).

    Served as ``application/octet-stream`` without ``Content-Encoding`` (the bundle *is* gzip;
    a client must not unpack it on the way).
    """
    response = web.StreamResponse(
        headers={"Content-Type": "application/octet-stream", **(headers or {})}
    )
    async with (
        pool(request).acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        header = await _header(conn, event, fmt)
        signer = await signing.signer(conn, event["event_id"])
        key = (await signing.private_keys(conn, vault(request), event["event_id"]))[signer]
        response.headers["X-Ticket-Count"] = str(header.ticket_count)
        await response.prepare(request)
        cursor = await q.bundle_tickets(conn, event["event_id"])
        bridge = _Bridge(asyncio.get_running_loop(), response, cursor, names)
        await asyncio.to_thread(_write, bridge, header, key)
    await response.write_eof()
    return response


def _write(bridge: _Bridge, header: BundleHeader, key: Any) -> None:
    write_bundle(bridge, header, bridge.tickets(), key)  # type: ignore[arg-type]
    bridge.flush()
