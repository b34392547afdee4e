"""Capture through real sources: files written with OpenCV, image folders, an HTTP MJPEG stream."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from gate.camera import CameraSettings, CameraState, Capture, Frame, FrameSlot, classify
from gate.camera.capture import crop
from tessera_dev.synth import write_video
from tests.gate.camera.mjpeg_server import MjpegServer


def _wait_for(check: Callable[[], bool], limit: float = 20.0) -> None:
    """Poll until ``check()`` holds; the limit only stops a broken test from hanging."""
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.02)


def _frames(count: int, size: tuple[int, int] = (320, 240)) -> list[np.ndarray]:
    return [np.full((size[1], size[0], 3), i * 5 % 255, np.uint8) for i in range(count)]


def test_slot_keeps_only_the_newest_frame_and_counts_dropped() -> None:
    slot = FrameSlot()
    for seq in range(1, 4):
        slot.put(Frame(seq, np.zeros((2, 2), np.uint8), seq))
    taken = slot.take(0)
    assert taken is not None and taken.seq == 3
    assert slot.dropped == 2 and slot.take(0) is None
    assert slot.peek() is taken


def test_video_file_replays_every_frame_then_reports_ended(tmp_path: Path) -> None:
    video = tmp_path / "door.avi"
    assert write_video(video, _frames(30), fps=30) == 30
    capture = Capture(CameraSettings(source=str(video), fps=200))
    seen: list[int] = []
    capture.start()
    while not (capture.finished.is_set() and capture.slot.peek() is seen_last(seen, capture)):
        frame = capture.slot.take(0.05)
        if frame is not None:
            seen.append(frame.seq)
    status = capture.status()
    assert status.state is CameraState.ended and status.kind == "file"
    assert status.frames == 30 and len(seen) + status.dropped == 30


def seen_last(seen: list[int], capture: Capture) -> Frame | None:
    latest = capture.slot.peek()
    return latest if latest is not None and seen and seen[-1] == latest.seq else None


def test_ended_source_is_reported_and_reopened(tmp_path: Path) -> None:
    video = tmp_path / "loop.avi"
    write_video(video, _frames(5), fps=30)
    settings = CameraSettings(source=str(video), at_end="reopen", backoff_initial=0.05)
    capture = Capture(settings)
    capture.start()
    try:
        _wait_for(lambda: capture.status().reopens >= 2)
        assert capture.status().frames >= 10
        assert not capture.finished.is_set()
    finally:
        capture.stop()
    assert capture.status().state is CameraState.stopped


def test_unplugged_device_is_reported_with_its_error_and_retried() -> None:
    capture = Capture(CameraSettings(source="/dev/video97", backoff_initial=0.05, backoff_max=0.1))
    capture.start()
    try:
        _wait_for(lambda: capture.status().reopens >= 2)
        status = capture.status()
        assert status.state in (CameraState.failed, CameraState.reopening)
        assert status.last_error is not None and "/dev/video97" in status.last_error
    finally:
        capture.stop()


def test_stalled_stream_is_detected_and_reopened() -> None:
    """A hung IP camera keeps the connection open but sends nothing: the watchdog reopens it."""
    image = np.full((240, 320, 3), 90, np.uint8)
    with MjpegServer(image, frames=5, then="stall") as server:
        settings = CameraSettings(source=server.url, stall_timeout=0.6, backoff_initial=0.05)
        capture = Capture(settings)
        capture.start()
        try:
            _wait_for(lambda: capture.status().reopens >= 1 and server.connections >= 2)
            assert "no frame" in (capture.status().last_error or "")
            _wait_for(lambda: capture.status().frames >= 6)
        finally:
            capture.stop()


def test_stream_that_closes_is_reopened() -> None:
    with MjpegServer(np.full((120, 160, 3), 30, np.uint8), frames=3, then="close") as server:
        capture = Capture(CameraSettings(source=server.url, backoff_initial=0.05))
        capture.start()
        try:
            _wait_for(lambda: server.connections >= 2 and capture.status().frames >= 4)
            assert capture.status().kind == "url"
        finally:
            capture.stop()


def test_folder_of_images_is_a_source(tmp_path: Path) -> None:
    for i, image in enumerate(_frames(4)):
        cv2.imwrite(str(tmp_path / f"{i:03}.png"), image)
    (tmp_path / "notes.txt").write_text("not an image")
    capture = Capture(CameraSettings(source=str(tmp_path), pace=False))
    capture.start()
    assert capture.finished.wait(20)
    assert capture.status().frames == 4 and capture.status().kind == "folder"


def test_empty_folder_is_a_clear_failure(tmp_path: Path) -> None:
    capture = Capture(CameraSettings(source=str(tmp_path), backoff_initial=0.05))
    capture.start()
    try:
        _wait_for(lambda: capture.status().last_error is not None)
        assert "holds no images" in (capture.status().last_error or "")
    finally:
        capture.stop()


def test_region_of_interest_crops_frames(tmp_path: Path) -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    assert crop(image, (0.25, 0.5, 0.5, 0.5)).shape == (50, 100, 3)
    assert crop(image, None) is image


@pytest.mark.parametrize(
    ("text", "kind"),
    [("0", "device"), ("/dev/video2", "device"), ("rtsp://cam/1", "url"), ("x.avi", "file")],
)
def test_source_kinds(text: str, kind: str) -> None:
    assert classify(text).value == kind


def test_settings_reject_a_bad_region() -> None:
    with pytest.raises(ValueError, match="roi"):
        CameraSettings(roi="0.5,0.5,0.9,0.2")  # type: ignore[arg-type]
    assert CameraSettings(roi="0,0,1,1").roi == (0, 0, 1, 1)  # type: ignore[arg-type]
