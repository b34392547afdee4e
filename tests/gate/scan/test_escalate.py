"""Escalation: where zxing-cpp located a code but could not read it, the gate tries harder on
that spot; a frame where nothing was located costs nothing more. Frames are rendered by the
bench's own hard-set synthesiser (tessera_dev.synth.HARD) and JPEG-compressed as a camera's."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.scan import decode as decode_module
from gate.scan.decode import decode_frame, make_decoder
from gate.scan.escalate import Detection, looks_like_ticket, rescue
from gate.scan.settings import ScanSettings
from shared.base45 import b45encode
from shared.ticket import sign_ticket
from tessera_dev.synth import HARD, background, render_frame

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # fixed: the same frames each run
QR = zxingcpp.barcode_formats_from_str("QRCode")
BY_NAME = {c.name: c for c in HARD}


def _frames(name: str, count: int) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(11)
    bg = background(1280, 720, rng)
    shots = []
    for i in range(count):
        text = sign_ticket(KEY, event_id=1, ticket_id=i + 1, nonce=i)
        frame = render_frame(text, BY_NAME[name], bg, rng)
        jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
        shots.append((text, cv2.imdecode(jpeg, cv2.IMREAD_COLOR)))
    return shots


def _raw(frame: np.ndarray) -> list[str]:
    return [b.text for b in zxingcpp.read_barcodes(frame, formats=QR) if b.valid]


@pytest.mark.parametrize("name", ["glare_spots", "cracked", "curved", "steep", "tiny"])
def test_escalation_reads_more_than_raw_zxing_and_nothing_wrong(name: str) -> None:
    decoder, settings = make_decoder("zxing"), ScanSettings()
    raw = ours = 0
    for text, frame in _frames(name, 16):
        raw += text in _raw(frame)
        got = decode_frame(frame, decoder, settings)
        assert got in ([], [text])  # a rescue never returns another text
        ours += got == [text]
    assert ours > raw, (ours, raw)


@pytest.mark.parametrize("name", [c.name for c in HARD])
def test_the_gate_never_reads_less_than_raw_zxing(name: str) -> None:
    """Even without escalation: the full-frame pass is raw zxing-cpp's own read."""
    decoder, settings = make_decoder("zxing"), ScanSettings(escalate=False)
    for text, frame in _frames(name, 6):
        if text in _raw(frame):
            assert decode_frame(frame, decoder, settings) == [text]


def test_a_frame_where_nothing_was_located_never_escalates(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("escalated on an empty frame")

    monkeypatch.setattr(decode_module, "rescue", refuse)
    rng = np.random.default_rng(5)
    bg = background(1280, 720, rng)
    for cond in HARD:
        frame = render_frame(None, cond, bg, rng)
        assert decode_frame(frame, make_decoder("zxing"), ScanSettings()) == []


def test_only_ticket_shaped_texts_end_a_rescue() -> None:
    t1 = sign_ticket(KEY, event_id=1, ticket_id=7, nonce=7)
    assert looks_like_ticket(t1)
    assert looks_like_ticket("T2:" + b45encode(b"\x02" + bytes(194)))
    for text in ("", "T1:", "T1:ABC", t1[:-3], "T3:" + t1[3:], "https://example.org", t1 + "00"):
        assert not looks_like_ticket(text)


def test_a_rescue_is_bounded_by_its_budget() -> None:
    """Detections of pure noise: every variant fails, and the rescue gives up in time."""
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 255, (720, 1280), dtype=np.uint8)
    corners = np.array([[100, 100], [500, 100], [500, 500], [100, 500]], np.float32)
    misses = [Detection(corners + 600 * i) for i in range(2)] + [Detection(corners)] * 5
    assert rescue(noise, misses, budget_ms=0) is None  # no time: not a single read
    assert rescue(noise, misses) is None
