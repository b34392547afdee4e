"""Frame sources: a camera device, a video file, a stream URL or a folder of images.

Every source has the same three calls: ``open()`` (raises ``SourceError`` with a readable
reason), ``read()`` (an image, or ``None`` when the source ended or failed) and ``close()``.
Files and folders are paced to their frame rate by default so a replay behaves like a camera.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from gate.camera.settings import CameraSettings
from shared.errors import TesseraError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm"})
_DEVICE = re.compile(r"^(\d+|/dev/video\d+)$")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
OPEN_TIMEOUT_MS = 5000
_READ_TIMEOUT_MS = 3000


class SourceError(TesseraError):
    """A frame source cannot be opened; the message says which and why."""


class SourceKind(StrEnum):
    device = "device"
    file = "file"
    url = "url"
    folder = "folder"


def classify(source: str) -> SourceKind:
    """What kind of source a ``--source`` text names (no I/O beyond a stat)."""
    text = source.strip()
    if _DEVICE.match(text):
        return SourceKind.device
    if _URL.match(text):
        return SourceKind.url
    if Path(text).is_dir():
        return SourceKind.folder
    return SourceKind.file


class FrameSource(Protocol):
    kind: SourceKind
    label: str

    def open(self) -> None: ...
    def read(self) -> np.ndarray | None: ...
    def close(self) -> None: ...


class _Pacer:
    """Sleeps so that frames come out no faster than ``fps`` (``None``/0 = as fast as possible)."""

    def __init__(self, fps: float | None) -> None:
        self.period = 1.0 / fps if fps else 0.0
        self._due = 0.0

    def wait(self) -> None:
        if not self.period:
            return
        now = time.monotonic()
        if self._due > now:
            time.sleep(self._due - now)
        self._due = max(self._due, now) + self.period if self._due else now + self.period


@dataclass
class VideoCaptureSource:
    """A device, file or URL through OpenCV ``VideoCapture``."""

    kind: SourceKind
    label: str
    settings: CameraSettings

    def __post_init__(self) -> None:
        self._cap: cv2.VideoCapture | None = None
        self._pacer = _Pacer(None)

    def open(self) -> None:
        self.close()
        cap = self._make_capture()
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.kind.value} {self.label!r}")
        self._cap = cap
        if self.kind is SourceKind.file and self.settings.pace:
            fps = self.settings.fps or cap.get(cv2.CAP_PROP_FPS) or 25.0
            self._pacer = _Pacer(fps)

    def _make_capture(self) -> cv2.VideoCapture:
        if self.kind is SourceKind.device:
            index = (
                int(self.label) if self.label.isdigit() else int(self.label[len("/dev/video") :])
            )
            cap = cv2.VideoCapture(index)
            self._apply_device_settings(cap)
            return cap
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            OPEN_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            _READ_TIMEOUT_MS,
        ]
        return cv2.VideoCapture(self.label, cv2.CAP_FFMPEG, params)

    def _apply_device_settings(self, cap: cv2.VideoCapture) -> None:
        s = self.settings
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        if s.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, s.width)
        if s.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, s.height)
        if s.fps:
            cap.set(cv2.CAP_PROP_FPS, s.fps)

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            return None
        self._pacer.wait()
        ok, image = self._cap.read()
        return image if ok and image is not None else None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


@dataclass
class FolderSource:
    """Images in a folder, in name order, as frames (at ``fps``, default 10)."""

    label: str
    settings: CameraSettings
    kind: SourceKind = SourceKind.folder

    def __post_init__(self) -> None:
        self._files: list[Path] = []
        self._pacer = _Pacer(None)

    def open(self) -> None:
        folder = Path(self.label)
        if not folder.is_dir():
            raise SourceError(f"image folder {self.label!r} does not exist")
        self._files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise SourceError(f"image folder {self.label!r} holds no images")
        self._files.reverse()
        self._pacer = _Pacer((self.settings.fps or 10.0) if self.settings.pace else None)

    def read(self) -> np.ndarray | None:
        while self._files:
            path = self._files.pop()
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                self._pacer.wait()
                return image
        return None

    def close(self) -> None:
        self._files = []


def open_source(settings: CameraSettings) -> FrameSource:
    """The source object for ``settings.source`` (not yet opened)."""
    text = settings.source.strip()
    kind = classify(text)
    if kind is SourceKind.folder:
        return FolderSource(label=text, settings=settings)
    return VideoCaptureSource(kind=kind, label=text, settings=settings)
