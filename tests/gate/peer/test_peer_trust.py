"""The peer mesh under attack, in process with real sockets and real stores.

Nothing a device sends is applied or answered with admissions unless it proved it holds a
certified, unrevoked key of this event: an unenrolled device, a gate of another event, a stolen
certificate without its key, a revoked gate and a server that forges admissions all fail, and
the store they target is unchanged.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.peer.follower import Follower
from gate.peer.messages import FOLLOW_PATH, Admissions, Challenge, Follow, Hello, Item, Welcome
from gate.peer.server import PeerServer
from gate.peer.trust import new_nonce
from gate.store.peers import mark_of, put_gate
from gate.store.records import JournalEntry
from shared.peering import b64, make_certificate, parse_certificate, proof_message
from shared.protocol import GateChange
from shared.ticket import generate_private_key
from tessera_dev.netproxy import _free_port
from tests.gate.peer.harness import (
    EVENT,
    EVENT_KEY,
    OTHER_EVENT_KEY,
    Peer,
    make_gate,
    peer_settings,
)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Peer, PeerServer, str]]:
    """Gate A (#1) serving one admission of ticket 42."""
    a = await make_gate(tmp_path, 1, "A")
    entry = JournalEntry(
        direction="in",
        outcome="admit",
        reason=None,
        scanned_at=1_700_000_000.0,
        via="scanner",
        gate="A",
        event_id=EVENT,
        ticket_id=42,
    )
    await a.store.record_scan(entry)
    server = PeerServer(a.store, a.trust, peer_settings(), lambda: 0.0)
    await server.start()
    try:
        yield a, server, f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()
        await a.store.close()


async def _attempt(url: str, cert: bytes, key: Ed25519PrivateKey, gate_id: int) -> list[str]:
    """A raw handshake as ``gate_id`` presenting ``cert`` and signing with ``key``; returns the
    types of every message the server sent after the hello."""
    async with aiohttp.ClientSession() as http, http.ws_connect(url + FOLLOW_PATH) as ws:
        challenge = Challenge.model_validate_json((await ws.receive(2)).data)
        server_id = parse_certificate(challenge.cert).gate_id
        mine = new_nonce()
        proof = proof_message(
            "follower", EVENT, gate_id, server_id, bytes.fromhex(challenge.nonce), mine
        )
        hello = Hello(cert=b64(cert), nonce=mine.hex(), sig=b64(key.sign(proof)))
        await ws.send_str(hello.model_dump_json())
        await ws.send_str(Follow(after=0).model_dump_json())
        got = []
        while (msg := await ws.receive(2)).type == aiohttp.WSMsgType.TEXT:
            got.append(json.loads(msg.data)["t"])
            if "admissions" in got:
                break
        return got


async def test_an_enrolled_gate_of_the_event_is_served(
    served: tuple[Peer, PeerServer, str],
) -> None:
    _, server, url = served
    key = generate_private_key()
    cert = make_certificate(EVENT_KEY, EVENT, 2, key.public_key(), "B")
    assert await _attempt(url, cert, key, 2) == ["welcome", "admissions"]
    assert server.refused == 0


@pytest.mark.parametrize(
    "who", ["unenrolled device", "gate of another event", "stolen certificate", "revoked gate"]
)
async def test_nothing_is_served_without_proof(
    served: tuple[Peer, PeerServer, str], who: str
) -> None:
    a, server, url = served
    key = generate_private_key()
    signer, event = EVENT_KEY, EVENT
    if who == "unenrolled device":
        signer = key  # a certificate it made itself
    elif who == "gate of another event":
        signer, event = OTHER_EVENT_KEY, EVENT + 1
    cert = make_certificate(signer, event, 3, key.public_key(), "Intruder")
    if who == "stolen certificate":
        key = generate_private_key()  # the certificate of gate #3, without its private key
    if who == "revoked gate":
        async with a.store.transaction() as conn:
            await put_gate(conn, EVENT, GateChange(gate_id=3, gate_name="C", revoked=True), {})
        await a.trust.refresh()
    assert await _attempt(url, cert, key, 3) == []
    assert server.refused == 1 and server.sessions == {}


async def _hostile_server(
    port: int, challenge: Challenge, respond: Callable[[Hello], list[str]]
) -> web.AppRunner:
    async def follow(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(challenge.model_dump_json())
        hello = Hello.model_validate_json((await ws.receive(2)).data)
        for text in respond(hello):
            await ws.send_str(text)
        await asyncio.sleep(2)
        return ws

    app = web.Application()
    app.router.add_get(FOLLOW_PATH, follow)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@pytest.mark.parametrize("forgery", ["stolen certificate", "unsigned admission"])
async def test_a_follower_applies_nothing_a_forger_sends(tmp_path: Path, forgery: str) -> None:
    """A device answering on a peer's URL with gate #1's certificate (not its key), or gate #1
    itself sending an admission whose signature does not verify: nothing is applied."""
    b = await make_gate(tmp_path, 2, "B")
    real = generate_private_key()
    key = real if forgery == "unsigned admission" else generate_private_key()
    cert = make_certificate(EVENT_KEY, EVENT, 1, real.public_key(), "A")
    nonce = new_nonce()
    challenge = Challenge(cert=b64(cert), nonce=nonce.hex())
    forged = Item(seq=1, ticket=42, dir="in", at=1_700_000_000.0, skew=0.0, sig=b64(bytes(64)))

    def respond(hello: Hello) -> list[str]:
        proof = proof_message("server", EVENT, 1, 2, bytes.fromhex(hello.nonce), nonce)
        welcome = Welcome(sig=b64(key.sign(proof)))
        return [welcome.model_dump_json(), Admissions(items=[forged]).model_dump_json()]

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    follower = Follower(url, b.store, b.trust, peer_settings(), lambda g, f: True, lambda: 0.0)
    runner = await _hostile_server(port, challenge, respond)
    try:
        async with aiohttp.ClientSession() as http:
            task = asyncio.create_task(follower.run(http))
            for _ in range(50):
                if follower.link.state == "refused":
                    break
                await asyncio.sleep(0.1)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert follower.link.state == "refused"
        assert "does not verify" in (follower.link.error or "")
        assert await mark_of(b.store, 1) == 0
        rows = await b.store.conn.execute_fetchall("SELECT count(*) FROM entry_state")
        assert next(iter(rows))[0] == 0
    finally:
        await runner.cleanup()
        await b.store.close()


async def test_a_gate_revoked_while_following_is_cut_off(
    served: tuple[Peer, PeerServer, str], tmp_path: Path
) -> None:
    """B follows A and has A's admission; syncd then revokes B (A learns it from the feed): A
    closes B's session and refuses it from then on."""
    a, server, url = served
    b = await make_gate(tmp_path, 2, "B")
    follower = Follower(url, b.store, b.trust, peer_settings(), lambda g, f: True, lambda: 0.0)
    async with aiohttp.ClientSession() as http:
        task = asyncio.create_task(follower.run(http))
        try:
            for _ in range(50):
                if await mark_of(b.store, 1) == 1:
                    break
                await asyncio.sleep(0.1)
            assert follower.link.state == "online" and server.sessions.keys() == {2}
            async with a.store.transaction() as conn:
                await put_gate(conn, EVENT, GateChange(gate_id=2, gate_name="B", revoked=True), {})
            await a.trust.refresh()
            for _ in range(50):
                if not server.sessions and server.refused:
                    break
                await asyncio.sleep(0.1)
            assert server.sessions == {} and server.refused >= 1  # cut, then refused again
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await b.store.close()
