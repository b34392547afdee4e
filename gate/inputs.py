"""Input sources: anything that yields scanned texts. The camera adds its own (gate/camera/).

A source has a ``via`` label (recorded in the journal) and ``texts()``, an async iterator that
ends when the input does. A source that must start or stop something (a capture thread) also
implements ``gate.app.Part``.

Line sources (stdin here, ``gate.scan.serial_source``, ``gate.scan.evdev_source``) all frame
their bytes with ``gate.scan.lines.LineFramer``, so a scanner obeys the same line rules (CR, LF
or CRLF end a scan; whitespace stripped; an overlong line is one "Not a ticket") however it is
attached.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from gate.scan.lines import MAX_LINE, LineFramer
from gate.scan.reader import read_chunks

__all__ = ["MAX_LINE", "Source", "StdinSource", "framed"]


@runtime_checkable
class Source(Protocol):
    via: str

    def texts(self) -> AsyncIterator[str]:
        """Scanned texts, one per code read; ends when the input ends."""
        ...


async def framed(chunks: AsyncIterator[bytes], framer: LineFramer) -> AsyncIterator[str]:
    """The scans in a stream of byte chunks; the last unterminated line counts at its end."""
    async for chunk in chunks:
        for text in framer.feed(chunk):
            yield text
    for text in framer.finish():
        yield text


class StdinSource:
    """One code per line, as a USB keyboard-wedge scanner types them (or a pipe feeds them).

    The descriptor is read by the event loop itself (``gate.scan.reader``), never by a thread,
    so a SIGTERM or Ctrl-C stops the gate cleanly at any moment. Ends at end of input.
    """

    via = "scanner"

    def __init__(self, fd: int | None = None) -> None:
        self._fd = fd

    async def texts(self) -> AsyncIterator[str]:
        fd = sys.stdin.fileno() if self._fd is None else self._fd
        async for text in framed(read_chunks(fd), LineFramer()):
            yield text
