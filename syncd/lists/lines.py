"""Physical lines of a spooled CSV for ``csv.reader``, each record bounded in size.

``parse.CsvRows`` reads plain chunks itself and hands the rest of a list, from the first chunk
that is not plain, to ``Lines`` over ``Prefixed`` (that chunk put back in front of the file).
"""

from __future__ import annotations

import csv
import io
from typing import Protocol, TextIO


class LineTooLongError(Exception):
    """The record being read passed ``Limits.record_chars``."""


class LineSource(Protocol):
    def readline(self, size: int, /) -> str: ...


class Lines:
    """Physical lines for ``csv.reader``, refusing a record longer than ``limit`` characters.

    ``start`` is called after each record, so ``record`` holds the lines of the record being
    read (bounded): enough to tell, on ``LineTooLongError``, in which column the record ran away."""

    def __init__(self, src: LineSource, limit: int) -> None:
        self._read = src.readline
        self._limit = limit
        self.record: list[str] = []
        self.size = 0
        self.nul = False

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> str:
        line = self._read(self._limit - self.size + 1)
        if not line:
            raise StopIteration
        self.record.append(line)
        self.size += len(line)
        if self.size > self._limit:
            raise LineTooLongError
        if "\x00" in line:
            self.nul = True
        return line

    def start(self) -> None:
        self.record.clear()
        self.size = 0
        self.nul = False

    def open_column(self) -> int:
        """Index of the field the unfinished record is in (its last one so far)."""
        fields = next(csv.reader(self.record, strict=False), [])
        return max(len(fields) - 1, 0)


def plain(text: str, lines: list[str], carry: str, limit: int) -> bool:
    """Text the fast path may take: each line a whole record well within ``limit``."""
    return (
        '"' not in text
        and "\r" not in text
        and "\x00" not in text
        and len(carry) < limit
        and max(map(len, lines), default=0) < limit
    )


class Prefixed:
    """``src`` with ``head`` (text already read from it) put back in front; ``readline`` only.
    A CR ending ``head`` before an LF in ``src`` comes back as two lines: the csv module takes
    that pair the same way (an empty line between records is skipped)."""

    def __init__(self, head: str, src: TextIO) -> None:
        self._head = io.StringIO(head, newline="")
        self._src = src

    def readline(self, size: int, /) -> str:
        line = self._head.readline(size)
        if not line:
            return self._src.readline(size)
        if len(line) >= size or line[-1] in "\r\n":
            return line
        return line + self._src.readline(size - len(line))
