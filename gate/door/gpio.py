"""A turnstile or light beam on a GPIO line (libgpiod's ``gpiod`` package, v2 API).

The line is requested as an input with edge detection (rising by default: the beam breaks or
the turnstile's contact closes) and the kernel's debounce; each edge is one passage. The
blocking wait runs in a thread, one second at a time, so stopping the gate is prompt. Without
the ``gpiod`` package (``pip install 'tessera[gpio]'``) or the chip, the gate refuses to start
with a message that names the setting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol

from shared.errors import ConfigError

log = logging.getLogger("gate.door")
DEBOUNCE = timedelta(milliseconds=50)


class EdgeSource(Protocol):
    """What the reader needs of a requested line: wait for edges, then read them."""

    def wait_edge_events(self, timeout: timedelta) -> bool: ...
    def read_edge_events(self) -> list[Any]: ...
    def release(self) -> None: ...


def parse_line(spec: str) -> tuple[str, int, str]:
    """``gpiochip0:17[:falling]`` -> (/dev/gpiochip0, 17, falling)."""
    parts = spec.split(":")
    chip = parts[0] if parts[0].startswith("/dev/") else f"/dev/{parts[0]}"
    edge = parts[2] if len(parts) > 2 else "rising"
    return chip, int(parts[1]), edge


def request_line(spec: str) -> EdgeSource:
    """Request the line of ``GATE_PASSAGE_GPIO`` for edge events; ``ConfigError`` if it cannot."""
    chip, line, edge = parse_line(spec)
    try:
        import gpiod
        from gpiod.line import Direction, Edge
    except ImportError as exc:
        raise ConfigError(
            "GATE_PASSAGE_GPIO is set but the gpiod package is missing:"
            " pip install 'tessera[gpio]' (or unset it and signal passages over HTTP)"
        ) from exc
    settings = gpiod.LineSettings(
        direction=Direction.INPUT,
        edge_detection=Edge.RISING if edge == "rising" else Edge.FALLING,
        debounce_period=DEBOUNCE,
    )
    try:
        return gpiod.request_lines(  # type: ignore[no-any-return]
            chip, consumer="tessera-passage", config={line: settings}
        )
    except OSError as exc:
        raise ConfigError(f"GATE_PASSAGE_GPIO: cannot use line {line} of {chip}: {exc}") from exc


async def follow_edges(
    source: EdgeSource,
    on_passage: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
) -> int:
    """Call ``on_passage`` once per edge until ``stop`` is set; returns the edges seen."""
    seen = 0
    try:
        while not stop.is_set():
            ready = await asyncio.to_thread(source.wait_edge_events, timedelta(seconds=1))
            if not ready:
                continue
            events = await asyncio.to_thread(source.read_edge_events)
            for _ in events:
                seen += 1
                try:
                    await on_passage()
                except Exception:
                    log.exception("could not record a passage from the GPIO line")
    finally:
        source.release()
    return seen
