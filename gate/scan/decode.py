"""QR decoding of camera frames, with pyzbar or zxing-cpp behind one small interface.

``decode_frame`` is pure and blocking (call it through ``asyncio.to_thread``; both libraries
release the GIL in their C code): grayscale, a downscaled pass first because it is cheap and
finds most codes held near the camera, then the full frame for small or distant codes, each
pass also reading inverted (light-on-dark) codes, which phone dark modes produce. A code
zxing-cpp located but could not read is then tried harder (``gate.scan.escalate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import zxingcpp
from pyzbar import pyzbar

from gate.scan.escalate import Detection, detections, rescue
from gate.scan.settings import ScanSettings

_QR_ONLY = zxingcpp.barcode_formats_from_str("QRCode")


@dataclass(frozen=True, slots=True)
class Code:
    """A decoded QR: its text and the x of its left edge (codes are reported left to right)."""

    text: str
    x: float


class QrDecoder(Protocol):
    """Finds every QR code in a grayscale image."""

    name: str

    def read(self, gray: np.ndarray) -> list[Code]: ...


class ZxingDecoder:
    name = "zxing"

    def __init__(self, try_invert: bool = True) -> None:
        self.try_invert = try_invert

    def read(self, gray: np.ndarray) -> list[Code]:
        return self.read_all(gray)[0]

    def read_all(
        self, gray: np.ndarray, *, downscale: bool = False
    ) -> tuple[list[Code], list[Detection]]:
        """The codes read, and those located but not readable (the cue to escalate);
        ``downscale``: zxing-cpp also searches its own downscaled copies (one call per frame)."""
        found = zxingcpp.read_barcodes(
            gray,
            formats=_QR_ONLY,
            try_rotate=True,
            try_downscale=downscale,
            try_invert=self.try_invert,
            return_errors=True,
        )
        codes = [Code(b.text, float(b.position.top_left.x)) for b in found if b.valid]
        return codes, detections(found)


class ZbarDecoder:
    name = "zbar"

    def __init__(self, try_invert: bool = True) -> None:
        self.try_invert = try_invert

    def read(self, gray: np.ndarray) -> list[Code]:
        codes = self._read(gray)
        if not codes and self.try_invert:
            codes = self._read(cv2.bitwise_not(gray))
        return codes

    @staticmethod
    def _read(gray: np.ndarray) -> list[Code]:
        found = pyzbar.decode(gray, symbols=[pyzbar.ZBarSymbol.QRCODE])
        return [Code(_text(d.data), float(d.rect.left)) for d in found]


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def make_decoder(name: str, try_invert: bool = True) -> QrDecoder:
    """The decoder called ``name`` (``zxing`` or ``zbar``)."""
    if name == "zxing":
        return ZxingDecoder(try_invert)
    if name == "zbar":
        return ZbarDecoder(try_invert)
    raise ValueError(f"unknown decoder {name!r}; choose zxing or zbar")


def to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)


def decode_frame(image: np.ndarray, decoder: QrDecoder, settings: ScanSettings) -> list[str]:
    """Texts of the distinct QR codes in ``image``, left to right (empty list if none).

    Both decoders read a downscaled copy first (``downscale_width``: cheap, and it finds most
    codes held near the camera), then the full frame (``full_frame``). zxing-cpp's full-frame
    read also searches its own downscaled copies (what a raw ``zxingcpp.read_barcodes`` does,
    so the gate never reads less than zxing-cpp alone); with ``settings.escalate``, a code it
    located but could not read in either pass is then tried harder (``gate.scan.escalate``). A
    frame where nothing was located costs nothing more."""
    gray = to_gray(image)
    if isinstance(decoder, ZxingDecoder):
        return _zxing_frame(gray, decoder, settings)
    width = gray.shape[1]
    codes: list[Code] = []
    if width > settings.downscale_width * 1.25:
        scale = settings.downscale_width / width
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        codes = decoder.read(small)
    if not codes and (settings.full_frame or width <= settings.downscale_width * 1.25):
        codes = decoder.read(gray)
    return _distinct(codes)


def _zxing_frame(gray: np.ndarray, decoder: ZxingDecoder, settings: ScanSettings) -> list[str]:
    misses: list[Detection] = []
    width = gray.shape[1]
    downscaled = width > settings.downscale_width * 1.25
    if downscaled:
        scale = settings.downscale_width / width
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        codes, missed = decoder.read_all(small)
        if codes:
            return _distinct(codes)
        misses = [m.scaled(1 / scale) for m in missed]
    if settings.full_frame or not downscaled:
        codes, missed = decoder.read_all(gray, downscale=True)
        if codes:
            return _distinct(codes)
        misses = missed + misses  # full-resolution corners are the better ones
    if misses and settings.escalate:
        text = rescue(gray, misses)
        return [text] if text is not None else []
    return []


def _distinct(codes: list[Code]) -> list[str]:
    seen: dict[str, None] = {}
    for code in sorted(codes, key=lambda c: c.x):
        seen.setdefault(code.text, None)
    return list(seen)
