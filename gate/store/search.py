"""Finding tickets by holder name or number: the folded search key and the query rules.

Door staff type what they hear or read: "muller" must find "Müller" and "MÜLLER", "strasse"
"Straße", "i" "İ". ``fold`` maps a name to its search key: casefold (full Unicode case folding,
``ß`` -> ``ss``), compatibility decomposition (NFKD: ``ﬁ`` -> ``fi``, ``é`` -> ``e`` + accent),
combining marks dropped, whitespace runs squeezed to one space. The key is computed once per
ticket at import (``tickets.search``, in a partial covering index of named tickets, kept in
name order), so a look-up folds only the query and reads the index, never the whole table.

A query is bounded before it reaches the database: at most ``MAX_QUERY`` characters; a number
is a ticket id (ASCII digits only, as the CLI and kiosk send it) and one beyond the list's
range is a ``TicketIdError``, never an ``OverflowError`` from SQLite.
"""

from __future__ import annotations

import functools
import sys
import unicodedata

MAX_QUERY = 100
MAX_TICKET_ID = 2**63 - 1
"""The largest ticket id a gate list can hold (SQLite integers are signed 64-bit)."""


class SearchError(ValueError):
    """A look-up query that cannot be answered as typed; the message says why."""


class TicketIdError(SearchError):
    """A ticket number outside 0..MAX_TICKET_ID: no list holds it."""

    def __init__(self, text: str) -> None:
        shown = text if len(text) <= 30 else text[:27] + "..."
        super().__init__(f"ticket number {shown} is out of range (0 to {MAX_TICKET_ID})")


def fold(text: str | None) -> str | None:
    """The search key of ``text`` (None stays None: a ticket without a name)."""
    if text is None:
        return None
    if text.isascii():  # most names: 20x faster, and the same key
        return " ".join(text.lower().split())
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join(decomposed.translate(_marks()).split())


@functools.cache
def _marks() -> dict[int, None]:
    """Every combining mark (nonzero combining class) -> deleted, for ``str.translate``.

    Built once, on the first name that is not ASCII (about 0.1 s); translate then runs in C,
    where a per-character Python test made importing 250,000 accented names seconds slower.
    """
    marks = (cp for cp in range(sys.maxunicode + 1) if unicodedata.combining(chr(cp)))
    return dict.fromkeys(marks)


def ticket_number(query: str) -> int | None:
    """The ticket id a query names, or None when it is a name. Raises ``TicketIdError``."""
    if not (query.isascii() and query.isdigit()):
        return None
    if len(query) > 19 or int(query) > MAX_TICKET_ID:
        raise TicketIdError(query)
    return int(query)


def check_ticket_id(ticket_id: int) -> int:
    """``ticket_id`` if a list can hold it, else ``TicketIdError``."""
    if not 0 <= ticket_id <= MAX_TICKET_ID:
        raise TicketIdError(str(ticket_id))
    return ticket_id


def search_key(query: str) -> str:
    """The folded text a name query looks for ('' when nothing is left to look for)."""
    if len(query) > MAX_QUERY:
        raise SearchError(f"search text is longer than {MAX_QUERY} characters")
    return fold(query) or ""
