"""Every camera, scan, display and hook setting is documented and read from its GATE_ prefix."""

from __future__ import annotations

import pytest
from pydantic_settings import BaseSettings

from gate.app import looks_like_camera
from gate.camera.settings import CameraSettings
from gate.feedback.display_settings import DisplaySettings
from gate.feedback.hooks import HookSettings
from gate.scan.settings import ScanSettings

CLASSES: list[type[BaseSettings]] = [CameraSettings, ScanSettings, DisplaySettings, HookSettings]


@pytest.mark.parametrize("cls", CLASSES)
def test_every_setting_has_a_description(cls: type[BaseSettings]) -> None:
    missing = [name for name, f in cls.model_fields.items() if not f.description]
    assert missing == []


def test_settings_come_from_their_prefixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_CAMERA_SOURCE", "rtsp://door-cam/1")
    monkeypatch.setenv("GATE_CAMERA_ROI", "0.1,0.1,0.8,0.8")
    monkeypatch.setenv("GATE_SCAN_DECODER", "zbar")
    monkeypatch.setenv("GATE_DISPLAY_PORT", "8099")
    monkeypatch.setenv("GATE_HOOK_ON_ADMIT", "relay open")
    assert CameraSettings().source == "rtsp://door-cam/1"
    assert CameraSettings().roi == (0.1, 0.1, 0.8, 0.8)
    assert ScanSettings().decoder == "zbar"
    assert DisplaySettings().port == 8099
    assert HookSettings().on_admit == "relay open"


def test_a_bad_decoder_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_SCAN_DECODER", "opencv")
    with pytest.raises(ValueError, match="decoder"):
        ScanSettings()


def test_what_counts_as_a_camera_source(tmp_path: object) -> None:
    assert looks_like_camera("0") and looks_like_camera("/dev/video1")
    assert looks_like_camera("rtsp://cam/stream") and looks_like_camera(str(tmp_path))
    assert not looks_like_camera("no-such-file.avi") and not looks_like_camera("stdn")
