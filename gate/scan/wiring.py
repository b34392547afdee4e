"""How ``gate run --source`` builds camera sources and their feedback (display, hooks)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gate.camera.settings import CameraSettings
from gate.feedback.display import Display, KioskInput
from gate.feedback.display_settings import DisplaySettings
from gate.feedback.hooks import CommandHooks, HookSettings
from gate.scan.camera_input import CameraSource
from gate.scan.settings import ScanSettings
from shared.errors import ConfigError

SOURCE_HELP = (
    "camera (GATE_CAMERA_SOURCE), a device (0, /dev/video0), a video file, "
    "a stream URL (rtsp://, http://) or a folder of images"
)
_CAMERA_LIKE = re.compile(r"^(\d+|/dev/video\d+|[a-z][a-z0-9+.-]*://.+)$", re.IGNORECASE)


def looks_like_camera(text: str) -> bool:
    """A device, a URL, or a file or folder that exists."""
    return bool(_CAMERA_LIKE.match(text)) or Path(text).exists()


def camera_source(text: str | None = None) -> CameraSource:
    """A camera source for ``text`` (default: GATE_CAMERA_SOURCE); GATE_SCAN_* for decoding."""
    try:
        camera = CameraSettings(source=text) if text is not None else CameraSettings()
        return CameraSource(camera, ScanSettings())
    except ValidationError as exc:
        raise ConfigError(f"bad GATE_CAMERA_* or GATE_SCAN_* setting:\n{exc}") from exc


def camera_feedback(sources: Sequence[Any]) -> list[Any]:
    """Hooks (GATE_HOOK_*) always; the kiosk page (GATE_DISPLAY_*) for every source, with the
    first camera's preview when there is one (it also takes keyboard-wedge scans)."""
    try:
        sinks: list[Any] = [CommandHooks(HookSettings())]
        cameras = [s for s in sources if isinstance(s, CameraSource)]
        display = DisplaySettings()
    except ValidationError as exc:
        raise ConfigError(
            f"bad GATE_DISPLAY_*, GATE_STAFF_PIN or GATE_HOOK_* setting:\n{exc}"
        ) from exc
    kiosk_only = any(isinstance(s, KioskInput) for s in sources)
    if display.enabled:
        camera = cameras[0].capture if cameras else None
        sinks.append(Display(display, camera=camera, required=kiosk_only))
    elif kiosk_only:
        raise ConfigError("--source kiosk needs the kiosk page: set GATE_DISPLAY_ENABLED=true")
    return sinks
