"""Checked records as the exact payload of ``COPY stage FROM STDIN`` (PostgreSQL text format).

The parse worker writes this file and the apply step streams it into COPY unchanged, so syncd
does no per-row work once the list is checked. A batch travels as columns (``Columns``): the
fast CSV path produces them directly, other readers transpose their records. One line per
record, fields separated by tabs; a text field containing a backslash, tab, newline or carriage
return is escaped as the text format requires (checked once per batch on the joined text, so a
clean batch costs no per-field work).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from syncd.lists.rows import Record

Columns = Sequence[Sequence[Any]]
"""Nine columns of equal length, in ``Record`` order: row, ref, holder, email, category,
zone mask, valid_from, valid_until, group."""
TEXT_COLUMNS = (1, 2, 3, 4, 8)
_WIDTH = 9
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_UNESCAPES = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}


def from_records(records: list[Record]) -> Columns:
    return list(zip(*records, strict=True)) if records else [()] * _WIDTH


def encode(columns: Columns) -> str:
    """The COPY text lines of one batch (each ending in a newline)."""
    count = len(columns[0])
    if not count:
        return ""
    texts = [c if i in TEXT_COLUMNS else map(str, c) for i, c in enumerate(columns)]
    out = _join(texts)
    if (
        "\\" in out
        or "\r" in out
        or out.count("\t") != (_WIDTH - 1) * count
        or out.count("\n") != count
    ):
        texts = [
            [v.translate(_ESCAPES) for v in c] if i in TEXT_COLUMNS else map(str, c)
            for i, c in enumerate(columns)
        ]
        out = _join(texts)
    return out


def _join(texts: list[Any]) -> str:
    return "\n".join(map("\t".join, zip(*texts, strict=True))) + "\n"


def decode_field(text: str) -> str:
    """One text field of a line ``encode`` wrote, unescaped."""
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        pair = text[i : i + 2]
        if pair in _UNESCAPES:
            out.append(_UNESCAPES[pair])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
