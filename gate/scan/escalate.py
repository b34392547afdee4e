"""Trying harder where zxing-cpp found a QR code but could not read it.

zxing-cpp reports a code it located but failed to decode (``return_errors=True``: a checksum or
format error, with the code's four corners). That is the cue to spend more time on that spot
only; a frame in which nothing was located costs nothing here. For each such detection, the
region around its corners is cut out and read again, in this order, stopping at the first text
that looks like a ticket (``looks_like_ticket``: T1 or T2 by prefix, base45 and length):

0. a wide region around each detection by zbar (its binarisation copes with glare spots and
   bent paper where zxing-cpp's does not; the corners of a failed detection can be far off);
1. the crop as it is (another look at the same pixels: zxing-cpp with a fixed threshold besides
   its local average, and zbar, whose binarisation and error handling differ), then
   Otsu-thresholded (low light);
2. the code rectified from its corners to an upright square with a quiet zone (perspective,
   curved paper, rotation);
3. the rectified code enhanced: Otsu and adaptive thresholds (low light), a median filter then
   Otsu (moiré, noise), CLAHE (glare, uneven light), unsharp masking (blur);
4. the crop upscaled twice (first, for a code under ``TINY`` pixels, where step 0 is skipped).

Every later step of every detection comes after step 0 of all of them.

Each variant is read by zxing-cpp (local-average, then fixed-threshold binariser) and by zbar.

A variant is cheap (a crop of a few hundred pixels); at most ``MAX_DETECTIONS`` detections a
frame are tried and at most ``BUDGET_MS`` spent, so a frame full of damaged codes stays bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import zxingcpp
from pyzbar import pyzbar

from shared.base45 import Base45Error, b45decode

MAX_DETECTIONS = 3
TINY = 140.0  # px: a code this small is upscaled first, and zbar is not tried on the frame
WIDE_MAX = 480  # px: the wide region is read by zbar at most this large
BUDGET_MS = 25.0  # at most this long per frame on rescues (about one frame at 30 fps)
RECTIFIED = 400  # side in pixels of the rectified code, quiet zone included
_QUIET = 0.12  # quiet zone added on each side, as a fraction of the code's side
_QR_ONLY = zxingcpp.barcode_formats_from_str("QRCode")
_BINARIZERS = (zxingcpp.Binarizer.LocalAverage, zxingcpp.Binarizer.FixedThreshold)
_SIZES = {"T1:": 95, "T2:": 195}  # bytes behind the prefix (docs/design.md sections 1 and 5)


@dataclass(frozen=True, slots=True)
class Detection:
    """Where zxing-cpp located a code it could not read: corners TL, TR, BR, BL (x, y)."""

    corners: np.ndarray  # float32, shape (4, 2)

    @property
    def side(self) -> float:
        """The longest edge, in pixels."""
        edges = self.corners - np.roll(self.corners, 1, axis=0)
        return float(np.hypot(edges[:, 0], edges[:, 1]).max())

    def scaled(self, factor: float) -> Detection:
        return Detection((self.corners * factor).astype(np.float32))


def detections(found: list[zxingcpp.Barcode]) -> list[Detection]:
    """The located-but-unreadable codes among zxing-cpp's results."""
    misses = []
    for barcode in found:
        if barcode.valid:
            continue
        p = barcode.position
        corners = [p.top_left, p.top_right, p.bottom_right, p.bottom_left]
        misses.append(Detection(np.array([[c.x, c.y] for c in corners], np.float32)))
    return misses


def looks_like_ticket(text: str) -> bool:
    """A T1 or T2 ticket by its shape (prefix, base45, exact length); not its signature."""
    size = _SIZES.get(text[:3])
    if size is None:
        return False
    try:
        return len(b45decode(text[3:].strip())) == size
    except Base45Error:
        return False


def rescue(gray: np.ndarray, misses: list[Detection], budget_ms: float = BUDGET_MS) -> str | None:
    """The first ticket text any variant of a missed code yields within ``budget_ms``, or None.

    The budget keeps a frame that cannot be saved from delaying the next one for long: the
    camera keeps sending, and the next frame of the same ticket is another chance."""
    deadline = time.perf_counter() + budget_ms / 1000
    for miss in misses[:MAX_DETECTIONS]:
        wide = _crop(gray, miss.corners, pad=1.0) if miss.side >= TINY else None
        if wide is None or time.perf_counter() > deadline:
            continue
        for text in _zbar(_fit(wide, WIDE_MAX)):  # zbar copes with glare and bends
            if looks_like_ticket(text):
                return text
    for miss in misses[:MAX_DETECTIONS]:
        for image in _variants(gray, miss):
            for read in (_zxing, _zbar):
                if time.perf_counter() > deadline:
                    return None
                for text in read(_fit(image, RECTIFIED * 2)):
                    if looks_like_ticket(text):
                        return text
    return None


def _variants(gray: np.ndarray, miss: Detection) -> Iterator[np.ndarray]:
    """Most likely first: a tiny code upscaled; any other as it is, rectified, enhanced."""
    crop = _crop(gray, miss.corners)
    if crop is None:
        return
    upscaled = cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    if miss.side < TINY:
        yield upscaled
    yield crop
    yield _otsu(crop)
    square = _rectify(gray, miss.corners)
    yield square
    for enhance in _ENHANCERS:
        yield enhance(square)
    if miss.side >= TINY:
        yield upscaled


def _crop(gray: np.ndarray, corners: np.ndarray, pad: float = 0.3) -> np.ndarray | None:
    """The detection's bounding box with a margin of ``pad`` times its size (its corners can be
    a little off)."""
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    pad = pad * max(x1 - x0, y1 - y0)
    h, w = gray.shape[:2]
    left, top = max(0, int(x0 - pad)), max(0, int(y0 - pad))
    right, bottom = min(w, int(x1 + pad) + 1), min(h, int(y1 + pad) + 1)
    if right - left < 16 or bottom - top < 16:
        return None
    return np.ascontiguousarray(gray[top:bottom, left:right])


def _fit(image: np.ndarray, longest: int) -> np.ndarray:
    """``image`` shrunk so its longest side is at most ``longest`` (zbar's time grows with
    the area it reads, and with noise)."""
    scale = longest / max(image.shape[:2])
    if scale >= 1:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _rectify(gray: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The code warped from its corners to an upright square, with a white quiet zone."""
    inner = RECTIFIED * (1 - 2 * _QUIET)
    lo, hi = RECTIFIED * _QUIET, RECTIFIED * _QUIET + inner
    target = np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi]], np.float32)
    matrix = cv2.getPerspectiveTransform(corners, target)
    return cv2.warpPerspective(
        gray,
        matrix,
        (RECTIFIED, RECTIFIED),
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _clahe(image: np.ndarray) -> np.ndarray:
    return cv2.createCLAHE(clipLimit=3.0, tileGridSize=(4, 4)).apply(image)


def _otsu(image: np.ndarray) -> np.ndarray:
    blurred = cv2.GaussianBlur(image, (3, 3), 0)
    return cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1]


def _adaptive(image: np.ndarray) -> np.ndarray:
    return cv2.adaptiveThreshold(
        image, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 31, 5
    )


def _median_otsu(image: np.ndarray) -> np.ndarray:
    return _otsu(cv2.medianBlur(image, 5))


def _sharpen(image: np.ndarray) -> np.ndarray:
    soft = cv2.GaussianBlur(image, (0, 0), 2.0)
    return cv2.addWeighted(image, 1.8, soft, -0.8, 0)


_ENHANCERS: tuple[Callable[[np.ndarray], np.ndarray], ...] = (
    _otsu,
    _adaptive,
    _median_otsu,
    _clahe,
    _sharpen,
)


def _zxing(image: np.ndarray) -> list[str]:
    """zxing-cpp with its default binariser, then a fixed threshold (motion blur smears the
    local averages a module is compared against)."""
    for binarizer in _BINARIZERS:
        found = zxingcpp.read_barcodes(
            image, formats=_QR_ONLY, try_rotate=True, try_invert=True, binarizer=binarizer
        )
        texts = [b.text for b in found if b.valid]
        if texts:
            return texts
    return []


def _zbar(image: np.ndarray) -> list[str]:
    texts = []
    for candidate in (image, cv2.bitwise_not(image)):
        for d in pyzbar.decode(candidate, symbols=[pyzbar.ZBarSymbol.QRCODE]):
            texts.append(d.data.decode("latin-1"))
        if texts:
            break
    return texts
