"""The latest-frame slot between the capture thread and the scanner.

Only the newest frame is kept: when the capture thread puts a frame that nobody took, the older
one is dropped and counted. So a slow decoder never works through a stale backlog; it always
sees what the camera sees now (frigate does the same with a one-slot queue).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured image. ``captured_ns`` is ``time.perf_counter_ns()`` right after the read."""

    seq: int
    image: np.ndarray
    captured_ns: int


class FrameSlot:
    """A one-frame mailbox: ``put`` never blocks, ``take`` waits for a frame newer than the last."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._latest: Frame | None = None
        self.dropped = 0
        self.delivered = 0
        self.captured = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._latest = frame
            self.captured += 1
            self._cond.notify_all()

    def take(self, timeout: float | None = None) -> Frame | None:
        """The newest unseen frame, or ``None`` if none arrived within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._frame is None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            frame, self._frame = self._frame, None
            self.delivered += 1
            return frame

    def peek(self) -> Frame | None:
        """The most recent frame, taken or not (for the preview); never consumes it."""
        with self._cond:
            return self._latest
