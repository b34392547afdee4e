"""The camera checks: a rendered test card through the real camera path, and the live feed.

**Test card** (``camera``): a T1 code signed by a key made for this drill only (event 0, ticket
0), drawn on a white card in the middle of the region of interest, in frames of the camera's
size, written by OpenCV as a one-second MJPG video at the camera's rate. The video is replayed
through ``CameraSource``, the path `gate run --source FILE` takes: the capture thread, the
newest-frame slot (a slow decoder drops frames, as it would live), the decoder with GATE_SCAN_*.
Each text read is judged by ``verify_code`` (the pipeline's first, pure step): it must be
refused as an unknown key, and its signature must check out with the drill's key, so a misread
cannot pass for a read. Nothing reaches the journal: the pipeline is never called. Figures: the
share of frames read, and frame-to-decision (capture to verdict, the journal's commit aside).

**Live feed** (``camera_feed``): the camera the gate scans with delivers frames, how many a
second. In the gate (the kiosk's button) that is the running capture; from `gate drill`, the
running gate's kiosk page (``/api/state``, on this machine) or, when no gate runs, the source
opened for a moment. A file or folder source has no live feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import cv2
import httpx
import numpy as np
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gate.camera.capture import Capture
from gate.camera.frame_readers import SourceKind, classify
from gate.camera.settings import CameraSettings
from gate.checkin.decide import Clock, CodeRejectedError, verify_code
from gate.drill.board import Item, host_of
from gate.scan.camera_input import CameraSource
from gate.settings import GateSettings
from gate.store.db import Store
from shared.errors import RejectReason, TicketRejected
from shared.ticket import generate_private_key, key_id, parse_ticket, sign_ticket, verify_signature

CARD_SECONDS = 1.0
DEFAULT_SIZE = (640, 480)
DEFAULT_FPS = 30.0
RED_BELOW, AMBER_BELOW = 0.5, 0.9  # share of frames the card was read in
SLOW_MS = 250.0  # frame-to-decision beyond this (median) is amber
FEED_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Card:
    text: str
    keyring: dict[bytes, Ed25519PublicKey]  # the drill's own key: the only one that signed it


def make_card() -> Card:
    """A T1 code no gate accepts: signed by a key made now and forgotten after the drill."""
    key = generate_private_key()
    text = sign_ticket(key, event_id=0, ticket_id=0, nonce=int.from_bytes(os.urandom(4)))
    return Card(text, {key_id(key.public_key()): key.public_key()})


def render_frames(
    text: str, size: tuple[int, int], roi: tuple[float, float, float, float] | None, count: int
) -> list[np.ndarray]:
    """``count`` BGR frames of ``size``: the code on a white card centred in the ROI, its side
    45 % of the ROI's height, on grey, with a little sensor noise (each frame differs)."""
    width, height = size
    x, y, w, h = roi or (0.0, 0.0, 1.0, 1.0)
    modules = np.pad(np.array([list(row) for row in segno.make(text, error="m").matrix]), 4)
    side = max(modules.shape[0] * 2, int(0.45 * h * height))
    code = cv2.resize(
        (255 - modules * 255).astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST
    )
    scene = np.full((height, width), 96, np.uint8)
    cx, cy = int((x + w / 2) * width), int((y + h / 2) * height)
    pad = side // 10
    top, left = max(0, cy - side // 2), max(0, cx - side // 2)
    scene[max(0, top - pad) : top + side + pad, max(0, left - pad) : left + side + pad] = 255
    scene[top : top + side, left : left + side] = code[: height - top, : width - left]
    rng = np.random.default_rng()
    frames = []
    for _ in range(count):
        noisy = scene.astype(np.int16) + rng.normal(0, 3, scene.shape).astype(np.int16)
        frames.append(cv2.cvtColor(np.clip(noisy, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR))
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """MJPG in AVI (what headless OpenCV builds write and read); ValueError if it cannot."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise ValueError(f"OpenCV cannot write {path.name}")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()


@dataclass
class Replay:
    """What the test card's replay saw."""

    taken: int = 0  # frames the decoder took from the slot
    read: set[int] = field(default_factory=set)  # seqs of frames the card was read in
    misread: int = 0  # texts that were not the card
    ms: list[float] = field(default_factory=list)  # frame-to-decision per read
    dropped: int = 0
    timed_out: bool = False


async def check_camera(settings: GateSettings, store: Store, budget: float) -> Item:
    """The test card through capture, decode and verify; see the module docstring."""
    camera = settings.camera
    fps = camera.fps or DEFAULT_FPS
    size = (camera.width or DEFAULT_SIZE[0], camera.height or DEFAULT_SIZE[1])
    card = make_card()
    count = max(10, round(fps * CARD_SECONDS))
    with tempfile.TemporaryDirectory(prefix="tessera-drill-") as folder:
        video = Path(folder) / "card.avi"
        frames = await asyncio.to_thread(render_frames, card.text, size, camera.roi, count)
        try:
            await asyncio.to_thread(write_video, video, frames, fps)
        except ValueError as exc:
            return Item("camera", "fail", "no test card", str(exc))
        replayed = camera.model_copy(
            update={"source": str(video), "at_end": "stop", "pace": True, "fps": fps}
        )
        replay = await _replay(replayed, settings, store, card, budget)
    return _judge(replay, count)


async def _replay(
    camera: CameraSettings, settings: GateSettings, store: Store, card: Card, budget: float
) -> Replay:
    replay = Replay()

    def took(_: object) -> None:
        replay.taken += 1

    source = CameraSource(camera, settings.scan, on_frame=took)
    await source.start()
    try:
        texts = cast(AsyncGenerator[str, None], source.texts())  # closed here, not by the GC
        async with asyncio.timeout(budget), contextlib.aclosing(texts):
            async for text in texts:
                frame = source.last_frame
                assert frame is not None
                if _is_card(text, card, store, settings):
                    replay.read.add(frame.seq)
                    replay.ms.append((time.perf_counter_ns() - frame.captured_ns) / 1e6)
                else:
                    replay.misread += 1
    except TimeoutError:
        replay.timed_out = True
    finally:
        await source.stop()
    replay.dropped = source.capture.status().dropped
    return replay


def _is_card(text: str, card: Card, store: Store, settings: GateSettings) -> bool:
    """Judged as a scan's first step would be (refused: unknown key), and bit-exact (its
    signature checks out with the drill's own key)."""
    clock = Clock(time.time(), settings.clock_tolerance, settings.rotation_tolerance)
    try:
        verify_code(text, store.keys, store.events, clock)
    except CodeRejectedError as exc:
        if exc.reason is not RejectReason.unknown_key:
            return False
    else:
        return False  # no gate knows the drill's key: a pass would be a bug worth a red
    try:
        verify_signature(parse_ticket(text), card.keyring)
    except TicketRejected:
        return False
    return True


def _judge(replay: Replay, count: int) -> Item:
    read = len(replay.read)
    taken = max(replay.taken, 1)
    if not read:
        why = "the decoder read no frame of it: check GATE_SCAN_* and GATE_CAMERA_ROI"
        return Item("camera", "fail", f"test card read in 0 of {count} frames", why)
    p50, worst = statistics.median(replay.ms), max(replay.ms)
    figure = (
        f"{read}/{replay.taken} frames read, {p50:.0f} ms frame-to-decision (max {worst:.0f})"
        + (f", {replay.dropped} dropped" if replay.dropped else "")
    )
    rate = read / taken
    if replay.misread:
        return Item("camera", "fail", figure, f"{replay.misread} misread: the decoder is unsound")
    if rate < RED_BELOW:
        return Item("camera", "fail", figure, "the test card was missed in most frames")
    if rate < AMBER_BELOW or p50 > SLOW_MS:
        return Item("camera", "warn", figure, "slow or patchy: people will wait at the door")
    why = "rendered card, decoded and verified, never journaled"
    if replay.timed_out:
        return Item("camera", "warn", figure, "the replay did not finish in time")
    return Item("camera", "ok", figure, why)


async def check_feed(settings: GateSettings, live: Capture | None, budget: float) -> Item:
    """The camera the gate scans with delivers frames (see the module docstring)."""
    if live is not None:
        return await _sample(lambda: _status_of(live), live.settings.source, budget)
    source = settings.camera.source
    if classify(source) in (SourceKind.file, SourceKind.folder):
        return Item("camera_feed", "skip", "a replayed source", "a file or folder has no live feed")
    running = await _kiosk_camera(settings)
    if running is not None:
        return await _sample(lambda: _kiosk_camera(settings), source, budget)
    return await _own_sample(settings.camera, budget)


_StatusRead = Callable[[], Awaitable[dict[str, Any] | None]]


async def _status_of(capture: Capture) -> dict[str, Any] | None:
    return capture.status().as_dict()


async def _kiosk_camera(settings: GateSettings) -> dict[str, Any] | None:
    """The running gate's camera status from its kiosk page on this machine (None: no page or
    no camera there)."""
    display = settings.display
    if not display.enabled or not display.port:
        return None
    host = "127.0.0.1" if display.host in ("0.0.0.0", "", "::") else display.host  # noqa: S104
    url = f"http://{host}:{display.port}/api/state"
    try:
        async with httpx.AsyncClient(timeout=1.0) as http:
            state = (await http.get(url)).json()
        camera = state["status"]["camera"]
    except (httpx.HTTPError, OSError, ValueError, KeyError, TypeError):
        return None
    return camera if isinstance(camera, dict) else None


async def _sample(read: _StatusRead, source: str, budget: float) -> Item:
    """Two readings of the running gate's camera status a second apart: state, frame rate."""
    first = await read()
    started = time.monotonic()
    await asyncio.sleep(min(FEED_SECONDS, budget / 3))
    last = await read()
    if not first or not last:
        return Item("camera_feed", "fail", "no camera", "the running gate reads no camera")
    fps = (int(last["frames"]) - int(first["frames"])) / (time.monotonic() - started)
    error = _public(str(last.get("last_error") or ""), source)
    return _feed_item(str(last["state"]), fps, error, "running gate")


async def _own_sample(camera: CameraSettings, budget: float) -> Item:
    """Open the source for a moment (no gate runs here), count its frames for a second."""
    capture = Capture(camera.model_copy(update={"at_end": "stop"}))
    capture.start()
    try:
        await asyncio.to_thread(capture.slot.take, budget * 0.6)  # the first frame, or none
        first, started = capture.slot.captured, time.monotonic()
        if first:
            await asyncio.sleep(min(FEED_SECONDS, budget * 0.25))
        fps = (capture.slot.captured - first) / max(time.monotonic() - started, 1e-3)
        status = capture.status()
    finally:
        await asyncio.to_thread(capture.stop, 2.0)
    state = status.state.value if first else "no frame"
    where = host_of(camera.source) if classify(camera.source) is SourceKind.url else camera.source
    return _feed_item(state, fps, _public(status.last_error or "", camera.source), where)


def _public(error: str, source: str) -> str:
    """An error line without the source's URL (it may carry a user and password)."""
    return error.replace(source, host_of(source)) if "://" in source else error


def _feed_item(state: str, fps: float, error: str, where: str) -> Item:
    figure = f"{state}, {fps:.1f} fps ({where})"
    if state != "live" or fps <= 0:
        return Item("camera_feed", "fail", figure, error or "the camera delivers no frames")
    if fps < 5:
        return Item("camera_feed", "warn", figure, "a slow camera misses codes held up briefly")
    return Item("camera_feed", "ok", figure, "")
