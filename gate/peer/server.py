"""The peer server: serves this gate's own admissions (and annulments) to the event's other gates.

One aiohttp WebSocket per follower (``/peer/v1/follow``, see ``gate.peer.messages``). Nothing
is sent before the follower proved it holds a certified, unrevoked key of this event; then the
server streams its admissions after the follower's mark, each signed with this gate's key, and a
tick every heartbeat. A follower that speaks protocol 2 and asks for them in its ``Follow`` also
gets this gate's annulments, signed, in seq order among the admissions; any other gets
admissions only, as before. Reads go through a read-only connection of their own, so a follower
never queues behind or in front of a scan on the store's writer; a follower that does not take
what is sent within the timeout is dropped. At most ``max_followers`` proven followers at once,
and as many unproven connections, each given ``timeout`` seconds per handshake step (503 beyond).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal

import aiosqlite
from aiohttp import WSCloseCode, web

from gate.peer.messages import (
    FOLLOW_PATH,
    MAX_BATCH,
    MAX_MESSAGE,
    PROTOCOL_2,
    Admissions,
    Annul,
    Challenge,
    Follow,
    Hello,
    Item,
    Records,
    Tick,
    Welcome,
    expect,
    send,
)
from gate.peer.settings import PeerSettings
from gate.peer.trust import Trust, new_nonce, nonce_bytes
from gate.store.db import Store
from gate.store.peers import OwnRecord, own_records
from shared.peering import Admission, Annulment, GateCertificate, PeerError

log = logging.getLogger(__name__)


class PeerServer:
    def __init__(
        self, store: Store, trust: Trust, settings: PeerSettings, skew: Callable[[], float]
    ) -> None:
        self.store = store
        self.trust = trust
        self.settings = settings
        self._skew = skew
        self.sessions: dict[int, web.WebSocketResponse] = {}
        self.refused = 0  # handshakes that failed (for status and tests)
        self._handshakes = 0  # connections not proven yet (bounded like the sessions)
        self._runner: web.AppRunner | None = None
        self._reader: aiosqlite.Connection | None = None
        self.port: int | None = None

    async def start(self) -> None:
        self._reader = await aiosqlite.connect(f"file:{self.store.path}?mode=ro", uri=True)
        app = web.Application(client_max_size=MAX_MESSAGE)
        app.router.add_get(FOLLOW_PATH, self.follow)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port, reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        log.info("peer server listening", extra={"host": self.settings.host, "port": self.port})

    async def stop(self) -> None:
        for ws in list(self.sessions.values()):
            await ws.close(code=WSCloseCode.GOING_AWAY)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._reader is not None:
            await self._reader.close()

    async def drop(self, gate_id: int) -> None:
        """Close the session of a gate that was revoked meanwhile."""
        ws = self.sessions.get(gate_id)
        if ws is not None:
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"revoked")

    async def follow(self, request: web.Request) -> web.StreamResponse:
        limit = self.settings.max_followers
        if len(self.sessions) >= limit or self._handshakes >= limit:
            raise web.HTTPServiceUnavailable(text="too many peers")
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE, autoping=True, protocols=(PROTOCOL_2,))
        await ws.prepare(request)
        peer: GateCertificate | None = None
        try:
            self._handshakes += 1
            try:
                peer, follow = await self._handshake(ws)
            finally:
                self._handshakes -= 1
            if peer.gate_id in self.sessions:  # a newer link from the same gate replaces it
                await self.sessions[peer.gate_id].close(code=WSCloseCode.GOING_AWAY)
            self.sessions[peer.gate_id] = ws
            await _until_closed(ws, self._serve(ws, peer, follow))
        except (PeerError, TimeoutError) as exc:
            self.refused += peer is None
            log.info("peer session ended: %s", exc, extra={"peer": request.remote})
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if peer is not None and self.sessions.get(peer.gate_id) is ws:
                del self.sessions[peer.gate_id]
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    async def _handshake(self, ws: web.WebSocketResponse) -> tuple[GateCertificate, Follow]:
        timeout = self.settings.timeout
        mine = new_nonce()
        await send(ws, Challenge(cert=self.trust.me.cert.text, nonce=mine.hex()), timeout)
        hello = await expect(ws, Hello, timeout)
        peer = self.trust.check(hello.cert)
        theirs = nonce_bytes(hello.nonce)
        self.trust.check_proof(peer, "follower", hello.sig, theirs, mine)
        proof = self.trust.prove("server", peer.gate_id, theirs, mine)
        await send(ws, Welcome(sig=proof), timeout)
        return peer, await expect(ws, Follow, timeout)

    async def _serve(
        self, ws: web.WebSocketResponse, peer: GateCertificate, follow: Follow
    ) -> None:
        me, timeout = self.trust.me, self.settings.timeout
        after, annulments = follow.after, bool(follow.annulments)
        assert self._reader is not None
        while not ws.closed:
            if self.trust.revoked(peer.gate_id):
                raise PeerError(f"gate #{peer.gate_id} was revoked")
            seen = self.store.appends.count
            rows = await own_records(
                self._reader, me.event_id, after, MAX_BATCH, annulments=annulments
            )
            if rows:
                await send(ws, self._batch(rows, annulments), timeout)
                after = rows[-1].seq
                continue
            await send(ws, Tick(head=after, at=time.time()), timeout)
            await self.store.appends.wait(seen, self.settings.heartbeat)

    def _batch(self, rows: list[OwnRecord], annulments: bool) -> Admissions | Records:
        skew = self._skew()
        items = [self._item(row, skew) for row in rows]
        if annulments:
            return Records(items=items)
        return Admissions(items=[item for item in items if isinstance(item, Item)])

    def _item(self, row: OwnRecord, skew: float) -> Item | Annul:
        me = self.trust.me
        way: Literal["in", "out"] = "in" if row.direction == "in" else "out"
        if row.ref_seq is not None:
            undo = Annulment(
                me.event_id, me.gate_id, row.seq, row.ref_seq, row.ticket_id, way, row.at, skew
            )
            return Annul(
                seq=row.seq,
                ref=row.ref_seq,
                ticket=row.ticket_id,
                dir=way,
                at=row.at,
                skew=skew,
                sig=undo.sign(me.key),
            )
        made = Admission(me.event_id, me.gate_id, row.seq, row.ticket_id, way, row.at, skew)
        return Item(
            seq=row.seq, ticket=row.ticket_id, dir=way, at=row.at, skew=skew, sig=made.sign(me.key)
        )


async def _until_closed(ws: web.WebSocketResponse, serving: Coroutine[Any, Any, None]) -> None:
    """Serve until the follower closes (its close frame is read here) or serving ends."""
    sender = asyncio.ensure_future(serving)
    reader = asyncio.ensure_future(_drain(ws))
    try:
        done, _ = await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in (sender, reader):
            task.cancel()
        await asyncio.gather(sender, reader, return_exceptions=True)


async def _drain(ws: web.WebSocketResponse) -> None:
    """A follower sends nothing after Follow: anything it sends is ignored, its close ends."""
    async for _ in ws:
        pass
