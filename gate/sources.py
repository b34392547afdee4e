"""Input sources: anything that yields scanned texts. The camera adds its own (gate/camera/).

A source has a ``via`` label (recorded in the journal) and ``texts()``, an async iterator that
ends when the input does. A source that must start or stop something (a capture thread) also
implements ``gate.app.Part``.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator
from typing import BinaryIO, Protocol, runtime_checkable

MAX_LINE = 4096


@runtime_checkable
class Source(Protocol):
    via: str

    def texts(self) -> AsyncIterator[str]:
        """Scanned texts, one per code read; ends when the input ends."""
        ...


class StdinSource:
    """One code per line, as a USB keyboard-wedge scanner types them (or a pipe feeds them).

    Lines are read by a daemon thread so the event loop never blocks on a terminal or pipe;
    line endings are dropped, blank lines ignored, bytes that are not UTF-8 replaced (such a
    line is then simply "Not a ticket").
    """

    via = "scanner"

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream

    async def texts(self) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        stream = self._stream or sys.stdin.buffer

        def read() -> None:
            try:
                for raw in iter(lambda: stream.readline(MAX_LINE), b""):
                    loop.call_soon_threadsafe(queue.put_nowait, raw.decode("utf-8", "replace"))
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except RuntimeError:  # the loop closed while we were blocked reading: nothing to do
                return

        threading.Thread(target=read, name="stdin-reader", daemon=True).start()
        while (line := await queue.get()) is not None:
            text = line.rstrip("\r\n")
            if text.strip():
                yield text
