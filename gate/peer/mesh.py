"""The peer mesh: a ``gate.app.Part`` that runs the peer server and one follower per peer URL.

Peer URLs come from ``GATE_PEERS`` and from syncd: every ``refresh`` seconds, while a sync
worker exists, the mesh reports this gate's own URLs and records the event's other gates
(certificates, URLs, revocations; ``POST /api/v1/gate/peers``). Once a second it reloads what the
store knows (the feed also brings ``gate.enrolled``/``gate.revoked``), starts followers for new
URLs, closes the sessions of revoked gates, and writes ``DATA_DIR/peers.json`` for `gate status`.

The mesh stays off (logged once, the gate scans as before) when GATE_PEER_PORT is unset, or
the gate has no peer key or certificate (enrolled before the mesh existed: enrol again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp

from gate.peer import identity
from gate.peer.follower import Follower
from gate.peer.server import PeerServer
from gate.peer.trust import Me, Trust
from gate.settings import GateSettings
from gate.store.db import Store
from gate.store.peers import own_certificate
from gate.store.syncstate import read_sync_state
from gate.sync.client import SyncError
from gate.sync.worker import SyncWorker, fetch_peers
from shared.tasks import stop

log = logging.getLogger(__name__)
STATUS_FILE = "peers.json"


async def load_me(settings: GateSettings, store: Store) -> Me | str:
    """This gate's identity, or why the mesh stays off."""
    key = identity.read_key(settings.peer_key_path)
    cert = await own_certificate(store)
    state = await read_sync_state(store)
    if key is None or cert is None:
        return "this gate has no peer certificate (enrolled before peers existed): enrol again"
    if state.revoked_at is not None:
        return "this gate's credential was revoked"
    if cert.gate_id != state.gate_id or identity.public_of(key) != identity.public_of(cert):
        return "the peer key does not match this gate's certificate: enrol again"
    return Me(key, cert)


def lan_address() -> str:
    """The address of the interface the default route leaves by (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


class PeerMesh:
    def __init__(self, settings: GateSettings, store: Store, sync: SyncWorker | None) -> None:
        self.settings = settings
        self.peer = settings.peer
        self.store = store
        self.sync = sync
        self.off: str | None = None
        self.trust: Trust | None = None
        self.server: PeerServer | None = None
        self.followers: dict[str, Follower] = {}
        self._owners: dict[int, Follower] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._http: aiohttp.ClientSession | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._skew = 0.0
        self.reported = 0

    async def start(self, app: object = None) -> None:
        me = await load_me(self.settings, self.store)
        if isinstance(me, str):
            self.off = me
            log.warning("peer mesh off: %s", me)
            return
        self.trust = Trust(self.store, me)
        await self.trust.refresh()
        self.server = PeerServer(self.store, self.trust, self.peer, lambda: self._skew)
        await self.server.start()
        connect = aiohttp.ClientTimeout(total=None, connect=self.peer.timeout)
        self._http = aiohttp.ClientSession(timeout=connect)
        self._supervisor = asyncio.create_task(self._supervise(), name="peer-mesh")

    async def stop(self) -> None:
        if self._supervisor is not None:
            await stop(self._supervisor)
        for task in self._tasks.values():
            await stop(task)
        if self.server is not None:
            await self.server.stop()
        if self._http is not None:
            await self._http.close()
        self._write_status()

    def advertise(self) -> list[str]:
        if self.peer.advertise:
            return self.peer.advertise
        port = self.server.port if self.server else self.peer.port
        anywhere = self.peer.host in ("0.0.0.0", "", "::")  # noqa: S104 - comparing, not binding
        host = lan_address() if anywhere else self.peer.host
        return [f"http://{host}:{port}"]

    async def _supervise(self) -> None:
        last_report = float("-inf")
        reporting: asyncio.Task[None] | None = None
        while True:
            assert self.trust is not None and self.server is not None
            due = time.monotonic() - last_report >= self.peer.refresh
            if self.sync is not None and due and (reporting is None or reporting.done()):
                last_report = time.monotonic()
                reporting = asyncio.create_task(self._report(), name="peer-report")
                self._tasks["report"] = reporting
            await self.trust.refresh()
            self._skew = (await read_sync_state(self.store)).skew
            for gate_id in [g for g in self._owners if self.trust.revoked(g)]:
                await self._owners.pop(gate_id).close()
            for gate_id in [g for g in self.server.sessions if self.trust.revoked(g)]:
                await self.server.drop(gate_id)
            self._follow(self._urls())
            self._write_status()
            await asyncio.sleep(1.0)

    async def _report(self) -> None:
        assert self.sync is not None
        try:
            await asyncio.wait_for(
                fetch_peers(self.store, self.sync.client, self.advertise()), self.peer.timeout * 2
            )
            self.reported += 1
        except (SyncError, TimeoutError, OSError, ValueError) as exc:
            log.debug("peer list from syncd not refreshed: %s", exc)

    def _urls(self) -> list[str]:
        assert self.trust is not None
        mine = set(self.advertise())
        found = dict.fromkeys(self.peer.peers)
        for known in self.trust.known.values():
            if not known.revoked:
                found.update(dict.fromkeys(u.rstrip("/") for u in known.urls))
        return [url for url in found if url not in mine]

    def _follow(self, urls: list[str]) -> None:
        assert self._http is not None and self.trust is not None
        for url in urls:
            if url not in self.followers:
                follower = Follower(
                    url, self.store, self.trust, self.peer, self._claim, lambda: self._skew
                )
                self.followers[url] = follower
                self._tasks[url] = asyncio.create_task(follower.run(self._http), name=f"peer {url}")

    def _claim(self, gate_id: int, follower: Follower) -> bool:
        current = self._owners.get(gate_id)
        if current is not None and current is not follower and current.peer is not None:
            return False
        self._owners[gate_id] = follower
        return True

    def status(self) -> dict[str, Any]:
        links = [f.link.as_dict() for f in self.followers.values()]
        return {
            "enabled": self.off is None,
            "off": self.off,
            "gate_id": self.trust.me.gate_id if self.trust else None,
            "urls": self.advertise() if self.server else [],
            "online": sum(1 for link in links if link["state"] == "online"),
            "peers": links,
            "followers": sorted(self.server.sessions) if self.server else [],
            "refused": self.server.refused if self.server else 0,
            "updated_at": time.time(),
        }

    def _write_status(self) -> None:
        path = self.settings.data_dir / STATUS_FILE
        with contextlib.suppress(OSError):
            _write_json(path, self.status())


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def read_status(data_dir: Path) -> dict[str, Any] | None:
    """The running gate's mesh status (None when no gate wrote one)."""
    try:
        return dict(json.loads((data_dir / STATUS_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
