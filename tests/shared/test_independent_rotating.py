"""Interoperability for T2: a second, minimal implementation written from the format table alone
(the design notes' section 5: offsets, sizes, the domain tag).

It shares no code with ``shared.rotating`` or ``shared.ticket`` (only the Ed25519 primitive, and
the spec base45 and kid of the T1 twin in test_independent_impl), so a disagreement in byte order,
field offsets, what each signature covers, the domain tag or the text's length shows up here. The
wallet page and any outside tool make codes the same way this one does.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.rotating import check_holder, check_step, parse_code, rotate, sign_pass
from shared.ticket import verify_signature
from tests.shared.test_independent_impl import spec_b45decode, spec_b45encode, spec_kid

DOMAIN = b"TESSERA-T2\x00"
PERIOD = 10
NOW = 1_800_000_004
STEP = NOW // PERIOD
FIELDS = {
    "event_id": 4_000_000_001,
    "ticket_id": 18_000_000_000_000_000_001,
    "nonce": 0x01020304,
    "zone": 0x8001,
    "valid_from": 1_700_000_000,
    "valid_until": 1_900_000_000,
}
EVENT = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
HOLDER = Ed25519PrivateKey.from_private_bytes(b"\x2a" * 32)


def spec_raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def spec_pass(event: Ed25519PrivateKey, holder_public: bytes, fields: dict[str, int]) -> bytes:
    """Bytes 0..126: version, the T1 fields, the holder key, the event's signature over 0..62."""
    signed = (
        b"\x02"
        + spec_kid(event)
        + fields["event_id"].to_bytes(4, "big")
        + fields["ticket_id"].to_bytes(8, "big")
        + fields["nonce"].to_bytes(4, "big")
        + fields["zone"].to_bytes(2, "big")
        + fields["valid_from"].to_bytes(4, "big")
        + fields["valid_until"].to_bytes(4, "big")
        + holder_public
    )
    assert len(signed) == 63
    return signed + event.sign(signed)


def spec_code(pass_: bytes, holder: Ed25519PrivateKey, step: int) -> str:
    """The QR text a phone shows: the pass, the step, the holder's signature over 0..130."""
    body = pass_ + step.to_bytes(4, "big")
    assert len(body) == 131
    return "T2:" + spec_b45encode(body + holder.sign(DOMAIN + body))


def spec_parse(text: str) -> dict[str, object]:
    assert text[:3] == "T2:"
    raw = spec_b45decode(text[3:])
    assert len(raw) == 195 and raw[0] == 2
    return {
        "version": raw[0],
        "kid": raw[1:5],
        "event_id": int.from_bytes(raw[5:9], "big"),
        "ticket_id": int.from_bytes(raw[9:17], "big"),
        "nonce": int.from_bytes(raw[17:21], "big"),
        "zone": int.from_bytes(raw[21:23], "big"),
        "valid_from": int.from_bytes(raw[23:27], "big"),
        "valid_until": int.from_bytes(raw[27:31], "big"),
        "holder_key": raw[31:63],
        "event_signature": raw[63:127],
        "step": int.from_bytes(raw[127:131], "big"),
        "holder_signature": raw[131:195],
        "event_signed": raw[:63],
        "holder_signed": DOMAIN + raw[:131],
    }


def test_a_code_made_by_the_spec_implementation_verifies() -> None:
    text = spec_code(spec_pass(EVENT, spec_raw_public(HOLDER), FIELDS), HOLDER, STEP)
    ticket = parse_code(text)
    verify_signature(ticket, {spec_kid(EVENT): EVENT.public_key()})
    check_holder(ticket)
    check_step(ticket, NOW, PERIOD)
    assert {k: getattr(ticket, k) for k in FIELDS} == FIELDS
    assert (ticket.version, ticket.rotating, ticket.kid) == (2, True, spec_kid(EVENT))
    assert (ticket.holder_key, ticket.step) == (spec_raw_public(HOLDER), STEP)


def test_our_codes_parse_and_verify_with_the_spec_implementation() -> None:
    holder = Ed25519PrivateKey.generate()
    event = Ed25519PrivateKey.generate()
    text = rotate(sign_pass(event, holder_key=spec_raw_public(holder), **FIELDS), holder, STEP)
    assert text.startswith("T2:") and len(text) == 296
    parsed = spec_parse(text)
    assert {k: parsed[k] for k in FIELDS} == FIELDS
    assert (parsed["version"], parsed["kid"]) == (2, spec_kid(event))
    assert (parsed["holder_key"], parsed["step"]) == (spec_raw_public(holder), STEP)
    event.public_key().verify(parsed["event_signature"], parsed["event_signed"])  # type: ignore[arg-type]
    holder.public_key().verify(parsed["holder_signature"], parsed["holder_signed"])  # type: ignore[arg-type]
    assert parse_code(text).signed == parsed["event_signed"]


def test_the_pass_and_the_rotation_are_interchangeable() -> None:
    """syncd signs the pass, the phone (the wallet page, or any outside tool) rotates it: a pass
    from either implementation rotated by the other makes the same code."""
    holder_public = spec_raw_public(HOLDER)
    ours = sign_pass(EVENT, holder_key=holder_public, **FIELDS)
    theirs = spec_pass(EVENT, holder_public, FIELDS)
    assert ours == theirs and len(ours) == 127
    assert rotate(theirs, HOLDER, STEP) == spec_code(ours, HOLDER, STEP)


def test_both_implementations_produce_identical_text() -> None:
    for step in (0, STEP, 2**32 - 1):
        ours = rotate(sign_pass(EVENT, holder_key=spec_raw_public(HOLDER), **FIELDS), HOLDER, step)
        assert ours == spec_code(spec_pass(EVENT, spec_raw_public(HOLDER), FIELDS), HOLDER, step)
