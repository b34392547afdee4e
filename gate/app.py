"""Composition root: build the parts from one ``GateSettings``, start them in a fixed order,
stop them in reverse.

``gate_for(settings, specs)`` is what ``gate run`` builds: the sources ``--source`` names
(stdin, camera, kiosk, ``serial:``/``evdev:`` specs, a device, file, URL or folder through the
camera path), each given its part of the settings (``settings.camera``, ``settings.serial`` ...),
and the sinks: JSON lines, the hooks (``settings.hooks``) and the kiosk page
(``settings.display``). Nothing below reads ``GATE_*`` again.

Order: store -> pipeline -> sync worker (when enrolled; ``app.sync``) -> peer mesh (GATE_PEER_PORT;
``app.mesh``) -> feedback sinks (the
kiosk page last, built only now: the pipeline and the sync worker's state are its backend) ->
sources -> one pump task per source. A pump feeds its source's texts through the shared
debouncer into the pipeline. The app runs until every source has ended (stdin at EOF) or
``stop()`` is called (a signal); then pumps are cancelled, sources stopped, sinks stopped, the
store closed.

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
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from gate.checkin.pipeline import Pipeline
from gate.door.passage import PassageLane
from gate.feedback import Feedback
from gate.feedback.display import Display, KioskInput
from gate.feedback.display_backend import PipelineBackend
from gate.feedback.hooks import CommandHooks
from gate.feedback.jsonlines import JsonLinesFeedback
from gate.inputs import Source, StdinSource
from gate.peer.mesh import PeerMesh
from gate.scan.camera_input import CameraSource
from gate.scan.debounce import Debouncer
from gate.scan.evdev_source import EvdevSource
from gate.scan.serial_source import SerialSource
from gate.settings import GateSettings, check_zones
from gate.store.db import Store
from gate.sync import sync_worker
from gate.sync.worker import SyncWorker
from shared.errors import ConfigError

log = logging.getLogger(__name__)
STOP_PUSH_SECONDS = 1.0
_CAMERA_LIKE = re.compile(r"^(\d+|/dev/video\d+|[a-z][a-z0-9+.-]*://.+)$", re.IGNORECASE)


def looks_like_camera(text: str) -> bool:
    """A device, a URL, or a file or folder that exists."""
    return bool(_CAMERA_LIKE.match(text)) or Path(text).exists()


def camera_source(settings: GateSettings, text: str | None = None) -> CameraSource:
    """A camera source for ``text`` (default: GATE_CAMERA_SOURCE); GATE_SCAN_* for decoding."""
    camera = (
        settings.camera if text is None else settings.camera.model_copy(update={"source": text})
    )
    return CameraSource(camera, settings.scan)


NAMED_SOURCES: Mapping[str, Callable[[GateSettings], Source]] = {
    "stdin": lambda settings: StdinSource(),
    "camera": camera_source,
    "kiosk": lambda settings: KioskInput(),  # scans come from the kiosk page only
}
"""Input sources by name for ``gate run --source``."""


def device_source(spec: str, settings: GateSettings) -> Source | None:
    """``serial:PATH?...`` or ``evdev:PATH?...`` as a source; None for any other spec.

    A bad option raises ``ConfigError`` naming it, before the gate starts.
    """
    kind, _, _ = spec.partition(":")
    if kind == "serial":
        return SerialSource.from_spec(spec, settings.serial)
    if kind == "evdev":
        return EvdevSource.from_spec(spec, settings.evdev)
    return None


def gate_for(
    settings: GateSettings, specs: Sequence[str], devices: Mapping[str, Source]
) -> GateApp:
    """The gate ``gate run --source SPEC...`` runs (``devices``: the specs ``device_source``
    built already). Hooks always; the kiosk page for every source when GATE_DISPLAY_ENABLED,
    with the first camera's preview (it also takes keyboard-wedge scans)."""
    sources = [devices[spec] if spec in devices else _source(spec, settings) for spec in specs]
    if any(isinstance(s, KioskInput) for s in sources) and not settings.display.enabled:
        raise ConfigError("--source kiosk needs the kiosk page: set GATE_DISPLAY_ENABLED=true")
    sinks: list[Feedback] = [
        JsonLinesFeedback(holders=settings.print_holders),
        CommandHooks(settings.hooks),
    ]
    return GateApp(settings, sources, sinks, kiosk_page=settings.display.enabled)


def _source(spec: str, settings: GateSettings) -> Source:
    named = NAMED_SOURCES.get(spec)
    return named(settings) if named is not None else camera_source(settings, spec)


@runtime_checkable
class Part(Protocol):
    async def start(self, app: GateApp) -> None: ...

    async def stop(self) -> None: ...


class GateApp:
    """The running gate. ``await app.run()``; ``app.stop()`` from a signal handler.

    With ``kiosk_page`` the app serves the kiosk page (``settings.display``) as its last sink,
    built once the pipeline and the sync worker exist, since they are the page's backend."""

    def __init__(
        self,
        settings: GateSettings,
        sources: Sequence[Source] = (),
        sinks: Sequence[Feedback] = (),
        *,
        kiosk_page: bool = False,
    ) -> None:
        self.settings = settings
        self.sources = list(sources)
        self.sinks = list(sinks)
        self.kiosk_page = kiosk_page
        self.debouncer = Debouncer(settings.debounce_seconds)
        self._stopping = asyncio.Event()
        self._store: Store | None = None
        self._pipeline: Pipeline | None = None
        self.sync: SyncWorker | None = None
        self.mesh: PeerMesh | None = None
        self.lane: PassageLane | None = None

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
            self._start_lane()
            await self._start_sync(stack)
            await self._start_mesh(stack)
            self._pipeline.sinks += self._page()  # the page shows results and asks the pipeline
            for part in [*self._pipeline.sinks, *self.sources]:
                if isinstance(part, Part):
                    await part.start(self)
                    stack.push_async_callback(part.stop)
            log.info("gate started", extra={"gate": self.settings.gate_name})
            await self._pump_all()
        log.info("gate stopped", extra={"gate": self.settings.gate_name})

    def _start_lane(self) -> None:
        """Passage confirmation (GATE_PASSAGE_CONFIRM): the lane is the first sink, so an
        admission waits for its passage from the moment it is committed."""
        if not self.settings.passage.confirm:
            return
        self.lane = PassageLane(
            self.store,
            self.settings.passage,
            gate=self.settings.gate_name,
            annul_window=self.settings.annul_window,
        )
        self.pipeline.sinks.insert(0, self.lane)

    async def _start_sync(self, stack: contextlib.AsyncExitStack) -> None:
        """Start the sync worker (it never blocks scanning) before the parts, so the kiosk page
        is built with its state."""
        self.sync = await sync_worker(self.settings, self.store)
        if self.sync is None:
            return
        await self.sync.start(self)
        stack.push_async_callback(self.sync.stop)

    async def _start_mesh(self, stack: contextlib.AsyncExitStack) -> None:
        """The peer mesh (GATE_PEER_PORT set): its server and followers never block a scan."""
        if self.settings.peer.port is None:
            return
        self.mesh = PeerMesh(self.settings, self.store, self.sync)
        await self.mesh.start(self)
        stack.push_async_callback(self.mesh.stop)

    def _page(self) -> list[Feedback]:
        """The kiosk page, if asked for: the pipeline, the sync state, the first camera's
        preview and the gate's debouncer; required when it is the only scanner (kiosk)."""
        if not self.kiosk_page:
            return []
        cameras = [s.capture for s in self.sources if isinstance(s, CameraSource)]
        page = Display(
            self.settings.display,
            self._page_backend(),
            cameras[0] if cameras else None,
            required=any(isinstance(s, KioskInput) for s in self.sources),
            debouncer=self.debouncer,
        )
        token = self.settings.passage.token
        page.api.passage_token = token.get_secret_value() if token is not None else None
        if self.lane is not None:
            self.lane.notify = page.show  # an admission annulled for want of a passage
        return [page]

    def _page_backend(self) -> PipelineBackend:
        sync, mesh = self.sync, self.mesh
        peers = mesh.status if mesh is not None and mesh.off is None else None
        if sync is None:
            return PipelineBackend(self.pipeline, peers=peers, lane=self.lane)
        online = lambda: sync.status.online  # noqa: E731
        return PipelineBackend(
            self.pipeline, online, sync.status.as_dict, peers=peers, lane=self.lane
        )

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
        camera = source if isinstance(source, CameraSource) else None
        async for text in source.texts():
            if self.debouncer.accept(text):
                frame = camera.last_frame if camera is not None else None
                captured = frame.captured_ns if frame is not None else None
                await _uncut(self.pipeline.process(text, via=source.via, captured_ns=captured))


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
