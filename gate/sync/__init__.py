"""Sync with syncd (docs/design.md section 3): ``client`` speaks shared/protocol.py over httpx,
``worker`` pushes the journal and pulls the change feed in the background, ``credential``
keeps the gate's credential in a 0600 file.

``sync_worker(settings, store)`` builds the worker for `gate run`, or None when this gate has
no server (neither GATE_SERVER_URL nor an enrolment) or no credential.
"""

from __future__ import annotations

import logging

from gate.settings import GateSettings
from gate.store.db import Store
from gate.store.syncstate import read_sync_state
from gate.sync.client import SyncClient
from gate.sync.credential import read_credential
from gate.sync.worker import SyncWorker, WorkerConfig

log = logging.getLogger(__name__)


async def sync_worker(settings: GateSettings, store: Store) -> SyncWorker | None:
    state = await read_sync_state(store)
    url = settings.server_url or state.server_url
    if not url:
        return None
    credential = read_credential(settings.credential_path)
    if credential is None:
        log.warning(
            "no gate credential: run `gate enroll --server URL --code CODE`; scanning offline",
            extra={"credential_file": str(settings.credential_path)},
        )
        return None
    client = SyncClient(url, credential, timeout=settings.sync_timeout)
    return SyncWorker(store, client, WorkerConfig.from_settings(settings))
