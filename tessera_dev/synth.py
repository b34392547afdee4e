"""Synthetic door-camera scenes for the scan benchmark and the camera tests.

A ticket is drawn as a printed card or a phone screen (optionally dark mode, i.e. an inverted
code), placed into a cluttered frame with perspective and rotation, then degraded by blur,
noise, glare and low light. ``write_video`` stores frames with OpenCV (MJPG in AVI works in
headless builds) so replays run through exactly the capture path a live camera uses.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import segno

RESOLUTIONS: dict[str, tuple[int, int]] = {
    "640x480": (640, 480),
    "1280x720": (1280, 720),
    "1920x1080": (1920, 1080),
}


@dataclass(frozen=True, slots=True)
class Condition:
    """How a ticket looks to the camera. ``size`` is the code's side as a fraction of height."""

    name: str
    medium: str = "paper"  # paper | screen
    size: float = 0.4
    tilt: float = 0.0  # perspective: fraction by which the far edge shrinks
    rotation: float = 0.0  # degrees
    blur: float = 0.0  # Gaussian sigma in code modules
    noise: float = 0.0  # Gaussian sigma in grey levels
    glare: float = 0.0  # peak added brightness of a highlight over the code
    light: float = 1.0  # brightness factor
    invert: bool = False  # light-on-dark code (phone dark mode)
    moderate: bool = True  # within the >= 99 % decode-rate target
    moire: float = 0.0  # depth of a screen's interference pattern over the code (0..1)
    spots: int = 0  # small saturated glare spots on the code (lamps on glossy paper or glass)
    cracks: int = 0  # cracks across a phone screen
    curve: float = 0.0  # paper bent around a vertical axis: bulge as a fraction of the width
    motion: float = 0.0  # motion blur length in code modules (a hand moving the ticket)
    hard: bool = False  # in the hard set (bench_scan --hard): raw decoders miss some
    t2: bool = False  # a T2 code (holder-bound rotating, QR version 10) instead of T1 (version 6)

    def at(self, **changes: object) -> Condition:
        return replace(self, **changes)  # type: ignore[arg-type]


CONDITIONS: tuple[Condition, ...] = (
    Condition("clean"),
    Condition("small", size=0.22),
    Condition("large", size=0.75),
    Condition("perspective", tilt=0.25, rotation=8),
    Condition("rotation", rotation=35),
    Condition("blur", blur=0.3),
    Condition("noise", noise=14),
    Condition("glare", glare=170),
    Condition("low_light", light=0.3, noise=5),
    Condition("screen", medium="screen"),
    Condition("screen_dark", medium="screen", invert=True),
    Condition("t2_screen", medium="screen", t2=True),
    Condition("t2_screen_dark", medium="screen", invert=True, t2=True),
    Condition(
        "harsh", tilt=0.3, rotation=20, blur=0.3, noise=10, light=0.45, glare=80, moderate=False
    ),
)

HARD: tuple[Condition, ...] = tuple(
    c.at(moderate=False, hard=True)
    for c in (
        Condition("moire", medium="screen", moire=0.9, size=0.3),
        Condition("glare_spots", spots=8, glare=230, size=0.35),
        Condition("cracked", medium="screen", cracks=6, size=0.3),
        Condition("curved", curve=0.016, size=0.45),
        Condition("motion_blur", motion=2.0, size=0.4),
        Condition("dim", light=0.09, noise=7, size=0.35),
        Condition("steep", tilt=0.62, rotation=35, size=0.4),
        Condition("tiny", size=0.085, noise=4),
        Condition("dark_moire", medium="screen", invert=True, moire=0.95, size=0.3),
        Condition("t2_screen_glare", medium="screen", t2=True, spots=10, glare=240, size=0.4),
        Condition("t2_paper_curved", t2=True, curve=0.02, size=0.5),
    )
)
"""Conditions chosen so raw zxing-cpp misses a share of frames (bench_scan --hard)."""


@functools.lru_cache(maxsize=256)
def qr_modules(text: str) -> np.ndarray:
    """The QR for ``text`` as a uint8 array, 1 = dark module, with the 4-module quiet zone.

    Cached (scenes render the same code in many frames); the array is read-only.
    """
    qr = segno.make(text, error="m", micro=False)
    modules = np.array(list(qr.matrix_iter(scale=1, border=4)), dtype=np.uint8)
    modules.setflags(write=False)
    return modules


def qr_image(text: str, module_px: int = 8, invert: bool = False) -> np.ndarray:
    """A clean grayscale QR for ``text`` (white quiet zone; black if inverted)."""
    dark = qr_modules(text)
    gray = np.where(dark == 1, 0, 255).astype(np.uint8)
    if invert:
        gray = 255 - gray
    return cv2.resize(gray, None, fx=module_px, fy=module_px, interpolation=cv2.INTER_NEAREST)


def _card(text: str, cond: Condition) -> tuple[np.ndarray, float]:
    """A BGR card holding the code, and the fraction of the card's height the code spans."""
    code = cv2.cvtColor(qr_image(text, 8, cond.invert), cv2.COLOR_GRAY2BGR)
    side = code.shape[0]
    if cond.medium == "screen":
        screen_bg = (30, 30, 30) if cond.invert else (250, 250, 250)
        card = np.full((int(side * 1.9), int(side * 1.15), 3), screen_bg, np.uint8)
        y0 = int(side * 0.45)
        x0 = (card.shape[1] - side) // 2
        card[y0 : y0 + side, x0 : x0 + side] = code
        bezel = cv2.copyMakeBorder(card, 24, 24, 16, 16, cv2.BORDER_CONSTANT, value=(15, 15, 15))
        if cond.cracks:
            _crack(bezel, cond.cracks, seed=side)
        return bezel, side / bezel.shape[0]
    card = np.full((int(side * 1.45), int(side * 1.1), 3), (235, 240, 242), np.uint8)
    x0 = (card.shape[1] - side) // 2
    card[10 : 10 + side, x0 : x0 + side] = code
    for row in range(3):
        y = side + 25 + row * 28
        cv2.rectangle(card, (x0, y), (x0 + side * (3 - row) // 4, y + 12), (60, 60, 60), -1)
    if cond.curve:
        card = _bend(card, cond.curve)
    return card, side / card.shape[0]


def _crack(card: np.ndarray, count: int, seed: int) -> None:
    """Cracks across a screen: jagged bright lines with a dark edge, from an impact point."""
    rng = np.random.default_rng(seed + count)
    h, w = card.shape[:2]
    origin = np.array([w * rng.uniform(0.3, 0.7), h * rng.uniform(0.35, 0.65)])
    for _ in range(count):
        angle = rng.uniform(0, 2 * math.pi)
        point = origin.copy()
        for _ in range(6):
            angle += rng.uniform(-0.4, 0.4)
            step = rng.uniform(0.05, 0.15) * max(h, w)
            nxt = point + step * np.array([math.cos(angle), math.sin(angle)])
            a, b = tuple(int(v) for v in point), tuple(int(v) for v in nxt)
            cv2.line(card, a, b, (20, 20, 20), 3, cv2.LINE_AA)
            cv2.line(card, a, b, (235, 235, 235), 1, cv2.LINE_AA)
            point = nxt


def _bend(card: np.ndarray, bulge: float) -> np.ndarray:
    """Paper bent around a vertical axis, seen from below: rows bow (the middle rises) and the
    edges, turning away, are foreshortened."""
    h, w = card.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xs - w / 2) / (w / 2)  # -1 .. 1
    map_y = ys + bulge * h * (u**2 - 0.5)
    map_x = w / 2 + (w / 2) * np.sign(u) * np.abs(u) ** (1 + bulge * 3)
    return cv2.remap(
        card,
        map_x.astype(np.float32),
        map_y.astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(235, 240, 242),
    )


def background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A cluttered, unevenly lit door scene without any code in it."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 90 + 60 * (xs / width) + 30 * np.sin(ys / height * math.pi)
    frame = np.dstack([base * f for f in (0.9, 1.0, 1.1)]).clip(0, 255).astype(np.uint8)
    for _ in range(12):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = (
            int(rng.integers(width // 20, width // 4)),
            int(rng.integers(height // 20, height // 3)),
        )
        color = tuple(int(c) for c in rng.integers(20, 230, 3))
        cv2.rectangle(frame, (x, y), (x + w, y + h), color, -1)
    return frame


def _placement(
    card: np.ndarray,
    code_frac: float,
    cond: Condition,
    shape: tuple[int, int],
    rng: np.random.Generator,
) -> np.ndarray:
    height, width = shape
    card_h = cond.size * height / code_frac
    card_w = card_h * card.shape[1] / card.shape[0]
    if card_h > height * 0.98:
        card_h, card_w = height * 0.98, height * 0.98 * card.shape[1] / card.shape[0]
    hw, hh = card_w / 2, card_h / 2
    shrink = cond.tilt * hw
    pts = np.array([[-hw + shrink, -hh], [hw - shrink, -hh], [hw, hh], [-hw, hh]], np.float32)
    angle = math.radians(cond.rotation + rng.uniform(-2, 2))
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    pts = pts @ rot.T.astype(np.float32)
    margin_x = max(0.0, width / 2 - np.abs(pts[:, 0]).max() - 2)
    margin_y = max(0.0, height / 2 - np.abs(pts[:, 1]).max() - 2)
    cx = width / 2 + rng.uniform(-0.3, 0.3) * margin_x
    cy = height / 2 + rng.uniform(-0.3, 0.3) * margin_y
    return (pts + np.array([cx, cy], np.float32)).astype(np.float32)


def render_frame(
    text: str | None, cond: Condition, bg: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One BGR frame: ``bg`` with the ticket for ``text`` (or no ticket) under ``cond``."""
    frame = bg.copy()
    height, width = frame.shape[:2]
    module_px = 0.0
    if text is not None:
        card, code_frac = _card(text, cond)
        quad = _placement(card, code_frac, cond, (height, width), rng)
        src = np.array(
            [[0, 0], [card.shape[1], 0], [card.shape[1], card.shape[0]], [0, card.shape[0]]],
            np.float32,
        )
        matrix = cv2.getPerspectiveTransform(src, quad)
        cv2.warpPerspective(
            card,
            matrix,
            (width, height),
            dst=frame,
            borderMode=cv2.BORDER_TRANSPARENT,
            flags=cv2.INTER_LINEAR,
        )
        module_px = cond.size * height / qr_modules(text).shape[0]
        if cond.moire:
            frame = _moire(frame, quad, cond.moire, module_px)
        if cond.spots:
            for _ in range(cond.spots):
                frame = _glare(frame, quad, cond.glare or 200, rng, radius=0.06)
        elif cond.glare:
            frame = _glare(frame, quad, cond.glare, rng)
    return _degrade(frame, cond, module_px, rng)


def _moire(frame: np.ndarray, quad: np.ndarray, depth: float, module_px: float) -> np.ndarray:
    """A screen's interference pattern: two close spatial frequencies beating over the code."""
    h, w = frame.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    period = max(2.2, module_px * 0.9)
    wave = np.sin(2 * math.pi * (xs * 0.96 + ys * 0.28) / period) * np.sin(
        2 * math.pi * (ys * 1.03 - xs * 0.21) / period
    )
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, quad.astype(np.int32), 1)
    factor = 1 - depth * 0.5 * (1 + wave) * mask
    return (frame * factor[..., None]).clip(0, 255).astype(np.uint8)


def _glare(
    frame: np.ndarray,
    quad: np.ndarray,
    peak: float,
    rng: np.random.Generator,
    radius: float = 0.18,
) -> np.ndarray:
    spread = 0.15 if radius >= 0.18 else 0.4
    cx, cy = quad.mean(axis=0) + rng.uniform(-spread, spread, 2) * np.ptp(quad, axis=0)
    radius = float(np.ptp(quad[:, 0]) * radius)
    ys, xs = np.ogrid[0 : frame.shape[0], 0 : frame.shape[1]]
    blob = peak * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * radius**2))
    return (frame + blob[..., None]).clip(0, 255).astype(np.uint8)


def _degrade(
    frame: np.ndarray, cond: Condition, module_px: float, rng: np.random.Generator
) -> np.ndarray:
    if cond.blur and module_px:
        frame = cv2.GaussianBlur(frame, (0, 0), sigmaX=cond.blur * module_px)
    if cond.motion and module_px:
        length = max(3, int(cond.motion * module_px) | 1)
        line = np.zeros((length, length), np.float32)
        line[length // 2, :] = 1.0 / length
        rotate = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), 20, 1.0)
        kernel = cv2.warpAffine(line, rotate, (length, length))
        kernel = (kernel / max(float(kernel.sum()), 1e-6)).astype(np.float32)
        frame = cv2.filter2D(frame, -1, kernel)
    if cond.light != 1.0:
        frame = cv2.convertScaleAbs(frame, alpha=cond.light)
    if cond.noise:
        noise = rng.normal(0, cond.noise, frame.shape[:2]).astype(np.float32)
        frame = (frame.astype(np.float32) + noise[..., None]).clip(0, 255).astype(np.uint8)
    return frame


@dataclass(frozen=True, slots=True)
class Shot:
    """One frame of a scripted video and the ticket text visible in it (``None`` = nobody)."""

    image: np.ndarray
    expected: str | None


def script(
    texts: Iterable[str | None],
    cond: Condition,
    size: tuple[int, int],
    *,
    hold: int = 6,
    gap: int = 2,
    seed: int = 7,
) -> Iterator[Shot]:
    """Each text held in view for ``hold`` frames (jittering slightly), then ``gap`` empty ones."""
    rng = np.random.default_rng(seed)
    bg = background(size[0], size[1], rng)
    for text in texts:
        for _ in range(hold):
            yield Shot(render_frame(text, cond, bg, rng), text)
        for _ in range(gap):
            yield Shot(render_frame(None, cond, bg, rng), None)


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float = 30.0) -> int:
    """Write BGR frames as MJPG/AVI; returns the number written. Raises if OpenCV cannot."""
    writer: cv2.VideoWriter | None = None
    count = 0
    try:
        for image in frames:
            if writer is None:
                h, w = image.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
                if not writer.isOpened():
                    raise OSError(f"OpenCV cannot write MJPG video to {path}")
                writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 90)
            writer.write(image)
            count += 1
    finally:
        if writer is not None:
            writer.release()
    return count
