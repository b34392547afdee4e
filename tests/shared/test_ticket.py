"""The T1 ticket format (docs/design.md section 1): round trips, rejections, QR fit."""

from __future__ import annotations

import pytest
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.base45 import Base45Error, b45decode, b45encode
from shared.errors import RejectReason, TicketRejected
from shared.ticket import (
    TEXT_LENGTH,
    Ticket,
    key_id,
    parse_ticket,
    private_key_from_pem,
    private_key_to_pem,
    public_key_from_b64,
    public_key_to_b64,
    public_raw,
    sign_ticket,
    verify_ticket,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEYRING = {key_id(KEY.public_key()): KEY.public_key()}
NOW = 1_800_000_000


def _valid(**overrides: int) -> str:
    fields = dict(event_id=7, ticket_id=123456789012, nonce=0xDEADBEEF, zone=0x0003)
    fields.update(overrides)
    return sign_ticket(KEY, **fields)


def _rejects(text: object, reason: RejectReason | None = None, **kwargs: float) -> TicketRejected:
    with pytest.raises(TicketRejected) as info:
        verify_ticket(text, KEYRING, now=NOW, **kwargs)
    if reason is not None:
        assert info.value.reason is reason
    return info.value


# --- base45 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"AB", "BB8"),
        (b"Hello!!", "%69 VD92EX0"),
        (b"base-45", "UJCLQE7W581"),
        (b"ietf!", "QED8WEX0"),
    ],
)
def test_base45_matches_rfc_9285_examples(raw: bytes, text: str) -> None:
    assert b45encode(raw) == text
    assert b45decode(text) == raw


@pytest.mark.parametrize("bad", ["GGW", "A", "ab", "BB8A", ":::", "BB8\n", "ÄBC"])
def test_base45_rejects_invalid_text(bad: str) -> None:
    with pytest.raises(Base45Error):
        b45decode(bad)


@given(st.binary(max_size=200))
def test_base45_round_trips_any_bytes(raw: bytes) -> None:
    assert b45decode(b45encode(raw)) == raw


# --- the ticket -----------------------------------------------------------------------------


@settings(max_examples=200)
@given(
    event_id=st.integers(0, 2**32 - 1),
    ticket_id=st.integers(0, 2**64 - 1),
    nonce=st.integers(0, 2**32 - 1),
    zone=st.integers(0, 2**16 - 1),
    valid_from=st.integers(0, 2**32 - 1),
    valid_until=st.integers(0, 2**32 - 1),
)
def test_sign_then_parse_round_trips_every_field(**fields: int) -> None:
    text = sign_ticket(KEY, **fields)
    assert text.startswith("T1:") and len(text) == TEXT_LENGTH == 146
    ticket = parse_ticket(text)
    assert ticket.kid == key_id(KEY.public_key())
    assert {k: getattr(ticket, k) for k in fields} == fields
    KEY.public_key().verify(ticket.signature, ticket.signed)


def test_verify_accepts_a_valid_ticket() -> None:
    ticket = verify_ticket(_valid(), KEYRING, now=NOW)
    assert isinstance(ticket, Ticket)
    assert (ticket.event_id, ticket.ticket_id, ticket.nonce, ticket.zone) == (
        7,
        123456789012,
        0xDEADBEEF,
        3,
    )


def test_a_trailing_newline_from_a_keyboard_wedge_scanner_is_tolerated() -> None:
    assert verify_ticket(_valid() + "\r\n", KEYRING, now=NOW).ticket_id == 123456789012


def test_every_single_bit_flip_of_the_payload_is_rejected() -> None:
    raw = bytearray(b45decode(_valid()[3:]))
    for bit in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        _rejects("T1:" + b45encode(bytes(flipped)))


def test_every_single_bit_flip_of_the_text_is_rejected() -> None:
    text = _valid()
    for i, char in enumerate(text):
        for bit in range(8):
            flipped = chr(ord(char) ^ (1 << bit))
            _rejects(text[:i] + flipped + text[i + 1 :])


def test_unknown_kid_is_rejected_by_name() -> None:
    other = Ed25519PrivateKey.generate()
    err = _rejects(sign_ticket(other, event_id=7, ticket_id=1, nonce=1), RejectReason.unknown_key)
    assert "no key" in str(err)


def test_a_key_impersonating_the_kid_fails_the_signature() -> None:
    impostor = Ed25519PrivateKey.generate()
    text = sign_ticket(impostor, event_id=7, ticket_id=1, nonce=1)
    raw = bytearray(b45decode(text[3:]))
    raw[1:5] = key_id(KEY.public_key())
    _rejects("T1:" + b45encode(bytes(raw)), RejectReason.bad_signature)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "T1:",
        "T1",
        "x" * 100_000,
        "T1:" + "A" * 100_000,
        "https://example.org/tickets/123",
        "WIFI:S:venue;T:WPA;P:secret;;",
        "HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH-R6IOOK.IR9B+9D-KO*UQ0D6WV6E2C",
        "T1:ÄÖÜ" + "0" * 140,
        "T2:" + "0" * 143,
        "\x00\x01\x02",
        "😀" * 50,
    ],
)
def test_foreign_and_garbage_texts_are_rejected(text: str) -> None:
    err = _rejects(text)
    assert err.reason in {RejectReason.not_a_ticket, RejectReason.malformed}


@pytest.mark.parametrize("value", [None, 42, b"T1:ABC", ["T1:"], object()])
def test_non_string_input_is_rejected_not_crashed(value: object) -> None:
    _rejects(value, RejectReason.not_a_ticket)


def test_lower_case_and_truncated_tickets_are_malformed() -> None:
    text = _valid()
    _rejects("T1:" + text[3:].lower(), RejectReason.malformed)
    for cut in range(3, len(text)):
        _rejects(text[:cut], RejectReason.malformed)


def test_wrong_version_byte_is_malformed() -> None:
    raw = bytearray(b45decode(_valid()[3:]))
    raw[0] = 2
    _rejects("T1:" + b45encode(bytes(raw)), RejectReason.malformed)


@given(st.text(max_size=300))
def test_any_text_at_all_ends_in_ticket_rejected(text: str) -> None:
    _rejects(text)


def test_validity_window_honours_clock_tolerance_at_both_ends() -> None:
    text = _valid(valid_from=NOW + 100, valid_until=NOW + 1000)
    verify_ticket(text, KEYRING, now=NOW, clock_tolerance=100)
    _rejects(text, RejectReason.not_yet_valid, clock_tolerance=99)
    verify_ticket(text, KEYRING, now=NOW + 1100, clock_tolerance=100)
    with pytest.raises(TicketRejected) as info:
        verify_ticket(text, KEYRING, now=NOW + 1101, clock_tolerance=100)
    assert info.value.reason is RejectReason.expired


def test_zero_bounds_mean_unbounded() -> None:
    text = _valid(valid_from=0, valid_until=0)
    for now in (0, NOW, 2**32 - 1):
        verify_ticket(text, KEYRING, now=now, clock_tolerance=0)


def test_out_of_range_fields_refuse_to_sign() -> None:
    with pytest.raises(ValueError, match="out of range"):
        sign_ticket(KEY, event_id=2**32, ticket_id=1, nonce=1)


@pytest.mark.parametrize("text", ["T1:" + "0" * 143, "T1:" + "Z" * 143])
def test_qr_stays_alphanumeric_at_version_6_level_m(text: str) -> None:
    for candidate in (_valid(), _valid(ticket_id=2**64 - 1, nonce=2**32 - 1), text):
        qr = segno.make_qr(candidate, error="m", boost_error=False)
        assert qr.mode == "alphanumeric"
        assert qr.version <= 6
        assert qr.error == "M"


# --- keys -----------------------------------------------------------------------------------


def test_public_key_base64url_round_trip_and_kid() -> None:
    pub = KEY.public_key()
    text = public_key_to_b64(pub)
    assert "=" not in text and len(text) == 43
    assert public_raw(public_key_from_b64(text)) == public_raw(pub)
    assert len(key_id(pub)) == 4


def test_public_key_from_b64_rejects_wrong_length() -> None:
    with pytest.raises(ValueError):
        public_key_from_b64("AAAA")


@pytest.mark.parametrize("password", [None, b"correct horse"])
def test_private_key_pkcs8_pem_round_trip(password: bytes | None) -> None:
    pem = private_key_to_pem(KEY, password)
    assert pem.startswith(b"-----BEGIN " + (b"ENCRYPTED " if password else b"") + b"PRIVATE KEY")
    again = private_key_from_pem(pem, password)
    assert public_raw(again.public_key()) == public_raw(KEY.public_key())
