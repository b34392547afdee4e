"""Repeated external references within one list, found with 16 bytes per row.

The parser notes a 64-bit hash and the row number of every good row's reference; only rows whose
hash is not unique are confirmed, by reading their references back from the checked COPY file
(``copytext``).
No database is involved, so a list with a duplicate is refused before a connection is taken.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from pathlib import Path

import numpy as np

from syncd.lists.copytext import Columns, decode_field
from syncd.lists.rows import Problem


class Duplicates:
    """Collects (hash, row) pairs; ``problems`` names every row that repeats an earlier one."""

    def __init__(self) -> None:
        self._hashes = array("q")
        self._rows = array("q")

    def add(self, columns: Columns) -> None:
        """Note the references of a batch (row numbers first, references second)."""
        self._hashes.extend(map(hash, columns[1]))
        self._rows.extend(columns[0])

    def suspects(self) -> set[int]:
        """Row numbers whose reference hash is not unique (a superset of the duplicates)."""
        if not self._hashes:
            return set()
        hashes = np.frombuffer(self._hashes, dtype=np.int64)
        _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
        rows = np.frombuffer(self._rows, dtype=np.int64)
        return {int(r) for r in rows[counts[inverse] > 1]}

    def problems(self, copy_file: Path, limit: int) -> list[Problem]:
        """The duplicates among the suspects, read back from ``copy_file`` (rows in order)."""
        suspects = self.suspects()
        if not suspects:
            return []
        last = max(suspects)
        by_ref: dict[str, list[int]] = defaultdict(list)
        with copy_file.open(encoding="utf-8", newline="\n") as f:
            for line in f:
                fields = line.split("\t", 2)
                row = int(fields[0])
                if row in suspects:
                    by_ref[decode_field(fields[1])].append(row)
                if row >= last:
                    break
        found = (
            Problem(row, "external_ref", f"duplicate of row {rows[0]}")
            for rows in by_ref.values()
            for row in rows[1:]
        )
        return sorted(found, key=lambda p: p.row)[:limit]
