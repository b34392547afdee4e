"""Streamed parsing of an attendee list body (CSV, JSON array or NDJSON) into records.

The body is read in chunks and never held whole: CSV is cut at record boundaries (a newline
outside quotes), a JSON array is walked one element at a time with ``raw_decode``, NDJSON line by
line. Each row goes through ``RowChecker``; good rows are yielded even after a bad one (the push
is then rejected whole) so that duplicates are found across the whole file and the client gets
every problem in one answer.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import operator
from collections.abc import AsyncIterator, Iterator
from typing import Any

from syncd.http import ApiError
from syncd.lists.rows import COLUMNS, Record, RowChecker, canonical_column

CSV_TYPES = ("text/csv",)
JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl")
MEDIA_TYPES = CSV_TYPES + JSON_TYPES + NDJSON_TYPES
_DECODER = json.JSONDecoder()


class Limited:
    """Counts bytes of an async chunk stream and stops it past ``limit`` (413)."""

    def __init__(self, chunks: AsyncIterator[bytes], limit: int) -> None:
        self._chunks = chunks
        self._limit = limit
        self.size = 0

    async def texts(self) -> AsyncIterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        try:
            async for chunk in self._chunks:
                self.size += len(chunk)
                if self.size > self._limit:
                    raise ApiError(413, "too_large", f"list is larger than {self._limit} bytes")
                yield decoder.decode(chunk)
            yield decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise ApiError(
                400,
                "bad_encoding",
                f"list is not UTF-8 text near byte {self.size - len(exc.object) + exc.start}",
            ) from None


def _csv_cut(text: str) -> int:
    """Index just after the last newline that ends a CSV record, or 0."""
    cut = text.rfind("\n")
    while cut >= 0 and text.count('"', 0, cut) % 2:
        cut = text.rfind("\n", 0, cut)
    return cut + 1


class CsvRows:
    """CSV with a header row naming the columns (see ``rows.COLUMNS``; extra columns refused)."""

    def __init__(self, checker: RowChecker) -> None:
        self.checker = checker
        self.header: list[str] | None = None
        self.rows = 0

    def _set_header(self, names: list[str]) -> None:
        self.header = [canonical_column(n) for n in names]
        absent = len(self.header)  # index of the "" appended to every row
        self._pick = operator.itemgetter(
            *(self.header.index(c) if c in self.header else absent for c in COLUMNS)
        )
        for name in self.header:
            if name not in COLUMNS:
                self.checker.add(0, name, f"unknown column (known: {', '.join(COLUMNS)})")
        if "external_ref" not in self.header:
            self.checker.add(0, "external_ref", "required column is missing")
        if len(set(self.header)) != len(self.header):
            self.checker.add(0, "(header)", "a column appears twice")

    def block(self, text: str) -> Iterator[Record]:
        """Records of a block of complete CSV records (the first block starts with the header)."""
        if "\x00" in text:
            self._nul_rows(text)
            return
        reader = csv.reader(io.StringIO(text, newline=""))
        if self.header is None:
            self._set_header(next(reader, []))
        check, pick, width = self.checker.check_texts, self._pick, len(self.header or ())
        for fields in reader:
            if not fields:
                continue
            self.rows += 1
            if len(fields) != width:
                self.checker.add(
                    self.rows, "(row)", f"has {len(fields)} fields, header has {width}"
                )
                continue
            fields.append("")
            record = check(self.rows, *map(str.strip, pick(fields)))
            if record is not None:
                yield record

    def _nul_rows(self, text: str) -> None:
        """A block containing NUL characters: report the rows (Postgres text cannot hold NUL)."""
        reader = csv.reader(io.StringIO(text.replace("\x00", "\ufffd"), newline=""))
        if self.header is None:
            self._set_header(next(reader, []))
        for fields in reader:
            if fields:
                self.rows += 1
                if any("\ufffd" in f for f in fields):
                    self.checker.add(self.rows, "(row)", "contains a NUL character")

    async def records(self, texts: AsyncIterator[str]) -> AsyncIterator[Record]:
        pending = ""
        async for text in texts:
            pending += text
            cut = _csv_cut(pending)
            if cut:
                block, pending = pending[:cut], pending[cut:]
                for record in self.block(block):
                    yield record
        if pending.strip():
            for record in self.block(pending if pending.endswith("\n") else pending + "\n"):
                yield record
        if self.header is None:
            self.checker.add(0, "(header)", "the list is empty (no header row)")


class JsonRows:
    """A JSON array of objects, or NDJSON (one object per line), keyed by column name."""

    def __init__(self, checker: RowChecker, *, lines: bool) -> None:
        self.checker = checker
        self.lines = lines
        self.rows = 0

    def _one(self, value: Any) -> Record | None:
        self.rows += 1
        if not isinstance(value, dict):
            self.checker.add(self.rows, "(row)", "must be an object")
            return None
        cells = {canonical_column(str(k)): v for k, v in value.items()}
        for name in cells:
            if name not in COLUMNS:
                self.checker.add(self.rows, name, "unknown column")
        record = self.checker.check(self.rows, cells)
        return record

    def _items(self, buf: str, final: bool) -> tuple[list[Any], str]:
        """Decode complete elements at the front of ``buf``; return them and the rest."""
        items: list[Any] = []
        pos = 0
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n,":
                pos += 1
            if pos >= len(buf) or (not self.lines and buf[pos] == "]"):
                return items, buf[pos:]
            try:
                value, end = _DECODER.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if final or (self.lines and "\n" in buf[pos:]):
                    raise ApiError(
                        400,
                        "bad_json",
                        f"row {self.rows + len(items) + 1}: not valid JSON ({exc.msg})",
                    ) from None
                return items, buf[pos:]
            if end == len(buf) and not final:
                return items, buf[pos:]  # a number may continue in the next chunk
            items.append(value)
            pos = end

    async def records(self, texts: AsyncIterator[str]) -> AsyncIterator[Record]:
        buf, opened = "", self.lines
        async for text in texts:
            buf += text
            if not opened:
                buf = buf.lstrip()
                if not buf:
                    continue
                if buf[0] != "[":
                    raise ApiError(400, "bad_json", "a JSON list must be an array of objects")
                buf, opened = buf[1:], True
            items, buf = self._items(buf, final=False)
            for item in items:
                record = self._one(item)
                if record is not None:
                    yield record
        items, buf = self._items(buf, final=True)
        for item in items:
            record = self._one(item)
            if record is not None:
                yield record
        if not self.lines and (not opened or buf.strip() != "]"):
            raise ApiError(400, "bad_json", "the JSON array is not closed with ']'")


def reader_for(media_type: str, checker: RowChecker) -> CsvRows | JsonRows:
    if media_type in CSV_TYPES:
        return CsvRows(checker)
    if media_type in JSON_TYPES:
        return JsonRows(checker, lines=False)
    if media_type in NDJSON_TYPES:
        return JsonRows(checker, lines=True)
    raise ApiError(
        415, "unsupported_media_type", f"send the list as one of: {', '.join(MEDIA_TYPES)}"
    )
