"""Annulments over the peer mesh, with real stores, real sockets and the real annul code.

Regression (syncd unreachable): gate A admits a ticket, B learns it from A, then A's staff annul
that admission (the turnstile did not turn). Before annulments travelled over the mesh, B went
on refusing the holder as "already inside". Now B puts the ticket back, once, only while A's
admission is still the ticket's latest movement at B, and ignores (and logs) an annulment that
is forged or names an admission B never had from A. Old and new gates still follow each other.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict

from gate.commands import format_peers
from gate.door.annul import annul
from gate.peer.follower import Follower, handshake
from gate.peer.messages import (
    FOLLOW_PATH,
    PROTOCOL_2,
    Admissions,
    Annul,
    Challenge,
    Hello,
    Item,
    Records,
    Tick,
    Welcome,
)
from gate.peer.server import PeerServer
from gate.peer.trust import new_nonce
from gate.store.db import Store
from gate.store.peers import Applied, apply_feed_annulment, apply_records, mark_of
from gate.store.records import JournalEntry
from gate.store.syncstate import apply_changes
from shared.peering import Admission, Annulment, PeerError
from shared.protocol import Change, ChangesPage, CheckinChange
from shared.ticket import generate_private_key
from tessera_dev.netproxy import _free_port
from tests.gate.peer.harness import Peer, make_gate, peer_settings, until

T0 = 1_700_000_000.0
Way = Literal["in", "out"]
State = tuple[int, int, str | None, float | None]


@pytest.fixture
async def gates(tmp_path: Path) -> AsyncIterator[tuple[Peer, Peer, Peer]]:
    """Gates A (#1), B (#2) and C (#3) of one event; B is the one that follows."""
    made = [await make_gate(tmp_path, i, name) for i, name in ((1, "A"), (2, "B"), (3, "C"))]
    try:
        yield made[0], made[1], made[2]
    finally:
        for g in made:
            await g.store.close()


def _admission(maker: Peer, seq: int, ticket: int, at: float, way: Way = "in") -> Admission:
    return Admission(maker.me.event_id, maker.me.gate_id, seq, ticket, way, at, 0.0)


def _annulment(maker: Peer, seq: int, ref: int, ticket: int, way: Way = "in") -> Annulment:
    return Annulment(maker.me.event_id, maker.me.gate_id, seq, ref, ticket, way, T0 + 30, 0.0)


async def _apply(b: Peer, maker: Peer, *records: Admission | Annulment) -> Applied:
    return await apply_records(b.store, maker.me.cert, records, 0.0)


async def _state(store: Store, ticket: int) -> State | None:
    """(inside, entries, last_in_gate, last_in_at) of a ticket, or None."""
    rows = list(
        await store.conn.execute_fetchall(
            "SELECT inside, entries, last_in_gate, last_in_at FROM entry_state WHERE ticket_id = ?",
            (ticket,),
        )
    )
    return (rows[0][0], rows[0][1], rows[0][2], rows[0][3]) if rows else None


async def _feed(b: Peer, *checkins: tuple[str, CheckinChange]) -> None:
    """Apply what syncd's feed would bring (gate.store.syncstate, the real code)."""
    changes = [Change(seq=i, kind=kind, checkin=c) for i, (kind, c) in enumerate(checkins, 1)]
    await apply_changes(b.store, ChangesPage(cursor=str(len(changes)), changes=changes), now=T0)


def _checkin(seq: int, at: float, ref: int | None = None) -> CheckinChange:
    return CheckinChange(
        ticket_id=42, gate_id=1, gate_name="A", direction="in", at=at, seq=seq, ref_seq=ref
    )


# --- The store: when an annulment moves the entry state -------------------------------------


async def test_an_annulled_entry_puts_the_ticket_outside_again(
    gates: tuple[Peer, Peer, Peer],
) -> None:
    a, b, _ = gates
    done = await _apply(b, a, _admission(a, 1, 42, T0), _annulment(a, 2, 1, 42))
    assert (done.admissions, done.annulments, done.ignored) == (1, 1, [])
    assert await _state(b.store, 42) == (0, 0, None, None)
    assert await mark_of(b.store, 1) == 2


async def test_an_annulled_exit_puts_the_ticket_inside_again(
    gates: tuple[Peer, Peer, Peer],
) -> None:
    a, b, _ = gates
    await _apply(b, a, _admission(a, 1, 42, T0), _admission(a, 2, 42, T0 + 5, "out"))
    done = await _apply(b, a, _annulment(a, 3, 2, 42, "out"))
    assert done.annulments == 1
    assert await _state(b.store, 42) == (1, 1, "A", T0)


@pytest.mark.parametrize("first", ["peer", "feed"])
async def test_applying_an_annulment_twice_changes_nothing(
    gates: tuple[Peer, Peer, Peer], first: str
) -> None:
    """Annulled, then admitted again at A (all through the peer, or all through syncd's feed
    before the peer link caught up): the same annulment once more leaves the new entry."""
    a, b, _ = gates
    if first == "peer":
        await _apply(b, a, _admission(a, 1, 42, T0), _annulment(a, 2, 1, 42))
        await _apply(b, a, _admission(a, 3, 42, T0 + 60))
    else:
        await _feed(
            b,
            ("checkin.in", _checkin(1, T0)),
            ("checkin.annulled", _checkin(2, T0 + 30, ref=1)),
            ("checkin.in", _checkin(3, T0 + 60)),
        )
    assert await _state(b.store, 42) == (1, 1, "A", T0 + 60)
    again = await _apply(b, a, _annulment(a, 2, 1, 42))
    assert (again.annulments, again.ignored) == (0, [])
    assert await _state(b.store, 42) == (1, 1, "A", T0 + 60)


async def test_an_annulment_the_feed_applied_first_changes_nothing(
    gates: tuple[Peer, Peer, Peer],
) -> None:
    """Two entries at A (re-entry allowed) from the peer; syncd's feed undoes the second; A's
    own annulment of it then arrives over the mesh and takes nothing more away."""
    a, b, _ = gates
    await _apply(b, a, _admission(a, 1, 42, T0), _admission(a, 2, 42, T0 + 10))
    await _feed(b, ("checkin.annulled", _checkin(3, T0 + 30, ref=2)))
    assert await _state(b.store, 42) == (0, 1, "A", T0 + 10)
    done = await _apply(b, a, _annulment(a, 3, 2, 42))
    assert (done.annulments, done.ignored) == (0, [])
    assert await _state(b.store, 42) == (0, 1, "A", T0 + 10)


async def test_an_annulment_of_an_admission_the_feed_brought(
    gates: tuple[Peer, Peer, Peer],
) -> None:
    """The admission reached B through syncd, which then went out of reach: A's annulment
    comes over the mesh and undoes it by the feed's own rule."""
    a, b, _ = gates
    await _feed(b, ("checkin.in", _checkin(1, T0)))
    assert await _state(b.store, 42) == (1, 1, "A", T0)
    done = await _apply(b, a, _annulment(a, 2, 1, 42))
    assert (done.annulments, done.ignored) == (1, [])
    assert await _state(b.store, 42) == (0, 0, None, None)


async def _feed_annulment(b: Peer, seq: int, ref: int) -> int:
    async with b.store.transaction() as conn:
        return await apply_feed_annulment(conn, 7, _checkin(seq, T0 + 30, ref=ref))


@pytest.mark.parametrize("admission", ["peer", "feed"])
async def test_the_feeds_late_annulment_leaves_a_later_entry_the_peer_brought(
    gates: tuple[Peer, Peer, Peer], admission: str
) -> None:
    """syncd was out of reach: A's admission, its annulment and the holder's entry again at A
    came over the mesh (the admission perhaps through the feed before the outage). When syncd
    is back, its feed brings the old annulment: the entry again at A stands."""
    a, b, _ = gates
    if admission == "peer":
        await _apply(b, a, _admission(a, 1, 42, T0))
    else:
        await _feed(b, ("checkin.in", _checkin(1, T0)))
    await _apply(b, a, _annulment(a, 2, 1, 42), _admission(a, 3, 42, T0 + 60))
    assert await _state(b.store, 42) == (1, 1, "A", T0 + 60)
    assert await _feed_annulment(b, 2, 1) == 0
    assert await _state(b.store, 42) == (1, 1, "A", T0 + 60)


async def test_a_feed_annulment_of_a_peer_admission_is_not_applied_again_by_the_peer(
    gates: tuple[Peer, Peer, Peer],
) -> None:
    a, b, _ = gates
    await _apply(b, a, _admission(a, 1, 42, T0), _admission(a, 2, 42, T0 + 10))
    assert await _feed_annulment(b, 3, 2) == 1
    assert await _state(b.store, 42) == (0, 1, "A", T0 + 10)
    assert await _feed_annulment(b, 3, 2) == 0
    done = await _apply(b, a, _annulment(a, 3, 2, 42))
    assert (done.annulments, done.ignored) == (0, [])
    assert await _state(b.store, 42) == (0, 1, "A", T0 + 10)


@pytest.mark.parametrize("later", ["exit at another gate", "entry again at the same gate"])
async def test_a_later_movement_stands(gates: tuple[Peer, Peer, Peer], later: str) -> None:
    a, b, c = gates
    await _apply(b, a, _admission(a, 1, 42, T0))
    if later == "exit at another gate":
        await _apply(b, c, _admission(c, 1, 42, T0 + 10, "out"))
    else:
        await _apply(b, a, _admission(a, 2, 42, T0 + 10))
    before = await _state(b.store, 42)
    done = await _apply(b, a, _annulment(a, 3, 1, 42))
    assert (done.annulments, done.ignored) == (0, [])
    assert await _state(b.store, 42) == before


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("never received", "never received here"),
        ("another peer's admission", "never received here"),
        ("another ticket", "but admission 1 was ticket 7"),
    ],
)
async def test_an_annulment_naming_nothing_of_that_peer_is_ignored(
    gates: tuple[Peer, Peer, Peer], case: str, why: str
) -> None:
    a, b, c = gates
    await _apply(b, c, _admission(c, 1, 42, T0))  # ticket 42 is inside, through C
    if case == "another ticket":
        await _apply(b, a, _admission(a, 1, 7, T0 + 5))
    ref, seq = (4, 5) if case == "never received" else (1, 2)
    before = (await _state(b.store, 42), await _state(b.store, 7))
    done = await _apply(b, a, _annulment(a, seq, ref, 42))
    assert done.annulments == 0 and len(done.ignored) == 1 and why in done.ignored[0]
    assert (await _state(b.store, 42), await _state(b.store, 7)) == before
    assert await _state(b.store, 42) == (1, 1, "C", T0)


def test_an_annulment_signature_never_passes_for_an_admission() -> None:
    key = generate_private_key()
    admission = Admission(7, 1, 2, 42, "in", T0, 0.0)
    annulment = Annulment(7, 1, 2, 1, 42, "in", T0, 0.0)
    with pytest.raises(PeerError, match="does not verify"):
        annulment.verify(key.public_key(), admission.sign(key))
    with pytest.raises(PeerError, match="does not verify"):
        admission.verify(key.public_key(), annulment.sign(key))


# --- The wire: a real server and follower ---------------------------------------------------


async def _admit_at(a: Peer, ticket: int, at: float) -> int:
    entry = JournalEntry(
        direction="in",
        outcome="admit",
        reason=None,
        scanned_at=at,
        via="scanner",
        gate="A",
        event_id=a.me.event_id,
        ticket_id=ticket,
    )
    return await a.store.record_scan(entry)


@asynccontextmanager
async def _serving(a: Peer) -> AsyncIterator[str]:
    server = PeerServer(a.store, a.trust, peer_settings(), lambda: 0.0)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()


@asynccontextmanager
async def _following(b: Peer, url: str) -> AsyncIterator[Follower]:
    follower = Follower(url, b.store, b.trust, peer_settings(), lambda g, f: True, lambda: 0.0)
    async with aiohttp.ClientSession() as http:
        task = asyncio.create_task(follower.run(http))
        try:
            yield follower
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_an_annulment_at_a_reaches_b_over_the_mesh(gates: tuple[Peer, Peer, Peer]) -> None:
    """The regression: no syncd, A admits and annuls; B lets the holder in again."""
    a, b, _ = gates
    seq = await _admit_at(a, 42, T0)
    async with _serving(a) as url, _following(b, url) as follower:
        await until(lambda: _state(b.store, 42), "B heard of A's admission")
        assert await _state(b.store, 42) == (1, 1, "A", T0)
        done = await annul(a.store, None, gate="A", now=T0 + 5, window=60)
        assert done.ref_seq == seq

        async def outside() -> bool:
            return await _state(b.store, 42) == (0, 0, None, None)

        await until(outside, "B applied A's annulment")
        assert (follower.link.protocol, follower.link.annulled, follower.link.ignored) == (2, 1, 0)
        assert await mark_of(b.store, 1) == done.seq
    # A second session starts after the mark: nothing is applied again.
    async with _serving(a) as url, _following(b, url) as follower:
        await until(lambda: follower.link.state == "online", "B follows A again")
        await until(lambda: follower.link.last_heard_at is not None, "a tick from A")
        assert (follower.link.applied, follower.link.annulled) == (0, 0)
        assert await _state(b.store, 42) == (0, 0, None, None)


@pytest.mark.parametrize(
    ("protocols", "follow", "kind"),
    [
        ((), '{"t":"follow","after":0}', "admissions"),  # a follower of protocol 1
        ((PROTOCOL_2,), '{"t":"follow","after":0}', "admissions"),  # did not ask
        ((PROTOCOL_2,), '{"t":"follow","after":0,"annulments":true}', "records"),
    ],
)
async def test_annulments_go_only_to_a_follower_that_asks(
    gates: tuple[Peer, Peer, Peer], protocols: tuple[str, ...], follow: str, kind: str
) -> None:
    a, b, _ = gates
    await _admit_at(a, 42, T0)
    undone = await annul(a.store, None, gate="A", now=T0 + 5, window=60)
    async with (
        _serving(a) as url,
        aiohttp.ClientSession() as http,
        http.ws_connect(url + FOLLOW_PATH, protocols=protocols) as ws,
    ):
        assert ws.protocol == (PROTOCOL_2 if protocols else None)
        await handshake(ws, b.trust, 2)
        await ws.send_str(follow)
        batch, tick = json.loads((await ws.receive(5)).data), json.loads((await ws.receive(5)).data)
    assert batch["t"] == kind
    if kind == "admissions":  # exactly what a protocol-1 follower parses
        assert [i.seq for i in Admissions.model_validate(batch).items] == [undone.ref_seq]
        assert Tick.model_validate(tick).head == undone.ref_seq
        return
    items = Records.model_validate(batch).items
    assert [(type(i), i.seq) for i in items] == [(Item, undone.ref_seq), (Annul, undone.seq)]
    sent = items[1]
    assert isinstance(sent, Annul) and (sent.ref, sent.ticket, sent.dir) == (
        undone.ref_seq,
        42,
        "in",
    )
    record = Annulment(7, 1, sent.seq, sent.ref, sent.ticket, sent.dir, sent.at, sent.skew)
    record.verify(a.me.cert.gate_key, sent.sig)
    assert Tick.model_validate(tick).head == undone.seq


class _OldFollow(BaseModel):
    """Follow as a protocol-1 server parses it: any other field is refused."""

    model_config = ConfigDict(extra="forbid", strict=True)
    t: Literal["follow"]
    after: int


@asynccontextmanager
async def _scripted(
    a: Peer, protocols: tuple[str, ...], batches: Callable[[str], Sequence[str]]
) -> AsyncIterator[str]:
    """A server on A's certificate and key that proves itself, reads the Follow, sends
    ``batches(follow text)`` and then a tick every 0.1 s (an old server, or a forging one)."""

    async def follow(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=protocols)
        await ws.prepare(request)
        mine = new_nonce()
        await ws.send_str(Challenge(cert=a.me.cert.text, nonce=mine.hex()).model_dump_json())
        hello = Hello.model_validate_json((await ws.receive(5)).data)
        proof = a.trust.prove("server", 2, bytes.fromhex(hello.nonce), mine)
        await ws.send_str(Welcome(sig=proof).model_dump_json())
        for text in batches((await ws.receive(5)).data):
            await ws.send_str(text)
        while not ws.closed:
            await ws.send_str(Tick(head=0, at=T0).model_dump_json())
            await asyncio.sleep(0.1)
        return ws

    port = _free_port()
    app = web.Application()
    app.router.add_get(FOLLOW_PATH, follow)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _item(maker: Peer, seq: int, ticket: int) -> Item:
    signed = _admission(maker, seq, ticket, T0).sign(maker.me.key)
    return Item(seq=seq, ticket=ticket, dir="in", at=T0, skew=0.0, sig=signed)


async def test_a_new_follower_follows_an_old_server(gates: tuple[Peer, Peer, Peer]) -> None:
    """A protocol-1 server selects no subprotocol and refuses unknown Follow fields: the new
    follower sends the old Follow and applies the admissions it gets."""
    a, b, _ = gates
    follows: list[_OldFollow] = []

    def batches(text: str) -> list[str]:
        follows.append(_OldFollow.model_validate_json(text))  # raises: nothing is sent
        return [Admissions(items=[_item(a, 1, 42)]).model_dump_json()]

    async with _scripted(a, (), batches) as url, _following(b, url) as follower:
        await until(lambda: _state(b.store, 42), "B applied the old server's admission")
        assert follows == [_OldFollow(t="follow", after=0)]
        assert (follower.link.protocol, follower.link.state) == (1, "online")


async def test_forged_annulments_are_ignored_and_the_link_stays(
    gates: tuple[Peer, Peer, Peer], caplog: pytest.LogCaptureFixture
) -> None:
    a, b, c = gates
    intruder = generate_private_key()

    def annul_item(seq: int, ref: int, sig: str | None) -> Annul:
        fields = {"seq": seq, "ref": ref, "ticket": 42, "dir": "in", "at": T0 + 1, "skew": 0.0}
        return Annul.model_validate(fields if sig is None else {**fields, "sig": sig})

    def signed(key: Ed25519PrivateKey, seq: int, ref: int) -> str:
        return Annulment(7, 1, seq, ref, 42, "in", T0 + 1, 0.0).sign(key)

    first: list[Item | Annul] = [
        _item(a, 1, 42),
        annul_item(2, 1, signed(intruder, 2, 1)),  # an intruder's key
        annul_item(3, 1, signed(c.me.key, 3, 1)),  # another gate of the event signed it
        annul_item(4, 1, None),  # unsigned
        annul_item(6, 5, signed(a.me.key, 6, 5)),  # A's, of an admission B never had
    ]
    second: list[Item | Annul] = [_item(a, 7, 43)]

    def batches(text: str) -> list[str]:
        return [Records(items=first).model_dump_json(), Records(items=second).model_dump_json()]

    with caplog.at_level(logging.WARNING, logger="gate.peer.follower"):
        async with _scripted(a, (PROTOCOL_2,), batches) as url, _following(b, url) as follower:
            await until(lambda: _state(b.store, 43), "B applied the batch after the forgeries")
            assert follower.link.state == "online" and follower.link.protocol == 2
            assert (follower.link.applied, follower.link.annulled, follower.link.ignored) == (
                2,
                0,
                4,
            )
    assert await _state(b.store, 42) == (1, 1, "A", T0)
    assert await mark_of(b.store, 1) == 7
    ignored = [r.getMessage() for r in caplog.records if "ignored annulment" in r.getMessage()]
    assert len(ignored) == 4, ignored
    assert sum("does not verify" in m for m in ignored) == 2
    assert sum("not 64 bytes" in m for m in ignored) == 1
    assert sum("never received here" in m for m in ignored) == 1


@pytest.mark.parametrize("admission", ["peer", "feed"])
async def test_the_feeds_late_annulment_through_apply_changes_leaves_a_later_entry(
    gates: tuple[Peer, Peer, Peer], admission: str
) -> None:
    """The same scenario through the real feed path (``apply_changes``): before the feed used
    the mesh's rules, its late ``checkin.annulled`` (gate name only) undid the entry again
    and gate B would have let the ticket in a second time."""
    a, b, _ = gates
    if admission == "peer":
        await _apply(b, a, _admission(a, 1, 42, T0))
    else:
        await _feed(b, ("checkin.in", _checkin(1, T0)))
    await _apply(b, a, _annulment(a, 2, 1, 42), _admission(a, 3, 42, T0 + 60))
    await _feed(b, ("checkin.annulled", _checkin(2, T0 + 30, ref=1)))
    assert await _state(b.store, 42) == (1, 1, "A", T0 + 60)


def test_gate_status_shows_each_links_annulments() -> None:
    """`gate status`: what each link applied and ignored, and a peer still on protocol 1."""
    link = {"gate_id": 2, "url": "https://a:8443", "name": "A", "state": "online", "error": None}
    link |= {"last_heard_age_s": 1.0, "lag_ms": 3.0, "behind": 0}
    mesh = {"enabled": True, "online": 2, "urls": ["https://b:8443"], "followers": []}
    mesh["peers"] = [
        {**link, "protocol": 2, "annulled": 2, "ignored": 1},
        {**link, "gate_id": 3, "name": "C", "protocol": 1, "annulled": 0, "ignored": 0},
    ]
    lines = format_peers(mesh)
    assert lines[1].endswith("lag 3 ms, 2 annulled, 1 ignored")
    assert lines[2].endswith("lag 3 ms, protocol 1")
