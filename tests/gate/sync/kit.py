"""A gate enrolled with the fake syncd: real SQLite in tmp_path, the real enrol command."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gate import commands
from gate.checkin.pipeline import Pipeline
from gate.settings import GateSettings
from gate.store.db import Store
from gate.sync.client import SyncClient
from gate.sync.worker import SyncWorker, WorkerConfig
from tessera_dev.sample_event import Clock
from tests.gate.sync.fakesyncd import CREDENTIAL, FakeSyncd

SERVER = "http://syncd.test"


@dataclass
class Sleeps:
    """An injected sleep: records what the worker asked for and returns at once."""

    seen: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)


@dataclass
class Gate:
    settings: GateSettings
    store: Store
    worker: SyncWorker
    pipeline: Pipeline
    sleeps: Sleeps


def settings_for(path: Path) -> GateSettings:
    return GateSettings(gate_name="Gate B", data_dir=path, server_url=SERVER)


@asynccontextmanager
async def enrolled_gate(
    path: Path, fake: FakeSyncd, clock: Clock | None = None, **config: float
) -> AsyncIterator[Gate]:
    settings = settings_for(path)
    faults, fake.faults = fake.faults, []  # the faults are for the test, not the enrolment
    await commands.enroll(settings, SERVER, "CODE-1", "test", transport=fake.transport())
    fake.faults = faults
    store = await Store.open(settings.db_path)
    sleeps = Sleeps()
    client = SyncClient(SERVER, CREDENTIAL, timeout=2, transport=fake.transport())
    worker_config = WorkerConfig(data_dir=path, **config)  # type: ignore[arg-type]
    worker = SyncWorker(store, client, worker_config, sleep=sleeps, clock=clock or Clock())
    try:
        yield Gate(
            settings, store, worker, Pipeline(store, settings, clock=clock or Clock()), sleeps
        )
    finally:
        await client.aclose()
        await store.close()


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait for a condition without a time limit of its own (pytest-timeout bounds the test)."""
    for _ in range(1_000_000):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")
