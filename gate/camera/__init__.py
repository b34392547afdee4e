"""Camera capture: sources, a latest-frame slot that drops stale frames, and a watchdog."""

from gate.camera.capture import CameraState, CameraStatus, Capture
from gate.camera.frame_readers import SourceError, SourceKind, classify, open_source
from gate.camera.settings import CameraSettings
from gate.camera.slot import Frame, FrameSlot

__all__ = [
    "CameraSettings",
    "CameraState",
    "CameraStatus",
    "Capture",
    "Frame",
    "FrameSlot",
    "SourceError",
    "SourceKind",
    "classify",
    "open_source",
]
