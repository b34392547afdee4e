"""The drill's camera checks through the real camera code: the rendered test card written by
OpenCV, replayed through the capture thread and the decoders and judged by ``verify_code``
(never journaled); the live feed from a real MJPEG stream, a running capture and a running
gate's kiosk page."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from gate.camera import CameraSettings, Capture
from gate.drill import card
from gate.feedback.display import Display
from gate.feedback.display_backend import PipelineBackend
from gate.feedback.display_settings import DisplaySettings
from gate.scan.settings import ScanSettings
from gate.settings import GateSettings
from tessera_dev.synth import write_video
from tests.gate.camera.mjpeg_server import MjpegServer
from tests.gate.feedback.realgate import RealGate, make_gate, tickets

NO_PAGE = DisplaySettings(enabled=False)


async def _rows(gate: RealGate) -> tuple[int, int]:
    journal = await gate.store.conn.execute_fetchall("SELECT count(*) FROM journal")
    inside = await gate.store.conn.execute_fetchall("SELECT count(*) FROM entry_state")
    return int(next(iter(journal))[0]), int(next(iter(inside))[0])


@pytest.mark.parametrize(
    ("camera", "scan"),
    [
        (CameraSettings(), ScanSettings()),
        (CameraSettings(width=1280, height=720, fps=15, roi=(0.5, 0.4, 0.5, 0.6)), ScanSettings()),
        (CameraSettings(), ScanSettings(decoder="zbar", try_invert=False)),
    ],
    ids=["default", "720p-roi", "zbar"],
)
async def test_the_test_card_is_read_through_the_camera_path_and_never_journaled(
    tmp_path: Path, camera: CameraSettings, scan: ScanSettings
) -> None:
    gate = await make_gate(tmp_path, tickets(2))
    settings = GateSettings(data_dir=tmp_path, parts=[camera, scan, NO_PAGE])
    try:
        item = await card.check_camera(settings, gate.store, budget=20)
        rows = await _rows(gate)
    finally:
        await gate.store.close()
    frames = round((camera.fps or 30) * card.CARD_SECONDS)
    assert item.status == "ok", item
    found = re.fullmatch(
        r"(\d+)/(\d+) frames read, \d+ ms frame-to-decision \(max \d+\)(, \d+ dropped)?",
        item.figure,
    )
    assert found, item.figure
    read, taken = int(found.group(1)), int(found.group(2))
    assert taken <= frames and read >= 0.9 * taken
    assert rows == (0, 0), "a drill never writes the journal or the entry state"


async def test_a_card_the_camera_cannot_resolve_is_red(tmp_path: Path) -> None:
    """A camera set to 64x48 pixels cannot show a whole ticket code: read in no frame."""
    gate = await make_gate(tmp_path, tickets(1))
    settings = GateSettings(data_dir=tmp_path, parts=[CameraSettings(width=64, height=48), NO_PAGE])
    try:
        item = await card.check_camera(settings, gate.store, budget=20)
    finally:
        await gate.store.close()
    assert item.status == "fail" and item.figure == "test card read in 0 of 30 frames", item


def test_the_card_is_a_code_no_gate_accepts() -> None:
    """Signed by a key made for this drill (a new one each time), for event 0 and ticket 0."""
    from shared.ticket import parse_ticket

    one, two = card.make_card(), card.make_card()
    ticket = parse_ticket(one.text)
    assert (ticket.event_id, ticket.ticket_id) == (0, 0)
    assert one.keyring.keys() != two.keyring.keys() and ticket.kid in one.keyring


async def test_a_live_stream_is_green_with_its_rate_and_a_dead_one_red(tmp_path: Path) -> None:
    image = np.full((240, 320, 3), 120, np.uint8)
    with MjpegServer(image, frames=1000) as server:
        settings = GateSettings(parts=[CameraSettings(source=server.url), NO_PAGE])
        item = await card.check_feed(settings, None, budget=5)
    assert item.status == "ok", item
    fps = re.fullmatch(r"live, ([\d.]+) fps \(127\.0\.0\.1:\d+\)", item.figure)
    assert fps and float(fps.group(1)) > 5, item.figure
    secret = "rtsp://admin:hunter2@127.0.0.1:9/stream"
    dead = await card.check_feed(
        GateSettings(parts=[CameraSettings(source=secret), NO_PAGE]), None, budget=3
    )
    assert dead.status == "fail" and dead.figure == "no frame, 0.0 fps (127.0.0.1:9)", dead
    assert "hunter2" not in dead.figure + dead.detail


async def test_the_running_cameras_feed_green_live_red_when_it_ended(tmp_path: Path) -> None:
    video = tmp_path / "door.avi"
    write_video(video, [np.full((240, 320, 3), 90, np.uint8)] * 300, fps=30)  # no reopen now
    live = Capture(CameraSettings(source=str(video), at_end="reopen", backoff_initial=0.05))
    live.start()
    try:
        item = await card.check_feed(GateSettings(), live, budget=5)
    finally:
        live.stop()
    assert (
        item.status == "ok" and item.figure.startswith("live, ") and "(running gate)" in item.figure
    )
    ended = await card.check_feed(GateSettings(), live, budget=3)
    assert ended.status == "fail" and ended.figure.startswith("stopped, "), ended


async def test_from_the_command_line_the_feed_is_read_from_the_running_gates_page(
    tmp_path: Path,
) -> None:
    """`gate drill` beside a running gate: the camera is the gate's (a second open of a V4L2
    device would fail), so its figures come from the kiosk page on this machine."""
    video = tmp_path / "door.avi"
    write_video(video, [np.full((240, 320, 3), 90, np.uint8)] * 60, fps=30)
    live = Capture(CameraSettings(source=str(video), at_end="reopen", backoff_initial=0.05))
    live.start()
    gate = await make_gate(tmp_path, tickets(1))
    page = Display(DisplaySettings(port=0), PipelineBackend(gate.pipeline), live)
    await page.start()
    try:
        port = int(page.url.rsplit(":", 1)[1].strip("/"))
        device = CameraSettings(source="/dev/video93")  # what this gate's settings name
        settings = GateSettings(parts=[device, DisplaySettings(port=port)])
        item = await card.check_feed(settings, None, budget=5)
    finally:
        await page.stop()
        live.stop()
        await gate.store.close()
    assert item.status == "ok" and item.figure.endswith("fps (running gate)"), item
