"""Capture: a named reader thread per source opening, and a watchdog that supervises it.

::

    source ──read()──► reader thread "gate-capture-N" ──put──► FrameSlot (newest only)
                              ▲                                        │
    watchdog "gate-camera-watchdog": opens, sees end / error / stall, reopens with backoff

A reader that hangs inside a blocking ``read()`` is abandoned, not joined: it carries its
generation number and exits at its next read, closing its own source. The watchdog keeps the
last error lines and a ``CameraStatus`` snapshot the display shows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from gate.camera.frame_readers import (
    OPEN_TIMEOUT_MS,
    FrameSource,
    SourceError,
    SourceKind,
    open_source,
)
from gate.camera.settings import CameraSettings, Roi
from gate.camera.slot import Frame, FrameSlot

log = logging.getLogger("gate.camera")

_TICK = 0.1


class CameraState(StrEnum):
    starting = "starting"
    live = "live"
    stalled = "stalled"
    ended = "ended"
    failed = "failed"
    reopening = "reopening"
    stopped = "stopped"


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """What the display and logs show about the camera."""

    state: CameraState
    source: str
    kind: str
    frames: int
    dropped: int
    reopens: int
    last_error: str | None
    errors: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "source": self.source,
            "kind": self.kind,
            "frames": self.frames,
            "dropped": self.dropped,
            "reopens": self.reopens,
            "last_error": self.last_error,
        }


def crop(image: np.ndarray, roi: Roi | None) -> np.ndarray:
    """The region of interest of ``image`` (a view, no copy); the whole image if ``roi`` is None."""
    if roi is None:
        return image
    h, w = image.shape[:2]
    x, y, rw, rh = roi
    x0, y0 = int(x * w), int(y * h)
    x1, y1 = min(w, x0 + max(1, int(rw * w))), min(h, y0 + max(1, int(rh * h)))
    return image[y0:y1, x0:x1]


@dataclass
class _Reader:
    generation: int
    source: FrameSource
    outcome: str | None = None
    error: str | None = None
    frames: int = 0
    opened: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class Capture:
    """Reads a source in a named thread into ``slot``; a watchdog reopens it with backoff.

    ``start()`` returns at once; ``finished`` is set when a replayed file or folder has ended
    and ``at_end`` says stop (or after ``stop()``).
    """

    def __init__(self, settings: CameraSettings, slot: FrameSlot | None = None) -> None:
        self.settings = settings
        self.slot = slot or FrameSlot()
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._state = CameraState.starting
        self._errors: deque[str] = deque(maxlen=5)
        self._reopens = 0
        self._generation = 0
        self._seq = 0
        self._last_frame = 0.0
        self._kind = ""
        self._watchdog: threading.Thread | None = None

    # -- public -------------------------------------------------------------------------------
    def start(self) -> None:
        self._watchdog = threading.Thread(
            target=self._supervise, name="gate-camera-watchdog", daemon=True
        )
        self._watchdog.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout)
        if self.status().state is not CameraState.ended:
            self._set_state(CameraState.stopped)
        self.finished.set()

    def status(self) -> CameraStatus:
        with self._lock:
            return CameraStatus(
                state=self._state,
                source=self.settings.source,
                kind=self._kind,
                frames=self.slot.captured,
                dropped=self.slot.dropped,
                reopens=self._reopens,
                last_error=self._errors[-1] if self._errors else None,
                errors=tuple(self._errors),
            )

    # -- watchdog -----------------------------------------------------------------------------
    def _supervise(self) -> None:
        backoff = self.settings.backoff_initial
        while not self._stop.is_set():
            reader = self._spawn_reader()
            outcome = self._watch(reader)
            if outcome is None:
                break
            if outcome == "ended" and self._stops_at_end(reader.source.kind):
                self._set_state(CameraState.ended)
                self.finished.set()
                return
            if reader.frames:
                backoff = self.settings.backoff_initial
            self._set_state(CameraState.reopening)
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self.settings.backoff_max)
            with self._lock:
                self._reopens += 1
        if self._stop.is_set():
            self._set_state(CameraState.stopped)

    def _stops_at_end(self, kind: SourceKind) -> bool:
        at_end = self.settings.at_end
        if at_end == "auto":
            return kind in (SourceKind.file, SourceKind.folder)
        return at_end == "stop"

    def _spawn_reader(self) -> _Reader:
        self._generation += 1
        source = open_source(self.settings)
        self._kind = source.kind.value
        reader = _Reader(generation=self._generation, source=source)
        self._last_frame = time.monotonic()
        thread = threading.Thread(
            target=self._read_loop,
            args=(reader,),
            name=f"gate-capture-{reader.generation}",
            daemon=True,
        )
        thread.start()
        return reader

    def _watch(self, reader: _Reader) -> str | None:
        """Wait until the reader ends, fails or stalls; ``None`` if we were asked to stop."""
        while not self._stop.is_set():
            if reader.done.wait(_TICK):
                state = CameraState.ended if reader.outcome == "ended" else CameraState.failed
                self._note(state, reader.error)
                return state.value
            if time.monotonic() - self._last_frame > self._stall_limit(reader):
                self._generation += 1  # abandon: the reader exits at its next read
                self._note(CameraState.stalled, f"no frame for {self.settings.stall_timeout:g}s")
                return CameraState.stalled.value
        return None

    def _stall_limit(self, reader: _Reader) -> float:
        """Opening a stream may legitimately take up to the open timeout; reading may not."""
        limit = self.settings.stall_timeout
        return limit if reader.opened else limit + OPEN_TIMEOUT_MS / 1000 + 1.0

    def _note(self, state: CameraState, error: str | None) -> None:
        with self._lock:
            self._state = state
            if error:
                self._errors.append(error)
        log.warning(
            "camera %s", state.value, extra={"source": self.settings.source, "error": error}
        )

    def _set_state(self, state: CameraState) -> None:
        with self._lock:
            changed = self._state is not state
            self._state = state
        if changed:
            log.info("camera %s", state.value, extra={"source": self.settings.source})

    # -- reader thread ------------------------------------------------------------------------
    def _read_loop(self, reader: _Reader) -> None:
        try:
            reader.source.open()
        except SourceError as exc:
            reader.outcome, reader.error = "failed", str(exc)
            reader.done.set()
            return
        reader.opened = True
        self._last_frame = time.monotonic()
        try:
            self._pump(reader)
        finally:
            reader.source.close()
            reader.done.set()

    def _pump(self, reader: _Reader) -> None:
        while reader.generation == self._generation and not self._stop.is_set():
            image = reader.source.read()
            if reader.generation != self._generation:
                return
            if image is None:
                reader.outcome = "ended"
                if reader.source.kind in (SourceKind.device, SourceKind.url):
                    reader.outcome, reader.error = "failed", "source stopped delivering frames"
                return
            reader.frames += 1
            self._last_frame = time.monotonic()
            if reader.frames == 1:
                self._set_state(CameraState.live)
            self._seq += 1
            frame = Frame(self._seq, crop(image, self.settings.roi), time.perf_counter_ns())
            self.slot.put(frame)
