"""Following one peer URL: connect, prove both sides, apply the peer's signed admissions and
annulments.

A follower runs until stopped: each session connects with a timeout (asking for protocol 2,
``gate.peer.messages``), checks the server's certificate and proof before it sends its own mark,
then applies each batch in one store transaction after every signature verified. A bad admission
signature ends the session, nothing of that batch applied; an annulment that does not verify,
or that names an admission this gate never had from that peer, is ignored and logged, and the
rest of the batch applies (``gate.store.peers`` says when an annulment moves the entry state).
No message within four heartbeats ends the session as lost. Between sessions it waits with full
jitter, capped at ``retry_max``; a URL that turns out to be this gate itself, or a gate another
follower already follows, is retried only rarely.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from gate.peer.messages import (
    FOLLOW_PATH,
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
    parse,
    receive,
    send,
)
from gate.peer.settings import PeerSettings
from gate.peer.trust import SelfError, Trust, new_nonce, nonce_bytes
from gate.store.db import Store
from gate.store.peers import apply_records, mark_of, note_certificate
from shared.peering import Admission, Annulment, GateCertificate, PeerError

log = logging.getLogger(__name__)
RARELY = 30.0


class DuplicateError(PeerError):
    """Another URL already leads to this gate."""


@dataclass
class Link:
    """What `gate status` and the kiosk show of one peer URL."""

    url: str
    state: str = "connecting"  # connecting | online | offline | self | duplicate | refused
    gate_id: int | None = None
    name: str | None = None
    last_heard_at: float | None = None
    lag_ms: float | None = None  # the last record: made there -> applied here
    behind: int = 0  # the peer's latest seq minus what this gate applied
    applied: int = 0
    protocol: int | None = None  # 2: the peer sends its annulments too
    annulled: int = 0  # the peer's annulments that put a ticket back here
    ignored: int = 0  # the peer's annulments ignored (forged, or no such admission here)
    error: str | None = None
    since: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class Follower:
    def __init__(
        self,
        url: str,
        store: Store,
        trust: Trust,
        settings: PeerSettings,
        claim: Callable[[int, Follower], bool],
        skew: Callable[[], float],
    ) -> None:
        self.url = url
        self.store = store
        self.trust = trust
        self.settings = settings
        self.link = Link(url)
        self._claim = claim
        self._skew = skew
        self.peer: GateCertificate | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._mark = 0

    async def run(self, http: aiohttp.ClientSession) -> None:
        failures = 0
        while True:
            try:
                await self._session(http)
                failures = 0
            except SelfError:
                self._state("self", "this gate's own URL")
            except DuplicateError as exc:
                self._state("duplicate", str(exc))
            except PeerError as exc:
                self._state("refused", str(exc))
                log.warning("peer %s refused: %s", self.url, exc)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self._state("offline", f"{type(exc).__name__}: {exc}".rstrip(": "))
            finally:
                self.peer, self._ws = None, None
            failures += 1
            rare = self.link.state in ("self", "duplicate", "refused")
            cap = RARELY if rare else min(self.settings.retry_max, 0.2 * 2**failures)
            await asyncio.sleep(random.uniform(cap / 2 if rare else 0, cap))

    async def close(self) -> None:
        """End the current session (the peer was revoked); the loop then refuses it."""
        if self._ws is not None:
            await self._ws.close()

    def _state(self, state: str, error: str | None = None) -> None:
        self.link.state, self.link.error, self.link.since = state, error, time.time()

    async def _session(self, http: aiohttp.ClientSession) -> None:
        timeout = self.settings.timeout
        async with http.ws_connect(
            self.url + FOLLOW_PATH,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=timeout),
            max_msg_size=MAX_MESSAGE,
            autoping=True,
            protocols=(PROTOCOL_2,),
        ) as ws:
            self._ws = ws
            peer = await self._handshake(ws)
            if not self._claim(peer.gate_id, self):
                raise DuplicateError(f"gate #{peer.gate_id} ({peer.name}) is followed already")
            self.peer = peer
            await note_certificate(self.store, peer)
            self.link.gate_id, self.link.name = peer.gate_id, peer.name
            self._mark = await mark_of(self.store, peer.gate_id)
            await send(ws, self._follow_message(ws), timeout)
            self._state("online")
            await self._follow(ws, peer)

    def _follow_message(self, ws: aiohttp.ClientWebSocketResponse) -> Follow:
        """Ask for annulments only from a server that selected protocol 2 (an older one would
        refuse the field)."""
        if ws.protocol == PROTOCOL_2:
            self.link.protocol = 2
            return Follow(after=self._mark, annulments=True)
        self.link.protocol = 1
        return Follow(after=self._mark)

    async def _handshake(self, ws: aiohttp.ClientWebSocketResponse) -> GateCertificate:
        return await handshake(ws, self.trust, self.settings.timeout)

    async def _follow(self, ws: aiohttp.ClientWebSocketResponse, peer: GateCertificate) -> None:
        lost_after = 4 * self.settings.heartbeat
        while True:
            if self.trust.revoked(peer.gate_id):
                raise PeerError(f"gate #{peer.gate_id} ({peer.name}) was revoked")
            data = await receive(ws, lost_after)
            self.link.last_heard_at = time.time()
            if data.get("t") == "tick":
                tick = parse(Tick, data)
                self.link.behind = max(0, tick.head - self._mark)
                continue
            if data.get("t") == "records":
                await self._apply(parse(Records, data).items, peer)
            else:
                await self._apply(parse(Admissions, data).items, peer)

    async def _apply(self, items: Sequence[Item | Annul], peer: GateCertificate) -> None:
        records = [r for r in (self._verified(item, peer) for item in items) if r is not None]
        if not records:
            return
        here = self._skew()
        done = await apply_records(self.store, peer, records, here)
        self.link.applied += done.admissions
        self.link.annulled += done.annulments
        for why in done.ignored:
            self._ignore(why)
        last = records[-1]
        self._mark = max(self._mark, last.seq)
        self.link.lag_ms = max(0.0, (time.time() - (last.at + last.skew - here)) * 1000)

    def _verified(self, item: Item | Annul, peer: GateCertificate) -> Admission | Annulment | None:
        """The signed record; a bad admission raises (the session ends), a bad annulment is
        ignored (None)."""
        if isinstance(item, Item):
            a = Admission(
                peer.event_id, peer.gate_id, item.seq, item.ticket, item.dir, item.at, item.skew
            )
            a.verify(peer.gate_key, item.sig)
            return a
        u = Annulment(
            peer.event_id,
            peer.gate_id,
            item.seq,
            item.ref,
            item.ticket,
            item.dir,
            item.at,
            item.skew,
        )
        try:
            u.verify(peer.gate_key, item.sig)
        except PeerError as exc:
            self._ignore(f"annulment {item.seq} of admission {item.ref}: {exc}")
            return None
        return u

    def _ignore(self, why: str) -> None:
        self.link.ignored += 1
        log.warning("peer %s: ignored %s", self.url, why)


async def handshake(
    ws: aiohttp.ClientWebSocketResponse, trust: Trust, step: float
) -> GateCertificate:
    """The follower's side of the handshake: the server's certificate and proof checked, this
    gate's sent; the peer's certificate. Nothing is followed until ``Follow`` is sent (the
    drill closes here: the server sees a follower that left, not a refused one). ``step``
    bounds each message."""
    challenge = await expect(ws, Challenge, step)
    peer = trust.check(challenge.cert)
    theirs, mine = nonce_bytes(challenge.nonce), new_nonce()
    proof = trust.prove("follower", peer.gate_id, theirs, mine)
    await send(ws, Hello(cert=trust.me.cert.text, nonce=mine.hex(), sig=proof), step)
    welcome = await expect(ws, Welcome, step)
    trust.check_proof(peer, "server", welcome.sig, theirs, mine)
    return peer
