"""The sync worker's revoke path: what a gate does once syncd refused its credential.

syncd answers 401 "unauthorized" (or ends the feed stream with ``event: revoked``) only for a
credential it does not know: revoked, deleted, or replaced by the enrolment of another device
as this gate. Then (``learn``):

1. ``revoked_at`` is committed (``gate.store.wipe.mark_revoked``): from that moment the pipeline
   refuses every scan and manual admit (``gate_revoked``), in this process and after a restart.
2. The holder data is wiped (``gate.store.wipe.wipe_holder_data``); a failed wipe is tried again
   with a growing pause, and a gate that died before it finished wipes at its next start.
3. The journal stays as it was; the revoked gate makes no further call to syncd (its credential
   can never work again, and each 401 counts against the address's failed-login limit).

A 403 is not a revocation (the credential is valid, the endpoint is not for it), nor is a 401
that is not syncd's JSON (a proxy in front of it asking for a login): the worker stops as
before, names stay, scanning goes on. Over plain http anyone on the path can forge syncd's
401, as they can forge the feed; https is what stops both.

``sit_out`` then waits for ``gate enroll`` (run beside `gate run`, in another process) to clear
the revocation and load the new list, and the worker syncs again with the new credential, so
the door needs no restart. The peer mesh keeps its old identity until the gate is restarted.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import TYPE_CHECKING

import httpx

from gate.settings import GateSettings
from gate.store.db import Store
from gate.store.syncstate import SyncState, read_sync_state
from gate.store.wipe import WipeError, mark_revoked, wipe_holder_data
from gate.sync.client import AuthRejectedError, SyncClient, SyncError, fingerprint
from gate.sync.credential import read_credential

if TYPE_CHECKING:
    from gate.sync.worker import SyncWorker

log = logging.getLogger("gate.sync.worker")
REVOKED = "gate credential revoked"
ENROLMENT_GRACE = 120.0
"""Seconds after a new enrolment the worker resumes even without its list: `gate enroll` could
not load the snapshot, so the worker loads it itself."""
_WIPE_RETRY_MAX = 60.0


def is_revocation(exc: AuthRejectedError) -> bool:
    """syncd's own 401 (or the stream's ``event: revoked``): a 401 from something in front of
    syncd (a proxy's login) or a 403 (a valid credential, an endpoint not for it) is not."""
    return exc.status == 401 and exc.code in ("unauthorized", "revoked")


async def learn(worker: SyncWorker, exc: AuthRejectedError) -> None:
    """Record the revocation (step 1 of the module docstring), unless the refused credential is
    no longer this gate's: `gate enroll` ran beside it and wrote a new one (``sit_out`` then
    takes the new one up at once)."""
    if _credential(worker) not in (None, worker.client.fingerprint):
        log.warning("syncd refused the credential this gate had before it was enrolled again")
        return
    log.error(
        "%s: syncd answered %d; scans refused and holder data deleted until the gate is"
        " enrolled again",
        REVOKED,
        exc.status,
    )
    revoked(worker)
    try:
        await worker._write(mark_revoked(worker.store, worker._clock(), REVOKED))
    except (sqlite3.Error, OSError):
        log.exception("could not record the revocation; scans are refused all the same")


def revoked(worker: SyncWorker) -> None:
    worker.status.state, worker.status.last_error = "revoked", REVOKED


async def sit_out(worker: SyncWorker) -> bool:
    """Wipe until done, then wait for a new enrolment; True once the worker has its new
    credential. False (at once, after the wipe) when it cannot tell a new enrolment: no
    credential file is configured."""
    revoked(worker)
    config = worker.config
    pause = config.revoke_poll
    while True:
        await worker.store.refresh(force=False)  # `gate enroll` writes from another process
        if worker.store.revoked_at is None:
            state = await read_sync_state(worker.store)
            if _enrolled(state, worker._clock()) and await _renew(worker, state):
                return True
        elif worker.store.wiped_at is None:
            pause = config.revoke_poll if await _wipe(worker) else min(pause * 2, _WIPE_RETRY_MAX)
        elif config.credential_file is None:
            return False
        await worker._sleep(pause)


async def _wipe(worker: SyncWorker) -> bool:
    try:
        await worker._write(
            wipe_holder_data(worker.store, worker.config.data_dir, now=worker._clock())
        )
    except (WipeError, sqlite3.Error, OSError) as exc:
        log.error("holder data not deleted yet, trying again: %s", exc)
        worker.status.last_error = f"{REVOKED}; holder data not deleted yet: {exc}"
        return False
    revoked(worker)
    return True


def _credential(worker: SyncWorker) -> str | None:
    """The fingerprint of the credential in the credential file now (None: no file, unread)."""
    path = worker.config.credential_file
    try:
        return fingerprint(read_credential(path)) if path is not None else None
    except (ValueError, OSError):
        return None


def _enrolled(state: SyncState, now: float) -> bool:
    """The new enrolment is complete: its list is loaded, or `gate enroll` gave up on it."""
    return state.snapshot_at is not None or now - (state.enrolled_at or 0) > ENROLMENT_GRACE


async def _renew(worker: SyncWorker, state: SyncState) -> bool:
    """Swap in a client with the new credential; False when the file has none (yet)."""
    path = worker.config.credential_file
    try:
        credential = read_credential(path) if path is not None else None
    except ValueError as exc:
        log.error("cannot read the new credential: %s", exc)
        credential = None
    url = worker.config.server_url or state.server_url
    if credential is None or not url:
        return False
    old, worker.client = worker.client, worker.client.renewed(url, credential)
    await old.aclose()
    worker.status.state, worker.status.last_error = "starting", None
    log.warning(
        "enrolled again: syncing as the new gate",
        extra={"gate_id": state.gate_id, "gate_name": state.gate_name},
    )
    return True


async def learn_before_enrolment(
    store: Store, settings: GateSettings, transport: httpx.AsyncBaseTransport | None = None
) -> None:
    """`gate enroll` on a database of an earlier identity not known to be revoked: one call with
    the old credential first. A 401 is learnt here as the worker would (``revoked_at``, then the
    wipe), so the new enrolment may carry the journal (``gate.store.carry``). Any other answer
    (the credential works, syncd is out of reach) changes nothing."""
    state = await read_sync_state(store)
    url = settings.server_url or state.server_url
    if state.gate_id is None or state.revoked_at is not None or not url:
        return
    try:
        credential = read_credential(settings.credential_path)
    except ValueError:
        return
    if credential is None:
        return
    timeout = settings.sync_timeout
    async with SyncClient(url, credential, timeout=timeout, transport=transport) as client:
        try:
            await client.changes(state.cursor, 0)
            return
        except AuthRejectedError as exc:
            if not is_revocation(exc):
                return
        except SyncError:
            return
    log.error("%s: learnt before the new enrolment; deleting holder data", REVOKED)
    await mark_revoked(store, time.time(), REVOKED)
    await wipe_holder_data(store, settings.data_dir, now=time.time())
