"""Interoperability: a second, minimal implementation written from docs/design.md section 1 alone.

It shares no code with ``shared.ticket`` (only the Ed25519 primitive), so a disagreement in byte
order, field offsets, base45 or the kid shows up here.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.ticket import key_id, parse_ticket, sign_ticket, verify_ticket

CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def spec_b45encode(data: bytes) -> str:
    out = ""
    pairs, rest = divmod(len(data), 2)
    for i in range(pairs):
        n = (data[2 * i] << 8) | data[2 * i + 1]
        out += CHARSET[n % 45] + CHARSET[(n // 45) % 45] + CHARSET[n // 2025]
    if rest:
        out += CHARSET[data[-1] % 45] + CHARSET[data[-1] // 45]
    return out


def spec_b45decode(text: str) -> bytes:
    out = b""
    for i in range(0, len(text), 3):
        group = [CHARSET.index(ch) for ch in text[i : i + 3]]
        n = group[0] + group[1] * 45 + (group[2] * 2025 if len(group) == 3 else 0)
        out += n.to_bytes(2 if len(group) == 3 else 1, "big")
    return out


def spec_kid(private: Ed25519PrivateKey) -> bytes:
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:4]


def spec_sign(private: Ed25519PrivateKey, fields: dict[str, int]) -> str:
    body = (
        b"\x01"
        + spec_kid(private)
        + fields["event_id"].to_bytes(4, "big")
        + fields["ticket_id"].to_bytes(8, "big")
        + fields["nonce"].to_bytes(4, "big")
        + fields["zone"].to_bytes(2, "big")
        + fields["valid_from"].to_bytes(4, "big")
        + fields["valid_until"].to_bytes(4, "big")
    )
    assert len(body) == 31
    return "T1:" + spec_b45encode(body + private.sign(body))


def spec_parse(text: str) -> dict[str, object]:
    assert text[:3] == "T1:"
    raw = spec_b45decode(text[3:])
    assert len(raw) == 95 and raw[0] == 1
    return {
        "kid": raw[1:5],
        "event_id": int.from_bytes(raw[5:9], "big"),
        "ticket_id": int.from_bytes(raw[9:17], "big"),
        "nonce": int.from_bytes(raw[17:21], "big"),
        "zone": int.from_bytes(raw[21:23], "big"),
        "valid_from": int.from_bytes(raw[23:27], "big"),
        "valid_until": int.from_bytes(raw[27:31], "big"),
        "body": raw[:31],
        "signature": raw[31:],
    }


FIELDS = {
    "event_id": 4_000_000_001,
    "ticket_id": 18_000_000_000_000_000_001,
    "nonce": 0x01020304,
    "zone": 0x8001,
    "valid_from": 1_700_000_000,
    "valid_until": 1_900_000_000,
}


def test_a_ticket_signed_by_the_spec_implementation_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    text = spec_sign(key, FIELDS)
    ticket = verify_ticket(text, {key_id(key.public_key()): key.public_key()}, now=1_800_000_000)
    assert {k: getattr(ticket, k) for k in FIELDS} == FIELDS


def test_our_tickets_parse_and_verify_with_the_spec_implementation() -> None:
    key = Ed25519PrivateKey.generate()
    text = sign_ticket(key, **FIELDS)
    parsed = spec_parse(text)
    assert parsed["kid"] == spec_kid(key)
    assert {k: parsed[k] for k in FIELDS} == FIELDS
    key.public_key().verify(parsed["signature"], parsed["body"])  # type: ignore[arg-type]
    assert parse_ticket(text).signed == parsed["body"]


def test_both_implementations_produce_identical_text() -> None:
    key = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
    assert spec_sign(key, FIELDS) == sign_ticket(key, **FIELDS)
