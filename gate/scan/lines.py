"""Scanner line framing: bytes as a scanner sends them -> one text per scan. Pure, no I/O.

Every line source (stdin, serial, evdev) feeds its bytes through one ``LineFramer``, so the
rules are the same whichever way a scanner is attached:

- CR, LF and CRLF each end a scan (scanners ship set to any of them; a CR-only scanner must
  not merge two scans into one). A blank line is no scan.
- Surrounding whitespace (a trailing space or tab some scanners add) is stripped: the code
  itself never contains any.
- A line longer than ``max_line`` bytes is ONE scan, the ``OVERLONG`` marker (which the gate
  judges "Not a ticket"), however long it runs: its bytes are dropped as they come, so memory
  stays bounded, and the next line is read cleanly. Cutting it into pieces instead would turn
  100 kB of junk into 25 denials, and would let junk glued in front of a valid code admit it.
- Bytes that are not UTF-8 are replaced (such a line is then "Not a ticket").
- At the end of the input a last line without its line end still counts (``finish()``).
"""

from __future__ import annotations

import re

MAX_LINE = 4096
OVERLONG = "<overlong scanner line>"
"""Stands for a line over ``MAX_LINE`` bytes; it has no ticket prefix, so it is "Not a ticket"."""

_ENDS = re.compile(rb"[\r\n]")


class LineFramer:
    """Feed bytes in any chunks with ``feed``; get back the scans completed so far."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        self._overlong = False

    def feed(self, data: bytes) -> list[str]:
        """The scans ended by line ends in ``data`` (a partial line is kept for the next call)."""
        *lines, rest = _ENDS.split(data)
        scans: list[str] = []
        for line in lines:
            self._take(line)
            scans.extend(self._end_line())
        self._take(rest)
        return scans

    def finish(self) -> list[str]:
        """End of input: the unterminated last line, if any, is a scan too."""
        return self._end_line()

    def _take(self, chunk: bytes) -> None:
        if self._overlong or not chunk:
            return
        if len(self._buffer) + len(chunk) > self.max_line:
            self._overlong = True
            self._buffer.clear()
            return
        self._buffer += chunk

    def _end_line(self) -> list[str]:
        if self._overlong:
            self._overlong = False
            return [OVERLONG]
        text = self._buffer.decode("utf-8", "replace").strip()
        self._buffer.clear()
        return [text] if text else []


def frame_lines(data: bytes, max_line: int = MAX_LINE) -> list[str]:
    """All scans in ``data``, a whole input at once (for tests and replays)."""
    framer = LineFramer(max_line)
    return [*framer.feed(data), *framer.finish()]
