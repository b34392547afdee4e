"""Composition root: start the parts in a fixed order, stop them in reverse.

Order: store -> pipeline -> sync worker (when enrolled; ``app.sync``) -> feedback sinks ->
sources -> one pump task per source. A pump feeds
its source's texts through the shared debouncer into the pipeline. The app runs until every
source has ended (stdin at EOF) or ``stop()`` is called (a signal); then pumps are cancelled,
sources stopped, sinks stopped, the store closed.

A stop never cuts a journal write: a scan already in the pipeline is finished (committed and
shown) before its pump ends, and the sync worker's last push is bounded to ``STOP_PUSH_SECONDS``
on a signal, so SIGTERM or Ctrl-C exits 0 within about two seconds. The zone names of
GATE_ZONES are checked against the loaded list before anything starts.

Adding a part (camera, web display): pass a source or a sink; if it also has
``start(app)``/``stop()`` (``Part``) the app starts it with access to ``app.pipeline``,
``app.store`` and ``app.settings``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol, runtime_checkable

from gate.checkin.pipeline import Pipeline
from gate.feedback import Feedback
from gate.inputs import Source
from gate.scan.debounce import Debouncer
from gate.settings import GateSettings, check_zones
from gate.store.db import Store
from gate.sync import sync_worker
from gate.sync.worker import SyncWorker

log = logging.getLogger(__name__)
STOP_PUSH_SECONDS = 1.0


@runtime_checkable
class Part(Protocol):
    async def start(self, app: GateApp) -> None: ...

    async def stop(self) -> None: ...


class GateApp:
    """The running gate. ``await app.run()``; ``app.stop()`` from a signal handler."""

    def __init__(
        self,
        settings: GateSettings,
        sources: Sequence[Source] = (),
        sinks: Sequence[Feedback] = (),
    ) -> None:
        self.settings = settings
        self.sources = list(sources)
        self.sinks = list(sinks)
        self.debouncer = Debouncer(settings.debounce_seconds)
        self._stopping = asyncio.Event()
        self._store: Store | None = None
        self._pipeline: Pipeline | None = None
        self.sync: SyncWorker | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the gate is not running")
        return self._store

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            raise RuntimeError("the gate is not running")
        return self._pipeline

    def stop(self) -> None:
        """Stop soon (a signal): the scan in hand is finished, the last push kept short."""
        if self.sync is not None:
            self.sync.final_push_seconds = min(self.sync.final_push_seconds, STOP_PUSH_SECONDS)
        self._stopping.set()

    async def run(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            self._store = await Store.open(self.settings.db_path)
            stack.push_async_callback(self._store.close)
            check_zones(self.settings.zones, [e.zones for e in self._store.events.values()])
            self._pipeline = Pipeline(self._store, self.settings, self.sinks)
            await self._start_sync(stack)
            for part in [*self.sinks, *self.sources]:
                if isinstance(part, Part):
                    await part.start(self)
                    stack.push_async_callback(part.stop)
            log.info("gate started", extra={"gate": self.settings.gate_name})
            await self._pump_all()
        log.info("gate stopped", extra={"gate": self.settings.gate_name})

    async def _start_sync(self, stack: contextlib.AsyncExitStack) -> None:
        """Start the sync worker (it never blocks scanning) before the parts, so the kiosk page
        (``PipelineBackend.for_app``) finds its state when it starts."""
        self.sync = await sync_worker(self.settings, self.store)
        if self.sync is None:
            return
        await self.sync.start(self)
        stack.push_async_callback(self.sync.stop)

    async def _pump_all(self) -> None:
        pumps = [asyncio.create_task(self._pump(s), name=f"pump-{s.via}") for s in self.sources]
        stopper: asyncio.Task[Any] = asyncio.create_task(self._stopping.wait())
        try:
            pending: set[asyncio.Task[Any]] = {*pumps}
            while pending and not self._stopping.is_set():
                done, pending = await asyncio.wait(
                    pending | {stopper}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(stopper)
                for task in done - {stopper}:
                    task.result()  # a crashed source stops the gate loudly
            if not self.sources:
                await stopper
        finally:
            for task in [*pumps, stopper]:
                task.cancel()
            await asyncio.gather(*pumps, stopper, return_exceptions=True)

    async def _pump(self, source: Source) -> None:
        async for text in source.texts():
            if self.debouncer.accept(text):
                await _uncut(self.pipeline.process(text, via=source.via))


async def _uncut(work: Coroutine[Any, Any, Any]) -> None:
    """Run ``work`` to its end even when the caller is cancelled (a stop): a scan being
    committed is committed and shown, then the cancellation goes on."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


async def check_list(settings: GateSettings) -> None:
    """What ``gate run`` checks against the database before it starts (for --check-config)."""
    store = await Store.open(settings.db_path)
    try:
        check_zones(settings.zones, [e.zones for e in store.events.values()])
    finally:
        await store.close()
