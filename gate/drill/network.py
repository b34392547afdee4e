"""The drill's checks over the network: syncd (reachable, clock skew), the peers, the report.

syncd is asked once, ``GET /healthz`` within GATE_SYNC_PROBE_TIMEOUT: its answer time says it
is reachable, its ``Date`` header (one-second resolution, so the skew is known to within half a
second plus half the round trip) gives the clock. The credential is proved by the report itself,
``POST /api/v1/gate/drill``: a refusal turns the syncd item red. Peers are each asked for the
peer handshake (``gate.peer.follower.handshake``): a peer passes only by proving it is an
enrolled, unrevoked gate of this event; the drill then closes, before following anything.
Only host:port of a URL is ever shown (a URL may carry a user and password).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import aiohttp
import httpx

from gate.drill.board import Board, Item, Status, host_of
from gate.drill.local import age_text
from gate.peer.follower import handshake
from gate.peer.mesh import lan_address, load_me
from gate.peer.messages import FOLLOW_PATH, MAX_MESSAGE
from gate.peer.trust import SelfError, Trust
from gate.settings import GateSettings
from gate.store.db import Store
from gate.store.syncstate import SyncState
from gate.sync.client import AuthRejectedError, SyncClient, SyncError
from gate.sync.credential import read_credential
from shared.peering import PeerError


@dataclass(frozen=True, slots=True)
class Syncd:
    """Where this gate syncs and with what; ``problem`` says why it cannot (None: it can)."""

    url: str | None
    credential: str | None
    problem: str | None

    @classmethod
    def of(cls, settings: GateSettings, state: SyncState) -> Syncd:
        url = settings.server_url or state.server_url
        if not url:
            return cls(None, None, None)
        try:
            credential = read_credential(settings.credential_path)
        except ValueError as exc:
            return cls(url, None, str(exc))
        if state.revoked_at is not None:
            return cls(url, None, "syncd revoked this gate's credential: enrol it again")
        if credential is None:
            return cls(url, None, "no credential: enrol the gate (`gate enroll`)")
        return cls(url, credential, None)


@dataclass(frozen=True, slots=True)
class Probe:
    ms: float = 0.0
    status: int | None = None
    skew: float | None = None  # syncd's clock minus this gate's, seconds
    error: float = 0.0  # how far off ``skew`` may be
    failure: str | None = None

    @property
    def answered(self) -> bool:
        return self.status == 200


async def probe(url: str, within: float) -> Probe:
    """``GET /healthz`` once; the skew from the ``Date`` header against the request's midpoint."""
    async with httpx.AsyncClient(timeout=within, follow_redirects=False) as http:
        sent = time.time()
        try:
            response = await http.get(url.rstrip("/") + "/healthz")
        except httpx.TimeoutException:
            return Probe(failure=f"no answer in {within:g} s")
        except (httpx.HTTPError, OSError) as exc:
            return Probe(failure=f"unreachable ({type(exc).__name__})")
    back = time.time()
    rtt = back - sent
    skew = error = None
    try:
        server = parsedate_to_datetime(response.headers["Date"]).timestamp() + 0.5
        skew, error = server - (sent + back) / 2, 0.5 + rtt / 2
    except (KeyError, TypeError, ValueError):
        pass
    return Probe(rtt * 1000, response.status_code, skew, error or 0.0)


async def check_syncd(
    settings: GateSettings, state: SyncState, link: Syncd, now: float
) -> tuple[Item, Item, Probe | None]:
    """The syncd and clock items, and the probe (None: not asked)."""
    if link.url is None:
        why = "not enrolled: the list comes by `gate import-list`"
        return Item("syncd", "skip", "not enrolled", why), Item("clock", "skip", "", why), None
    within = min(settings.sync_probe_timeout, settings.drill.timeout * 0.9)
    found = await probe(link.url, within)
    where = host_of(link.url)
    if found.failure:
        figure, why = f"{where} {found.failure}", "the gate scans offline meanwhile"
    elif not found.answered:
        figure, why = f"{where} answered {found.status}", "syncd is not serving"
    else:
        figure, why = f"{where} answered in {found.ms:.0f} ms", ""
    status: Status = "ok" if found.answered and link.problem is None else "fail"
    syncd = Item("syncd", status, figure, link.problem or why)
    return syncd, _clock(settings, state, found, now), found


def _clock(settings: GateSettings, state: SyncState, found: Probe, now: float) -> Item:
    if found.skew is None:
        if state.last_push_at:
            ago = age_text(max(0.0, now - state.last_push_at))
            figure = f"{_skew_text(state.skew)} at the last push, {ago} ago"
        else:
            figure = "unknown"
        return Item("clock", "warn", figure, "syncd's clock could not be read now")
    off = max(0.0, abs(found.skew) - found.error)
    figure = f"{_skew_text(found.skew)} (±{found.error:.1f} s)"
    if off > settings.clock_tolerance:
        why = f"beyond GATE_CLOCK_TOLERANCE ({settings.clock_tolerance:g} s): set the time (NTP)"
        return Item("clock", "fail", figure, why)
    if off > settings.drill.clock_warn:
        why = "rotating codes change every few seconds: set the time (NTP)"
        return Item("clock", "warn", figure, why)
    return Item("clock", "ok", figure, "")


def _skew_text(skew: float) -> str:
    way = "behind" if skew > 0 else "ahead of"
    return f"gate clock {abs(skew):.1f} s {way} syncd"


async def report(settings: GateSettings, link: Syncd, board: Board, found: Probe | None) -> None:
    """Send the board to syncd when the gate is enrolled and syncd answered the probe; say what
    became of it in ``board.report``. A refused credential turns the syncd item red."""
    if link.url is None:
        return
    if link.credential is None or found is None or not found.answered:
        board.report = "Not reported to syncd: it cannot be reached with a credential."
        return
    within = min(settings.sync_timeout, settings.drill.timeout)
    try:
        async with SyncClient(link.url, link.credential, timeout=within) as client:
            answer = await client.drill(board.to_report(), within)
    except AuthRejectedError:
        why = "syncd refused this gate's credential: enrol it again"
        board.replace(Item("syncd", "fail", f"{host_of(link.url)} refused the credential", why))
        board.report = "Not reported to syncd: the credential was refused."
        return
    except SyncError as exc:
        board.report = f"Not reported to syncd: {str(exc)[:160]}"
        return
    board.reported = True
    board.report = f"Reported to syncd ({host_of(link.url)}) as {answer.result}."


async def check_peers(settings: GateSettings, store: Store) -> Item:
    """Every peer this gate would follow proves, by the peer handshake, that it is an enrolled
    gate of this event. Skipped without a mesh (GATE_PEER_PORT unset)."""
    peer = settings.peer
    if peer.port is None:
        return Item("peers", "skip", "no peer mesh", "GATE_PEER_PORT is unset")
    me = await load_me(settings, store)
    if isinstance(me, str):
        return Item("peers", "fail", "mesh off", me)
    trust = Trust(store, me)
    await trust.refresh()
    urls = _urls(settings, trust)
    if not urls:
        why = "syncd lists the event's gates as they enrol; or set GATE_PEERS"
        return Item("peers", "warn", "no peer known yet", why)
    within = min(peer.timeout * 2, settings.drill.timeout * 0.9)
    connect = aiohttp.ClientTimeout(total=None, connect=peer.timeout)
    async with aiohttp.ClientSession(timeout=connect) as http:
        shakes = await asyncio.gather(*(_shake(http, u, trust, peer.timeout, within) for u in urls))
    found = [s for s in shakes if s is not None]
    good = [text for ok, text in found if ok]
    figure = f"{len(good)} of {len(found)} proved: " + ", ".join(text for _, text in found)
    if found and len(good) == len(found):
        return Item("peers", "ok", figure, "enrolled gates of this event")
    status: Status = "warn" if good else "fail"
    return Item("peers", status, figure, "admissions there reach this gate only through syncd")


def _urls(settings: GateSettings, trust: Trust) -> list[str]:
    """The URLs the mesh follows (gate.peer.mesh): GATE_PEERS and those syncd reported, without
    this gate's own."""
    peer = settings.peer
    anywhere = peer.host in ("0.0.0.0", "", "::")  # noqa: S104 - comparing, not binding
    mine = set(peer.advertise or [f"http://{lan_address() if anywhere else peer.host}:{peer.port}"])
    found = dict.fromkeys(peer.peers)
    for known in trust.known.values():
        if not known.revoked:
            found.update(dict.fromkeys(u.rstrip("/") for u in known.urls))
    return [url for url in found if url not in mine]


async def _shake(
    http: aiohttp.ClientSession, url: str, trust: Trust, step: float, within: float
) -> tuple[bool, str] | None:
    """(proved, "Gate B 4 ms" or "10.0.0.13:8766 unreachable"); None for this gate itself."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(within):
            ws_timeout = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=step)
            async with http.ws_connect(
                url + FOLLOW_PATH, timeout=ws_timeout, max_msg_size=MAX_MESSAGE
            ) as ws:
                peer = await handshake(ws, trust, step)
    except SelfError:
        return None
    except PeerError as exc:
        return False, f"{host_of(url)} refused ({str(exc)[:60]})"
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False, f"{host_of(url)} unreachable"
    return True, f"{peer.name} {(time.perf_counter() - started) * 1000:.0f} ms"
