"""Real gates for the peer tests: a store in ``tmp_path`` enrolled in one event, its peer key and
certificate, and the settings of a fast heartbeat."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gate.peer.settings import PeerSettings
from gate.peer.trust import Me, Trust
from gate.store.db import Store
from gate.store.syncstate import save_enrolment
from shared.peering import b64, make_certificate, parse_certificate
from shared.protocol import EnrollResponse, KeyInfo
from shared.ticket import generate_private_key, key_id, public_key_to_b64
from tessera_dev.netproxy import _free_port

EVENT = 7
EVENT_KEY = generate_private_key()
OTHER_EVENT_KEY = generate_private_key()


@dataclass
class Peer:
    store: Store
    me: Me
    trust: Trust


async def make_gate(tmp: Path, gate_id: int, name: str) -> Peer:
    """Gate ``gate_id`` enrolled in ``EVENT``, with a certified peer key of its own."""
    store = await Store.open(tmp / f"{name}.sqlite3")
    key = generate_private_key()
    cert = make_certificate(EVENT_KEY, EVENT, gate_id, key.public_key(), name)
    pub = EVENT_KEY.public_key()
    enrolled = EnrollResponse(
        gate_id=gate_id,
        gate_name=name,
        event_id=EVENT,
        credential="tsg_test",
        keys=[KeyInfo(kid=key_id(pub).hex(), public_key=public_key_to_b64(pub))],
        server_time=0,
        certificate=b64(cert),
    )
    await save_enrolment(store, "http://127.0.0.1:9", tmp / f"{name}.cred", enrolled)
    me = Me(key, parse_certificate(cert))
    return Peer(store, me, Trust(store, me))


def peer_settings(port: int = 0) -> PeerSettings:
    return PeerSettings(port=port or _free_port(), host="127.0.0.1", heartbeat=0.2, timeout=1)


async def until(check: Callable[[], object], what: str, bound: float = 20) -> None:
    """Wait until ``check()`` (awaited when it returns an awaitable) is truthy; AssertionError
    naming ``what`` when it was not within ``bound`` seconds (a generous bound against a hung
    test, not a speed requirement)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        await asyncio.sleep(0.05)
