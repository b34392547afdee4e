"""The camera scan worker: newest frame -> decode (off the loop) -> debounce -> decide -> show.

It runs as one task on the gate's event loop. Waiting for a frame and decoding it happen in one
``asyncio.to_thread`` hop, so the loop never blocks on OpenCV or the decoders. Latency is
measured from the moment the capture thread read the frame to the moment the pipeline returned
its (committed) decision.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gate.camera.slot import Frame, FrameSlot
from gate.scan.decode import QrDecoder, decode_frame
from gate.scan.settings import ScanSettings

log = logging.getLogger("gate.scan")

_WAIT = 0.2


class Decides(Protocol):
    """What the worker needs from the check-in pipeline."""

    async def process(self, text: str, *, via: str) -> Any: ...


class Shows(Protocol):
    """What the worker needs from a feedback channel (display, hooks)."""

    async def show(self, decision: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What became of one frame: the texts decoded, decisions made, and latencies (ms)."""

    frame: Frame
    texts: tuple[str, ...]
    decisions: tuple[Any, ...]
    decode_ms: float
    latency_ms: float | None


@dataclass
class ScanStats:
    frames: int = 0
    frames_with_code: int = 0
    decisions: int = 0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=1000))


@dataclass
class ScanWorker:
    """Consumes ``slot`` until ``stop`` is set or ``finished`` (the source ended) is set.

    ``accept(text)`` is the debounce: it returns False for a code that is still being held in
    view, so one presentation of a ticket is one decision.
    """

    slot: FrameSlot
    decoder: QrDecoder
    settings: ScanSettings
    pipeline: Decides
    feedback: Sequence[Shows]
    accept: Callable[[str], bool]
    finished: threading.Event | None = None
    observer: Callable[[FrameResult], None] | None = None
    stats: ScanStats = field(default_factory=ScanStats)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        while not stop.is_set():
            got = await asyncio.to_thread(self._next, _WAIT)
            if got is None and self._source_done():
                got = await asyncio.to_thread(self._next, 0.0)
                if got is None:
                    return
            if got is not None:
                await self._handle(*got)

    def _source_done(self) -> bool:
        return self.finished is not None and self.finished.is_set()

    def _next(self, timeout: float) -> tuple[Frame, list[str], float] | None:
        frame = self.slot.take(timeout)
        if frame is None:
            return None
        start = time.perf_counter_ns()
        texts = decode_frame(frame.image, self.decoder, self.settings)
        return frame, texts, (time.perf_counter_ns() - start) / 1e6

    async def _handle(self, frame: Frame, texts: list[str], decode_ms: float) -> None:
        self.stats.frames += 1
        self.stats.frames_with_code += bool(texts)
        decisions = []
        latency: float | None = None
        for text in texts:
            if not self.accept(text):
                continue
            decision = await self.pipeline.process(text, via="camera")
            latency = (time.perf_counter_ns() - frame.captured_ns) / 1e6
            self.stats.decisions += 1
            self.stats.latencies_ms.append(latency)
            decisions.append(decision)
            await self._show(decision)
        if self.observer is not None:
            self.observer(FrameResult(frame, tuple(texts), tuple(decisions), decode_ms, latency))

    async def _show(self, decision: Any) -> None:
        for channel in self.feedback:
            try:
                await channel.show(decision)
            except Exception:
                log.exception("feedback channel %s failed", type(channel).__name__)
