"""Both decoders on the same generated frames: tickets, inverted codes, two codes, non-tickets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from gate.scan.decode import decode_frame, make_decoder
from gate.scan.settings import ScanSettings
from shared.ticket import generate_private_key, sign_ticket
from tessera_dev.synth import CONDITIONS, background, qr_image, render_frame

DECODERS = ["zxing", "zbar"]
KEY = generate_private_key()
TICKET = sign_ticket(KEY, event_id=7, ticket_id=1001, nonce=42)
OTHER = sign_ticket(KEY, event_id=7, ticket_id=1002, nonce=43)


def _scene(text: str | None, condition: str, size: tuple[int, int] = (1280, 720)) -> np.ndarray:
    rng = np.random.default_rng(3)
    cond = next(c for c in CONDITIONS if c.name == condition)
    return render_frame(text, cond, background(*size, rng), rng)


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize(
    "condition", ["clean", "small", "perspective", "rotation", "low_light", "screen"]
)
def test_ticket_is_read_under_moderate_conditions(decoder: str, condition: str) -> None:
    texts = decode_frame(_scene(TICKET, condition), make_decoder(decoder), ScanSettings())
    assert texts == [TICKET]


@pytest.mark.parametrize("decoder", DECODERS)
def test_inverted_code_on_a_dark_mode_phone_is_read(decoder: str) -> None:
    frame = _scene(TICKET, "screen_dark")
    assert decode_frame(frame, make_decoder(decoder), ScanSettings()) == [TICKET]


@pytest.mark.parametrize("decoder", DECODERS)
def test_inversion_can_be_switched_off(decoder: str) -> None:
    frame = _scene(TICKET, "screen_dark")
    settings = ScanSettings(try_invert=False)
    assert decode_frame(frame, make_decoder(decoder, try_invert=False), settings) == []


@pytest.mark.parametrize("decoder", DECODERS)
def test_two_codes_in_one_frame_are_both_read_left_to_right(decoder: str) -> None:
    frame = np.full((720, 1280), 200, np.uint8)
    left, right = qr_image(OTHER, 6), qr_image(TICKET, 6)
    frame[100 : 100 + left.shape[0], 80 : 80 + left.shape[1]] = left
    frame[100 : 100 + right.shape[0], 700 : 700 + right.shape[1]] = right
    assert decode_frame(frame, make_decoder(decoder), ScanSettings()) == [OTHER, TICKET]


@pytest.mark.parametrize("decoder", DECODERS)
def test_a_url_qr_is_decoded_as_plain_text(decoder: str) -> None:
    frame = cv2.cvtColor(qr_image("https://example.org/party", 8), cv2.COLOR_GRAY2BGR)
    frame = cv2.copyMakeBorder(frame, 100, 100, 100, 100, cv2.BORDER_CONSTANT, value=(90,) * 3)
    assert decode_frame(frame, make_decoder(decoder), ScanSettings()) == [
        "https://example.org/party"
    ]


@pytest.mark.parametrize("decoder", DECODERS)
def test_frame_without_a_code_gives_nothing(decoder: str) -> None:
    assert decode_frame(_scene(None, "clean"), make_decoder(decoder), ScanSettings()) == []


def test_small_distant_code_needs_the_full_frame() -> None:
    """A code too small for the downscaled pass is still found at full resolution."""
    frame = np.full((1080, 1920), 180, np.uint8)
    code = qr_image(TICKET, 2)
    frame[500 : 500 + code.shape[0], 900 : 900 + code.shape[1]] = code
    decoder = make_decoder("zxing")
    assert decode_frame(frame, decoder, ScanSettings(full_frame=False)) == []
    assert decode_frame(frame, decoder, ScanSettings()) == [TICKET]


def test_unknown_decoder_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown decoder"):
        make_decoder("opencv")
