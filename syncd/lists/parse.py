"""Parsing a spooled attendee list (CSV, JSON array or NDJSON) into checked records.

Runs in a worker process (``worker``) over a complete spool file already known to be UTF-8
(``spool``): never on the event loop, never while a database connection is held. Linear in the
input and bounded in memory whatever arrives: CSV is read in chunks of at most
``FAST_CHUNK_CHARS`` while they are plain (no quote, CR or NUL: one line is one record) and
checked a column at a time, then, from the first chunk that is not, through the csv module's
state machine fed one physical line at a time; a JSON array is walked one element at a time with
``raw_decode`` over a window of at most one element, NDJSON line by line. One record (a CSV
record, a JSON element, an NDJSON line) is at most ``Limits.record_chars`` characters: a longer
one stops the parse with a problem naming its row and column (an unclosed quote shows up this
way). Each row goes through ``RowChecker``; good rows are yielded even after a bad one (the
push is then refused whole), so the client gets every problem, duplicates included, in one
answer.
"""

from __future__ import annotations

import csv
import itertools
import json
import operator
import re
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from syncd.lists.copytext import Columns, encode, from_records
from syncd.lists.lines import Lines, LineTooLongError, Prefixed, plain
from syncd.lists.refs import Duplicates
from syncd.lists.rows import COLUMNS, Problem, Record, RowChecker, canonical_column

CSV_TYPES = ("text/csv",)
JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl")
MEDIA_TYPES = CSV_TYPES + JSON_TYPES + NDJSON_TYPES
UNSUPPORTED = f"send the list as one of: {', '.join(MEDIA_TYPES)}"
CHUNK_CHARS = 1 << 16
FAST_CHUNK_CHARS = 1 << 19
_DECODER = json.JSONDecoder()
_SKIP = re.compile(r"[ \t\r\n,]*")

# Record size is bounded by ``Lines``; csv's own (process-wide) limit turned a field over
# 131,072 characters into an unhandled csv.Error, so it is lifted here.
csv.field_size_limit(sys.maxsize)


class ListError(Exception):
    """A list refused whole, for a status other than the 422 of row problems. Plain values
    only (it crosses from a worker process); ``worker`` turns it into an ``ApiError``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True, slots=True)
class Limits:
    record_chars: int
    rows: int


class _Reader:
    """Row counting shared by the formats: ``max_rows`` is a 413, not a row problem."""

    def __init__(self, checker: RowChecker, limits: Limits) -> None:
        self.checker = checker
        self.limits = limits
        self.rows = 0

    def _next_row(self) -> int:
        self._count(1)
        return self.rows

    def _count(self, rows: int) -> None:
        self.rows += rows
        if self.rows > self.limits.rows:
            raise ListError(413, "too_many_rows", f"the list has more than {self.limits.rows} rows")

    def _too_long(self, row: int, column: str) -> None:
        self.checker.add(
            row, column, f"longer than {self.limits.record_chars} characters (a quote left open?)"
        )


class CsvRows(_Reader):
    """CSV with a header row naming the columns (see ``rows.COLUMNS``; extra columns refused).

    Chunks of plain text (no quote, CR or NUL, every line shorter than the record limit) are
    the common case and go the fast way: each line is a record, a chunk's rows are split by
    ``csv.reader`` and checked column by column (``RowChecker.check_batch``). From the first
    chunk that is not plain to the end, records go the careful way (``Lines``, row by row):
    that chunk starts at a record boundary, since every newline before it ended a record."""

    header: list[str] | None = None

    def _set_header(self, names: list[str]) -> None:
        self.header = [canonical_column(n) for n in names]
        absent = len(self.header)  # index of the "" appended to every row
        self._indices = [self.header.index(c) if c in self.header else absent for c in COLUMNS]
        self._pick = operator.itemgetter(*self._indices)
        for name in self.header:
            if name not in COLUMNS:
                self.checker.add(0, name, f"unknown column (known: {', '.join(COLUMNS)})")
        if "external_ref" not in self.header:
            self.checker.add(0, "external_ref", "required column is missing")
        if len(set(self.header)) != len(self.header):
            self.checker.add(0, "(header)", "a column appears twice")

    def _column(self, index: int) -> str:
        if self.header is None:
            return "(header)"
        return self.header[index] if index < len(self.header) else f"(field {index + 1})"

    def batches(self, src: TextIO) -> Iterator[Columns]:
        lines = Lines(src, self.limits.record_chars)
        if not self._read_header(lines):
            return
        pending = yield from self._fast(src)
        if pending is not None:
            careful = Lines(Prefixed(pending, src), self.limits.record_chars)
            yield from map(from_records, _batches(self._careful(careful)))

    def _read_header(self, lines: Lines) -> bool:
        try:
            names = next(csv.reader(lines), None)
        except LineTooLongError:
            self._too_long(0, self._column(lines.open_column()))
            return False
        if names is None:
            self.checker.add(0, "(header)", "the list is empty (no header row)")
            return False
        self._set_header(names)
        return True

    def _fast(self, src: TextIO) -> Generator[Columns, None, str | None]:
        """Batches of plain chunks; returns the text read but not handled (None at the end)."""
        limit, carry = self.limits.record_chars, ""
        while chunk := src.read(FAST_CHUNK_CHARS):
            text = carry + chunk
            lines = text.split("\n")
            carry = lines.pop()
            if not plain(text, lines, carry, limit):
                return text
            yield from self._fast_batch(lines)
        if carry:
            if not plain(carry, [carry], "", limit):
                return carry
            yield from self._fast_batch([carry])
        return None

    def _fast_batch(self, lines: list[str]) -> Iterator[Columns]:
        """Plain lines, each one record (an empty one none): with no quote, a CSV line's fields
        are exactly its comma-separated parts."""
        if "" in lines:
            lines = list(filter(None, lines))
        if not lines:
            return
        first, width = self.rows + 1, len(self.header or ())
        self._count(len(lines))
        if set(map(str.count, lines, itertools.repeat(","))) == {width - 1}:
            fields = ",".join(lines).split(",")
            blank = [""] * len(lines)
            texts = [
                list(map(str.strip, fields[i::width])) if i < width else blank
                for i in self._indices
            ]
            checked = self.checker.check_batch(first, texts)
            if checked is not None:
                yield checked
                return
        numbered = enumerate(csv.reader(lines), first)
        yield from_records([r for n, f in numbered if (r := self._check(n, f, False)) is not None])

    def _careful(self, lines: Lines) -> Iterator[Record]:
        try:
            for fields in csv.reader(lines):
                nul = lines.nul
                lines.start()
                if fields:
                    record = self._check(self._next_row(), fields, nul)
                    if record is not None:
                        yield record
        except LineTooLongError:
            self._too_long(self.rows + 1, self._column(lines.open_column()))

    def _check(self, row: int, fields: list[str], nul: bool) -> Record | None:
        width = len(self.header or ())
        if len(fields) != width:
            self.checker.add(row, "(row)", f"has {len(fields)} fields, header has {width}")
        elif nul and any("\x00" in f for f in fields):
            self._nul(row, fields)
        else:
            fields.append("")
            return self.checker.check_texts(row, *map(str.strip, self._pick(fields)))
        return None

    def _nul(self, row: int, fields: list[str]) -> None:
        """Postgres text cannot hold NUL: name each column that has one."""
        for index, value in enumerate(fields):
            if "\x00" in value:
                self.checker.add(row, self._column(index), "contains a NUL character")


class JsonRows(_Reader):
    """A JSON array of objects, or NDJSON (one object per line), keyed by column name."""

    def __init__(self, checker: RowChecker, limits: Limits, *, lines: bool) -> None:
        super().__init__(checker, limits)
        self.lines = lines

    def _one(self, value: Any) -> Record | None:
        row = self._next_row()
        if not isinstance(value, dict):
            self.checker.add(row, "(row)", "must be an object")
            return None
        cells = {canonical_column(str(k)): v for k, v in value.items()}
        for name in cells:
            if name not in COLUMNS:
                self.checker.add(row, ascii(name)[1:-1], "unknown column")
        return self.checker.check(row, cells)

    def _decode(self, text: str, pos: int, ahead: int = 0) -> tuple[Any, int]:
        """One JSON value at ``pos``; ``ahead`` elements are decoded but not yet counted."""
        try:
            return _DECODER.raw_decode(text, pos)
        except RecursionError:
            raise ListError(
                400, "bad_json", f"row {self.rows + ahead + 1}: nested too deep to be a list row"
            ) from None

    def _bad(self, exc: json.JSONDecodeError, ahead: int = 0) -> ListError:
        row = self.rows + ahead + 1
        return ListError(400, "bad_json", f"row {row}: not valid JSON ({exc.msg})")

    def batches(self, src: TextIO) -> Iterator[Columns]:
        return map(from_records, _batches(self._records(src)))

    def _records(self, src: TextIO) -> Iterator[Record]:
        for value in self._ndjson(src) if self.lines else self._array(src):
            record = self._one(value)
            if record is not None:
                yield record

    def _ndjson(self, src: TextIO) -> Iterator[Any]:
        limit = self.limits.record_chars
        while line := src.readline(limit + 1):
            if len(line) > limit and line[-1] not in "\r\n":
                self._too_long(self.rows + 1, "(row)")
                return
            if line.strip():
                try:
                    value, end = self._decode(line, _SKIP.match(line).end())  # type: ignore[union-attr]
                except json.JSONDecodeError as exc:
                    raise self._bad(exc) from None
                if line[end:].strip():
                    raise ListError(400, "bad_json", f"row {self.rows + 1}: one value per line")
                yield value

    def _array(self, src: TextIO) -> Iterator[Any]:
        buf, opened, final = "", False, False
        while not final:
            chunk = src.read(CHUNK_CHARS)
            final = not chunk
            buf += chunk
            if not opened:
                buf = buf.lstrip()
                if not buf:
                    continue
                if buf[0] != "[":
                    raise ListError(400, "bad_json", "a JSON list must be an array of objects")
                buf, opened = buf[1:], True
            items, buf = self._items(buf, final)
            yield from items
            if buf[:1] == "]":
                if buf[1:].strip():
                    raise ListError(400, "bad_json", "text after the end of the JSON array")
                buf = "]"
            elif len(buf) > self.limits.record_chars:
                self._too_long(self.rows + 1, "(row)")
                return
        if not opened or buf != "]":
            raise ListError(400, "bad_json", "the JSON array is not closed with ']'")

    def _items(self, buf: str, final: bool) -> tuple[list[Any], str]:
        """Decode complete elements at the front of ``buf``; return them and the rest."""
        items: list[Any] = []
        pos = 0
        while True:
            pos = _SKIP.match(buf, pos).end()  # type: ignore[union-attr]
            if pos >= len(buf) or buf[pos] == "]":
                return items, buf[pos:]
            try:
                value, end = self._decode(buf, pos, len(items))
            except json.JSONDecodeError as exc:
                if final:
                    raise self._bad(exc, len(items)) from None
                return items, buf[pos:]  # the element continues in the next chunk
            if end == len(buf) and not final:
                return items, buf[pos:]  # a number may continue in the next chunk
            items.append(value)
            pos = end


def reader_for(media_type: str, checker: RowChecker, limits: Limits) -> CsvRows | JsonRows:
    if media_type in CSV_TYPES:
        return CsvRows(checker, limits)
    if media_type in JSON_TYPES:
        return JsonRows(checker, limits, lines=False)
    if media_type in NDJSON_TYPES:
        return JsonRows(checker, limits, lines=True)
    raise unsupported()


def unsupported() -> ListError:
    return ListError(415, "unsupported_media_type", UNSUPPORTED)


def _batches(records: Iterator[Record], size: int = 8192) -> Iterator[list[Record]]:
    """Records in lists of ``size``: writing and hashing a list at a time is C-level work."""
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def check_list(
    body: Path, copy_file: Path, media_type: str, checker: RowChecker, limits: Limits
) -> int:
    """Parse and check the spooled ``body``; write its good records to ``copy_file`` as the
    text-format payload of COPY into ``stage`` (``copytext``); return the row count. Problems
    (duplicates included) collect in ``checker``; a list without rows is one, since a complete
    push of it would revoke every ticket. Deletes ``body`` when done. Blocking:
    ``worker.check_off_loop`` runs it."""
    reader = reader_for(media_type, checker, limits)
    duplicates = Duplicates()
    with (
        body.open(encoding="utf-8-sig", newline="") as src,
        copy_file.open("w", encoding="utf-8", newline="") as dst,
    ):
        for columns in reader.batches(src):
            dst.write(encode(columns))
            duplicates.add(columns)
    body.unlink()  # halves the disk a list takes while it is applied
    for p in duplicates.problems(copy_file, checker.max_problems):
        checker.add(p.row, p.column, p.problem)
    if not reader.rows and not checker.problem_count:
        checker.add(0, "(rows)", "the list has no rows (a complete push would revoke every ticket)")
    return reader.rows


@dataclass(frozen=True, slots=True)
class Task:
    """What a worker process needs to check one list: paths and plain values."""

    body: Path
    copy_file: Path
    media_type: str
    zones: list[str]
    timezone: str
    max_problems: int
    limits: Limits


@dataclass
class Outcome:
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    error: ListError | None = None


def run_task(task: Task) -> Outcome:
    """In a worker process: ``check_list`` with a fresh checker; never raises for bad input."""
    checker = RowChecker(task.zones, task.timezone, task.max_problems)
    try:
        rows = check_list(task.body, task.copy_file, task.media_type, checker, task.limits)
    except ListError as exc:
        return Outcome(error=exc)
    return Outcome(rows, checker.problems, checker.problem_count)
