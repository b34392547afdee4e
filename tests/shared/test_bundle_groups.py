"""Bundle format 3 carries each ticket's group; format 2 (no group) still loads.

A gate built before groups reads format 2 only, so syncd writes 2 for it (``?format=``); a gate
that knows groups reads both, a format-2 ticket having no group.
"""

from __future__ import annotations

import gzip
import io
import json

import pytest

from shared.bundle import FORMAT, BundleHeader, BundleReader, BundleTicket, write_bundle
from shared.errors import BundleError
from tests.shared.test_bundle import KEY, TRUSTED, _bundle, _read, _resigned

GROUPED = [
    BundleTicket(1, 11, "valid", 1, "GA", "Ada", group="ORD-1"),
    BundleTicket(2, 22, "valid", 1, "GA", "Bo", group="ORD-1"),
    BundleTicket(3, 33, "valid", 1, "GA", "Cy"),
    BundleTicket(4, 44, "valid", 1, "GA", "Di", group="Müller family · 2"),
]


def _bundle_in(fmt: str, tickets: list[BundleTicket]) -> bytes:
    header = BundleHeader.from_json(
        {**json.loads(gzip.decompress(_bundle(tickets)).split(b"\n")[0]), "format": fmt}
    )
    out = io.BytesIO()
    write_bundle(out, header, tickets, KEY)
    return out.getvalue()


def test_groups_round_trip_in_format_3() -> None:
    data = _bundle(GROUPED)
    assert (
        json.loads(gzip.decompress(data).split(b"\n")[0])["format"]
        == FORMAT
        == ("tessera-bundle/3")
    )
    assert _read(data) == GROUPED


def test_a_format_2_bundle_loads_without_groups() -> None:
    """What an older syncd (or ``?format=2``) writes: eight fields a row, read as no group."""
    data = _bundle_in("tessera-bundle/2", GROUPED)
    rows = gzip.decompress(data).split(b"\n")[1:-2]
    assert [len(json.loads(r)) for r in rows] == [8] * 4
    reader = BundleReader(io.BytesIO(data), TRUSTED)
    assert reader.header.format == "tessera-bundle/2"
    tickets = list(reader.tickets())
    reader.finish()
    assert [t.group for t in tickets] == [""] * 4
    assert [t.holder for t in tickets] == ["Ada", "Bo", "Cy", "Di"]


def test_a_format_2_header_with_format_3_rows_is_refused() -> None:
    """The header decides the row length: a signed mix of the two is one named error."""
    raw = gzip.decompress(_bundle(GROUPED)).replace(b"tessera-bundle/3", b"tessera-bundle/2")
    with pytest.raises(BundleError, match="bad ticket row 1: expected 8 fields"):
        _read(_resigned(raw))


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"[]", "not a JSON object"),
        (b'{"format": ["tessera-bundle/3"]}', "not a tessera bundle"),
        (b'{"format": "tessera-bundle/4"}', "not a tessera bundle"),
    ],
)
def test_a_bad_header_is_one_named_error(header: bytes, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        _read(gzip.compress(header + b"\n"))
