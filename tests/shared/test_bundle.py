"""The signed list bundle: round trip, and every way a bundle can be untrustworthy."""

from __future__ import annotations

import gzip
import io

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.bundle import (
    BundleEvent,
    BundleHeader,
    BundleKey,
    BundleReader,
    BundleTicket,
    write_bundle,
)
from shared.errors import BundleError
from shared.ticket import key_id, public_key_to_b64

KEY = Ed25519PrivateKey.generate()
TRUSTED = {key_id(KEY.public_key()): KEY.public_key()}
TICKETS = [
    BundleTicket(1, 11, "valid", 0xFFFF, "GA", "Ada Lovelace"),
    BundleTicket(2, 22, "revoked", 1, "VIP", None),
    BundleTicket(3, 33, "blocked", 2, "Crew", "Zoë Ünicode"),
]


def _bundle(tickets: list[BundleTicket] = TICKETS, signer: Ed25519PrivateKey = KEY) -> bytes:
    header = BundleHeader(
        event=BundleEvent(event_id=7, name="Fest", zones={"0": "Main", "1": "VIP"}),
        keys=[BundleKey(key_id(KEY.public_key()).hex(), public_key_to_b64(KEY.public_key()))],
        ticket_count=len(tickets),
        cursor="c42",
    )
    out = io.BytesIO()
    write_bundle(out, header, tickets, signer)
    return out.getvalue()


def _read(data: bytes) -> list[BundleTicket]:
    reader = BundleReader(io.BytesIO(data), TRUSTED)
    tickets = list(reader.tickets())
    reader.finish()
    return tickets


def test_round_trip() -> None:
    reader = BundleReader(io.BytesIO(_bundle()), TRUSTED)
    assert reader.header.event.name == "Fest" and reader.header.cursor == "c42"
    assert list(reader.tickets()) == TICKETS
    reader.finish()


def test_untrusted_signer_is_refused() -> None:
    with pytest.raises(BundleError, match="untrusted key"):
        _read(_bundle(signer=Ed25519PrivateKey.generate()))


def test_tampered_ticket_is_refused() -> None:
    raw = gzip.decompress(_bundle()).replace(b'"GA"', b'"XX"')
    with pytest.raises(BundleError, match="does not match"):
        _read(gzip.compress(raw))


@pytest.mark.parametrize("cut", [5, 40, 200, -30, -2])
def test_truncated_bundle_is_refused(cut: int) -> None:
    with pytest.raises(BundleError):
        _read(_bundle()[:cut])


def test_unsigned_bundle_is_refused() -> None:
    lines = gzip.decompress(_bundle()).splitlines(keepends=True)
    with pytest.raises(BundleError):
        _read(gzip.compress(b"".join(lines[:-1])))


@pytest.mark.parametrize("data", [b"", b"not gzip at all", gzip.compress(b'{"format":"x"}\n')])
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(BundleError):
        _read(data)


def test_many_batches_round_trip_in_order() -> None:
    many = [BundleTicket(i, i, "valid", 1, "GA", None) for i in range(1, 10_001)]
    assert _read(_bundle(many)) == many


def test_a_line_smuggling_two_rows_is_refused() -> None:
    raw = gzip.decompress(_bundle())
    row = b'[2,22,"revoked",1,"VIP",null,0,0]'
    smuggled = raw.replace(row, b'[2,22,"valid",1,"VIP",null,0,0],[9]')
    assert smuggled != raw
    with pytest.raises(BundleError, match="bad ticket rows"):
        _read(gzip.compress(smuggled))
