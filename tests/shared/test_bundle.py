"""The signed list bundle: round trip, and every way a bundle can be untrustworthy."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json

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
    row = b'[2,22,"revoked",1,"VIP",null,0,0,""]'
    smuggled = raw.replace(row, b'[2,22,"valid",1,"VIP",null,0,0,""],[9]')
    assert smuggled != raw
    with pytest.raises(BundleError, match="bad ticket rows"):
        _read(gzip.compress(smuggled))


def test_validity_window_round_trips() -> None:
    """Format 2 rows carry valid_from / valid_until (a manual admit checks them)."""
    windowed = [BundleTicket(1, 1, valid_from=1_700_000_000, valid_until=0xFFFFFFFF)]
    assert _read(_bundle(windowed)) == windowed


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _resigned(raw: bytes) -> bytes:
    """Re-sign edited bundle lines: the check under test must not be the signature's."""
    lines = raw.splitlines(keepends=True)[:-1]
    body = b"".join(lines)
    signature = KEY.sign(b"TESSERA-BUNDLE-1\x00" + hashlib.sha256(body).digest())
    trailer = {"signer": key_id(KEY.public_key()).hex(), "signature": b64(signature)}
    return gzip.compress(body + json.dumps(trailer).encode() + b"\n")


def test_a_format_1_bundle_is_refused_by_name() -> None:
    """Regression (issue 13.1): format 1 had no validity dates; reading its tickets as valid
    forever would let a manual admit skip the window, so it is refused with what to do."""
    raw = gzip.decompress(_bundle()).replace(b"tessera-bundle/3", b"tessera-bundle/1")
    raw = raw.replace(b',0,0,""]\n', b"]\n")
    with pytest.raises(BundleError, match=r"tessera-bundle/1 is too old.*tessera bundle"):
        _read(_resigned(raw))


@pytest.mark.parametrize(
    "row",
    [
        b'[1,11,"valid",65535,"GA",null]',  # format 1 length
        b'[1,11,"valid",65535,"GA",null,0,0]',  # format 2 length in a format 3 bundle
        b'[1,11,"valid",65535,"GA",null,0,0,"",9]',
        b'[true,11,"valid",65535,"GA",null,0,0,""]',
        b'[1,11,"valid",65535,"GA",null,-1,0,""]',
        b'[1,11,"valid",65535,"GA",null,0,4294967296,""]',
        b'[1,11,"valid",65535,"GA",null,0,"soon",""]',
        b'[18446744073709551616,11,"valid",65535,"GA",null,0,0,""]',
        b'[1,11,"valid",65535,"GA",null,0,0,9]',  # a group is text
        b'[1,11,"valid",65535,"GA",null,0,0,null]',
        b'[1,11,"valid",65535,"GA",null,0,0,"' + b"x" * 65 + b'"]',  # longer than 64
        b'{"ticket_id":1}',
    ],
)
def test_a_signed_but_ill_typed_row_is_refused(row: bytes) -> None:
    raw = gzip.decompress(_bundle())
    edited = raw.replace(b'[1,11,"valid",65535,"GA","Ada Lovelace",0,0,""]', row)
    assert edited != raw
    with pytest.raises(BundleError, match="bad ticket row 1"):
        _read(_resigned(edited))
