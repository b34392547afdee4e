"""The sync worker: a push loop and a pull loop, two asyncio tasks beside the scanning.

Scanning never waits for the network: the pipeline only commits to the journal and sets
``store.appended``; the push loop wakes on it (or every ``push_interval``), sends unsynced rows
in seq order in batches and marks synced exactly what syncd acknowledged (never more than it
sent). The pull loop long-polls the change feed while online, applies each page in one
transaction, and loads a snapshot (then the presence) when syncd asks for one or the gate has
never had one. Both retry ``OfflineError``, ``ProtocolError`` and busy-database errors forever with
exponential backoff and full jitter, capped (tenacity ``wait_random_exponential``).

The long backoff is for calls that got an answer and failed (5xx, 429, a protocol error). When
no answer came at all (``UnreachableError``: the link or syncd is down), the wait is spent probing
instead: a cheap ``GET /healthz`` every ``probe_interval`` seconds (jittered, so gates coming
back together do not probe in step), and the retry follows as soon as one answers. A gate
rejoining after an outage thus pushes within one probe interval, not after up to
``backoff_max`` seconds of jitter. The backoff stays the upper bound of each wait.

A revoked credential (401, or ``event: revoked`` on the stream) stops both loops and takes the
revoke path (``gate.sync.revocation``): the gate refuses every scan, deletes its holder data,
keeps its journal, calls syncd no more and waits for ``gate enroll``, then syncs again with the
new credential. Status and display say "gate credential revoked"; nothing crash-loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_random_exponential

from gate.settings import GateSettings
from gate.store.db import Store
from gate.store.peers import save_peers
from gate.store.records import JournalRow
from gate.store.snapshot import import_snapshot
from gate.store.syncstate import (
    ChangeError,
    apply_changes,
    apply_presence,
    backlog,
    mark_synced,
    note_error,
    note_pull,
    read_sync_state,
    unsynced_batch,
)
from gate.sync import revocation
from gate.sync.client import (
    AuthRejectedError,
    OfflineError,
    ProtocolError,
    SyncClient,
    SyncError,
    UnreachableError,
)
from shared.errors import BundleError
from shared.protocol import CheckinIn, PushRequest
from shared.tasks import stop

REVOKED = revocation.REVOKED

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRYABLE = (OfflineError, ProtocolError, ChangeError, BundleError, sqlite3.OperationalError)
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    batch_size: int = 500
    push_interval: float = 5.0
    long_poll: float = 25.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    idle_pause: float = 1.0  # after an empty answer that came back at once
    data_dir: Path = Path(".")
    probe_interval: float = 3.0
    probe_timeout: float = 2.0
    stream: bool = True  # follow the feed as syncd pushes it; False: long-poll
    stream_idle: float = 50.0  # silence (no page, no keepalive) after which a stream is dead
    credential_file: Path | None = None  # where `gate enroll` puts a new credential after a revoke
    server_url: str | None = None  # GATE_SERVER_URL (None: the enrolled server)
    revoke_poll: float = 2.0  # while revoked: how often to look for a new enrolment

    @classmethod
    def from_settings(cls, s: GateSettings) -> WorkerConfig:
        return cls(
            s.sync_batch_size,
            s.sync_push_interval,
            s.sync_long_poll,
            s.sync_backoff_initial,
            s.sync_backoff_max,
            data_dir=s.data_dir,
            probe_interval=s.sync_probe_interval,
            probe_timeout=s.sync_probe_timeout,
            stream=s.sync_stream,
            credential_file=s.credential_path,
            server_url=s.server_url,
        )


@dataclass
class SyncStatus:
    """What `gate status` and the door display show about sync."""

    state: str = "starting"  # starting | online | offline | error | revoked | stopped
    last_push_at: float | None = None
    last_pull_at: float | None = None
    backlog: int = 0
    acked_seq: int = 0
    skew: float | None = None
    clock_warning: str | None = None
    last_error: str | None = None
    retries: int = 0
    probes: int = 0
    sleeps: list[float] = field(default_factory=list, repr=False)

    @property
    def online(self) -> bool:
        return self.state == "online"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("sleeps")
        data["online"] = self.online
        return data


class SyncWorker:
    """Push and pull for one enrolled gate. A ``gate.app.Part``: ``start()``/``stop()``."""

    def __init__(
        self,
        store: Store,
        client: SyncClient,
        config: WorkerConfig,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.client = client
        self.config = config
        self.status = SyncStatus()
        self._sleep = sleep
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.final_push_seconds = client.timeout
        """How long the last push at stop may take (the app shortens it on a signal)."""
        self._writes: set[asyncio.Future[Any]] = set()
        self._streaming = config.stream  # False once syncd turned out to have no stream

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self, app: object = None) -> None:
        self.status.backlog = await backlog(self.store)
        if self.store.revoked_at is not None:
            revocation.revoked(self)
        self._task = asyncio.create_task(self.run(), name="sync")

    async def stop(self) -> None:
        """Stop both loops, then, unless syncd is known to be out of reach, one last bounded push
        of what is left (a piped `gate run` exits right after its last scan)."""
        if self._task is not None:
            await stop(self._task)
            await asyncio.gather(*self._writes, return_exceptions=True)
            if self.status.state in ("online", "starting"):
                with contextlib.suppress(SyncError, sqlite3.Error, TimeoutError):
                    await asyncio.wait_for(self.drain(), self.final_push_seconds)
                await asyncio.gather(*self._writes, return_exceptions=True)
        await self.client.aclose()

    async def run(self) -> None:
        """Both loops until cancelled. A revoked credential stops them: the revoke path (wipe,
        wait for a new enrolment), then both loops again with the new credential."""
        while True:
            if self.store.revoked_at is None:
                refused = await self._loops()
                if refused is None:
                    return
                await revocation.learn(self, refused)
            if not await revocation.sit_out(self):
                return

    async def _loops(self) -> AuthRejectedError | None:
        """Push and pull until one fails for good; the revocation that stopped them, if any."""
        tasks = [
            asyncio.create_task(self._push_loop(), name="sync-push"),
            asyncio.create_task(self._pull_loop(), name="sync-pull"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        except AuthRejectedError as exc:
            if revocation.is_revocation(exc):
                return exc
            log.error("syncd refused this gate (%d); sync stopped, scanning goes on", exc.status)
            self.status.state, self.status.last_error = "stopped", f"sync stopped: {exc}"
        except Exception as exc:
            log.exception("sync worker stopped on an unexpected error")
            self.status.state, self.status.last_error = "stopped", f"sync stopped: {exc}"
        finally:
            await _to_the_end(self._stop_all(tasks))
        return None

    async def _stop_all(self, tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            await stop(task)
        await asyncio.gather(*self._writes, return_exceptions=True)

    # -- push ---------------------------------------------------------------------------------
    async def _push_loop(self) -> None:
        while True:
            await self.retrying(self.drain)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.store.appended.wait(), self.config.push_interval)

    async def drain(self) -> int:
        """Push every unsynced row (batches in seq order); returns how many syncd newly stored."""
        stored = 0
        while True:
            self.store.appended.clear()
            batch = await unsynced_batch(self.store, self.config.batch_size)
            if not batch:
                self.status.backlog = 0
                return stored
            stored += await self.push_batch(batch)

    async def push_batch(self, batch: list[JournalRow]) -> int:
        left = max(0, await backlog(self.store) - len(batch))  # for the organisers' dashboard
        request = PushRequest(
            sent_at=self._clock(), checkins=[_checkin(r) for r in batch], backlog=left
        )
        response = await self.client.push(request)
        acked = min(response.acked_seq, batch[-1].seq)
        if acked < batch[0].seq - 1:
            log.warning(
                "syncd holds fewer check-ins than this gate sent; sending again",
                extra={"acked_seq": acked, "first_sent": batch[0].seq},
            )
        await self._write(
            mark_synced(
                self.store,
                acked,
                skew=response.skew,
                warning=response.clock_warning,
                now=self._clock(),
            )
        )
        self._online(last_push_at=self._clock(), acked_seq=acked, skew=response.skew)
        log.debug("sync pushed", extra={"sent": len(batch), "acked_seq": acked})
        self.status.clock_warning = response.clock_warning
        self.status.backlog = await backlog(self.store)
        if acked == batch[0].seq - 1:
            raise ProtocolError(f"syncd stored none of seq {batch[0].seq}..{batch[-1].seq}")
        return response.stored

    # -- pull ---------------------------------------------------------------------------------
    async def _pull_loop(self) -> None:
        while True:
            await self.retrying(self.pull)

    async def pull(self) -> int:
        """Follow the feed while online (its stream, until it ends), else one request; returns
        the changes applied."""
        if self.status.online and self._streaming:
            state = await read_sync_state(self.store)
            if state.snapshot_at is not None:
                followed = await self._follow(state.cursor)
                if followed is not None:
                    return followed
        return await self.pull_once()

    async def pull_once(self) -> int:
        """One change-feed request (long-polled when online); returns the changes applied."""
        state = await read_sync_state(self.store)
        if state.snapshot_at is None:
            await self.resync()
            return 0
        wait = self.config.long_poll if self.status.online else 0.0
        started = time.monotonic()
        page = await self.client.changes(state.cursor, wait)
        if page.snapshot_required:
            log.info("syncd asks for a snapshot", extra={"cursor": state.cursor})
            await self.resync()
            return 0
        now = self._clock()
        if page.changes or page.cursor != state.cursor:
            applied = await self._write(apply_changes(self.store, page, now=now))
        else:
            applied = 0
            await self._write(note_pull(self.store, now))
        self._online(last_pull_at=now)
        if not page.changes and not page.more and time.monotonic() - started < wait / 2:
            await self._sleep(self.config.idle_pause)  # syncd did not hold the request
        return applied

    async def _follow(self, cursor: str) -> int | None:
        """Apply pages as syncd pushes them until the stream ends; returns the changes applied.

        An older syncd without the stream (404) is long-polled from then on (None: nothing was
        followed). A stream that ends at once with nothing (a replica stopping) is followed
        again after ``idle_pause``."""
        applied, started, noted = 0, time.monotonic(), time.monotonic()
        try:
            async for page in self.client.stream(cursor, self.config.stream_idle):
                now = self._clock()
                if page is None:  # a keepalive: the link is alive
                    if time.monotonic() - noted >= self.config.long_poll:
                        noted = time.monotonic()
                        await self._write(note_pull(self.store, now))
                        self._online(last_pull_at=now)
                    continue
                if page.snapshot_required:
                    log.info("syncd asks for a snapshot", extra={"cursor": cursor})
                    await self.resync()
                    return applied
                applied += await self._write(apply_changes(self.store, page, now=now))
                cursor = page.cursor
                self._online(last_pull_at=now)
        except ProtocolError as exc:
            if exc.status != 404:
                raise
            log.info("syncd has no feed stream: long-polling")
            self._streaming = False
            return None
        if not applied and time.monotonic() - started < 1.0:
            await self._sleep(self.config.idle_pause)
        return applied

    async def resync(self) -> None:
        """Snapshot, then presence; the feed continues from the snapshot's cursor."""
        await self._write(fetch_snapshot(self.store, self.client, self.config.data_dir))
        self._online(last_pull_at=self._clock())

    async def _write(self, work: Awaitable[T]) -> T:
        """Run a store write to its end even if the worker is cancelled meanwhile: a write cut
        off between BEGIN and COMMIT would leave the shared connection in a transaction."""
        future = asyncio.ensure_future(work)
        self._writes.add(future)
        future.add_done_callback(self._writes.discard)
        return await asyncio.shield(future)

    # -- retries and state --------------------------------------------------------------------
    async def retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` until it succeeds; backoff with full jitter, capped; AuthRejectedError
        escapes.

        A wait after a failure that got no answer at all is spent probing (module docstring).
        """
        unanswered = False

        async def failed(retry_state: RetryCallState) -> None:
            nonlocal unanswered
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            unanswered = isinstance(exc, UnreachableError)
            await self._failed(exc)

        async def wait(seconds: float) -> None:
            self.status.sleeps[:] = [*self.status.sleeps[-99:], seconds]
            await (self._probe_until_up(seconds) if unanswered else self._sleep(seconds))

        retry = AsyncRetrying(
            retry=retry_if_exception_type(RETRYABLE),
            wait=wait_random_exponential(
                multiplier=self.config.backoff_initial, max=self.config.backoff_max
            ),
            sleep=wait,
            before_sleep=failed,
            reraise=True,
        )
        return await retry(call)

    async def _probe_until_up(self, limit: float) -> None:
        """Wait up to ``limit`` seconds, probing every jittered interval; return on an answer."""
        waited = 0.0
        while waited < limit:
            step = min(limit - waited, self.config.probe_interval * random.uniform(0.5, 1.5))
            await self._sleep(step)
            waited += step
            if waited >= limit:
                return  # the backoff is over: the retry itself is the next probe
            self.status.probes += 1
            answered = await self.client.probe(self.config.probe_timeout)
            log.debug("sync probe", extra={"answered": answered, "probes": self.status.probes})
            if answered:
                return

    async def _failed(self, exc: BaseException | None) -> None:
        message = str(exc) if exc else "unknown error"
        was = self.status.state
        self.status.state = "offline" if isinstance(exc, OfflineError) else "error"
        self.status.last_error = message
        self.status.retries += 1
        if was != self.status.state:
            log.warning("sync %s: %s", self.status.state, message)
            await self._write(note_error(self.store, message))

    def _online(self, **fields: Any) -> None:
        if self.status.state != "online":
            log.info("sync online", extra={"was": self.status.state})
        self.status.state, self.status.last_error = "online", None
        for name, value in fields.items():
            setattr(self.status, name, value)


async def fetch_snapshot(store: Store, client: SyncClient, data_dir: Path) -> int:
    """Download the snapshot to a file, load it beside the live list, then the presence."""
    partial = data_dir / "snapshot.partial"
    try:
        await client.snapshot(partial)
        with partial.open("rb") as stream:
            result, cursor = await import_snapshot(store, stream)
    finally:
        partial.unlink(missing_ok=True)
    presence = await client.presence()
    await apply_presence(store, list(presence.inside))
    try:  # the peer list is a refinement: an older syncd (404) or a failure here costs nothing
        await fetch_peers(store, client)
    except SyncError as exc:
        log.info("peer list not loaded: %s", exc)
    log.info(
        "snapshot loaded",
        extra={"tickets": result.tickets, "seconds": round(result.seconds, 2), "cursor": cursor},
    )
    return result.tickets


async def fetch_peers(store: Store, client: SyncClient, urls: list[str] | None = None) -> int:
    """Report this gate's peer URLs (None: unchanged) and record the event's other gates."""
    state = await read_sync_state(store)
    page = await client.peers(urls)
    if state.event_id is not None:
        await save_peers(store, state.event_id, page)
    return len(page.gates)


async def _to_the_end(work: Awaitable[None]) -> None:
    """Run ``work`` to its end however often the caller is cancelled meanwhile (``stop`` cancels
    again every second: a second cancel must not cut the loops' clean-up short and leave a
    loop running on a closed store), then pass the cancellation on."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError


def _checkin(row: JournalRow) -> CheckinIn:
    return CheckinIn(
        seq=row.seq,
        scan_id=row.scan_id.hex(),
        ticket_id=row.ticket_id,
        direction=row.direction,
        outcome=row.outcome,
        reason=row.reason,
        via=row.via[:32],
        scanned_at=row.scanned_at,
        ref_seq=row.ref_seq,
    )


__all__ = ["REVOKED", "SyncError", "SyncStatus", "SyncWorker", "WorkerConfig", "fetch_snapshot"]
