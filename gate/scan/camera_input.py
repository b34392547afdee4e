"""``CameraSource``: capture -> newest frame -> decode off the loop -> scanned texts.

It is a ``gate.inputs.Source`` (``via`` and ``texts()``) and a ``gate.app.Part`` (``start`` /
``stop``), so the app feeds its texts through the same debouncer and pipeline as every other
source. A live camera and ``gate run --source FILE`` take exactly this path.

Waiting for a frame and decoding it happen in one ``asyncio.to_thread`` hop (OpenCV, zbar and
zxing release the GIL), so the loop never blocks. ``last_frame`` is the frame the most recent
text came from; its ``captured_ns`` starts the frame-to-decision latency the benchmark reports.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from gate.camera.capture import Capture
from gate.camera.settings import CameraSettings
from gate.camera.slot import Frame
from gate.scan.decode import decode_frame, make_decoder
from gate.scan.settings import ScanSettings

_WAIT = 0.2


@dataclass(frozen=True, slots=True)
class Decoded:
    """One frame and what was read in it (for the benchmark's per-frame figures)."""

    frame: Frame
    texts: tuple[str, ...]
    decode_ms: float


class CameraSource:
    """Scanned texts from a camera, video file, stream URL or image folder."""

    via = "camera"

    def __init__(
        self,
        camera: CameraSettings,
        scan: ScanSettings,
        *,
        on_frame: Callable[[Decoded], None] | None = None,
    ) -> None:
        self.scan = scan
        self.capture = Capture(camera)
        self.decoder = make_decoder(self.scan.decoder, self.scan.try_invert)
        self.on_frame = on_frame
        self.last_frame: Frame | None = None
        self.frames = 0

    async def start(self, app: Any = None) -> None:
        self.capture.start()

    async def stop(self) -> None:
        await asyncio.to_thread(self.capture.stop)

    async def texts(self) -> AsyncIterator[str]:
        """Texts in frame order (several per frame left to right); ends when a replay ends."""
        while True:
            got = await asyncio.to_thread(self._next, _WAIT)
            if got is None and self.capture.finished.is_set():
                got = await asyncio.to_thread(self._next, 0.0)
                if got is None:
                    return
            if got is None:
                continue
            self.frames += 1
            if self.on_frame is not None:
                self.on_frame(got)
            for text in got.texts:
                self.last_frame = got.frame
                yield text

    def _next(self, timeout: float) -> Decoded | None:
        frame = self.capture.slot.take(timeout)
        if frame is None:
            return None
        start = time.perf_counter_ns()
        texts = decode_frame(frame.image, self.decoder, self.scan)
        return Decoded(frame, tuple(texts), (time.perf_counter_ns() - start) / 1e6)
