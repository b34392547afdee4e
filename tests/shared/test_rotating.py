"""The T2 holder-bound rotating code (design section 5): round trips, the step window, and the
contract that any input ends in a named rejection, as tests/shared/test_ticket.py does for T1."""

from __future__ import annotations

import contextlib
import math

import pytest
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.base45 import ALPHABET, b45decode, b45encode
from shared.errors import RejectReason, TicketRejected
from shared.rotating import (
    CODE_SIZE,
    HOLDER_DOMAIN,
    MAX_PERIOD,
    MIN_PERIOD,
    PASS_SIZE,
    TEXT_LENGTH,
    check_holder,
    check_step,
    parse_code,
    rotate,
    sign_pass,
    step_at,
)
from shared.ticket import Ticket, key_id, public_raw, sign_ticket, verify_signature

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEYRING = {key_id(KEY.public_key()): KEY.public_key()}
HOLDER = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
OTHER_HOLDER = Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96)))
PERIOD = 10
NOW = 1_800_000_000  # the start of a step: NOW / PERIOD is whole
STEP = NOW // PERIOD
FIELDS = dict(event_id=7, ticket_id=123456789012, nonce=0xDEADBEEF, zone=0x0003)
PASS = sign_pass(KEY, holder_key=public_raw(HOLDER.public_key()), **FIELDS)


def _code(step: int = STEP, holder: Ed25519PrivateKey = HOLDER) -> str:
    return rotate(PASS, holder, step)


def _verify(text: object, now: float = NOW, period: int = PERIOD, tolerance: float = 0) -> Ticket:
    """The gate's T2 checks in the design's order: format, key, event signature, holder
    signature, step."""
    ticket = parse_code(text)
    verify_signature(ticket, KEYRING)
    check_holder(ticket)
    check_step(ticket, now, period, tolerance)
    return ticket


def _rejects(text: object, reason: RejectReason | None = None, **kwargs: float) -> TicketRejected:
    with pytest.raises(TicketRejected) as info:
        _verify(text, **kwargs)  # type: ignore[arg-type]
    if reason is not None:
        assert info.value.reason is reason, info.value
    return info.value


def _resigned(raw: bytes, holder: Ed25519PrivateKey) -> str:
    """Bytes 0..130 of a code with ``holder``'s signature appended, whatever the pass binds."""
    return "T2:" + b45encode(raw[:131] + holder.sign(HOLDER_DOMAIN + raw[:131]))


# --- round trip ------------------------------------------------------------------------------


@settings(max_examples=100)
@given(
    event_id=st.integers(0, 2**32 - 1),
    ticket_id=st.integers(0, 2**64 - 1),
    nonce=st.integers(0, 2**32 - 1),
    zone=st.integers(0, 2**16 - 1),
    valid_from=st.integers(0, 2**32 - 1),
    valid_until=st.integers(0, 2**32 - 1),
    step=st.integers(0, 2**32 - 1),
)
def test_sign_rotate_parse_round_trips_every_field(step: int, **fields: int) -> None:
    text = rotate(
        sign_pass(KEY, holder_key=public_raw(HOLDER.public_key()), **fields), HOLDER, step
    )
    assert text.startswith("T2:") and len(text) == TEXT_LENGTH == 296
    ticket = parse_code(text)
    assert {k: getattr(ticket, k) for k in fields} == fields
    assert (ticket.version, ticket.rotating, ticket.step) == (2, True, step)
    assert ticket.holder_key == public_raw(HOLDER.public_key())
    verify_signature(ticket, KEYRING)
    check_holder(ticket)


def test_a_live_code_verifies_and_a_trailing_newline_is_tolerated() -> None:
    assert _verify(_code()).ticket_id == 123456789012
    assert _verify(_code() + "\r\n").step == STEP


def test_a_t1_text_through_parse_code_is_still_t1() -> None:
    text = sign_ticket(KEY, **FIELDS)
    ticket = parse_code(text)
    assert (ticket.version, ticket.rotating, ticket.holder_key, ticket.step) == (1, False, b"", 0)
    verify_signature(ticket, KEYRING)
    with pytest.raises(TicketRejected) as info:
        check_holder(ticket)
    assert info.value.reason is RejectReason.bad_holder_signature


@pytest.mark.parametrize("step", [STEP, 0, 2**32 - 1])
def test_qr_stays_alphanumeric_at_version_10_level_m(step: int) -> None:
    for text in (_code(step), "T2:" + "0" * 293, "T2:" + ":" * 293):
        qr = segno.make_qr(text, error="m", boost_error=False)
        assert (qr.mode, qr.error) == ("alphanumeric", "M")
        assert qr.version in range(1, 11)  # not a Micro QR either


# --- any input ends in a named rejection ---------------------------------------------------


@given(st.text(max_size=400))
def test_any_text_after_the_prefix_ends_in_a_rejection(text: str) -> None:
    _rejects("T2:" + text)


@given(st.text(alphabet=ALPHABET, min_size=293, max_size=293))
def test_any_base45_text_of_the_right_length_ends_in_a_rejection(text: str) -> None:
    _rejects("T2:" + text)


@settings(max_examples=300)
@given(
    body=st.binary(min_size=CODE_SIZE - 5, max_size=CODE_SIZE - 5),
    now=st.floats(0, 2**33, allow_nan=False),
    period=st.integers(-(2**40), 2**40),
    tolerance=st.floats(0, 10**6, allow_nan=False),
)
def test_any_parseable_code_ends_in_a_rejection_from_every_check(
    body: bytes, now: float, period: int, tolerance: float
) -> None:
    """Version 2 and this keyring's kid, the rest random: every check returns or names why."""
    ticket = parse_code("T2:" + b45encode(b"\x02" + key_id(KEY.public_key()) + body))
    for check in (
        lambda: verify_signature(ticket, KEYRING),
        lambda: check_holder(ticket),
        lambda: check_step(ticket, now, period, tolerance),
    ):
        with contextlib.suppress(TicketRejected):
            check()
    with pytest.raises(TicketRejected) as info:
        verify_signature(ticket, KEYRING)
    assert info.value.reason is RejectReason.bad_signature


@pytest.mark.parametrize("value", [None, 42, b"T2:ABC", ["T2:"], object()])
def test_non_string_input_is_rejected_not_crashed(value: object) -> None:
    _rejects(value, RejectReason.not_a_ticket)


@pytest.mark.parametrize(
    "text", ["T2", "t2:" + "0" * 293, "T3:" + "0" * 293, " T2:" + "0" * 293, "x" * 100_000]
)
def test_other_prefixes_are_not_tickets(text: str) -> None:
    _rejects(text, RejectReason.not_a_ticket)


@pytest.mark.parametrize(
    "text",
    [
        "T2:",
        "T2:" + "A" * 100_000,
        "T2:" + "0" * 143,  # T1's length under T2's prefix
        "T2:" + "0" * 292,
        "T2:" + "0" * 294,
        "T2:" + "0" * 293 + "\r\n\r\n",
        "T2:ÄÖÜ" + "0" * 290,
        "T2:" + "😀" * 293,
    ],
)
def test_wrong_lengths_and_alphabets_are_malformed(text: str) -> None:
    _rejects(text, RejectReason.malformed)


def test_every_truncation_is_malformed() -> None:
    text = _code()
    for cut in range(3, len(text)):
        _rejects(text[:cut], RejectReason.malformed)
    _rejects("T2:" + text[3:].lower(), RejectReason.malformed)


def test_every_single_character_change_is_rejected() -> None:
    text = _code()
    for i, char in enumerate(text):
        for bit in range(8):
            flipped = chr(ord(char) ^ (1 << bit))
            _rejects(text[:i] + flipped + text[i + 1 :])


@pytest.mark.parametrize(
    ("first", "last", "reason"),
    [
        (0, 0, RejectReason.malformed),  # version
        (1, 4, RejectReason.unknown_key),  # kid
        (5, 126, RejectReason.bad_signature),  # T1 fields, holder key, event signature
        (127, 194, RejectReason.bad_holder_signature),  # step, holder signature
    ],
)
def test_every_single_bit_flip_of_the_payload_is_named_by_its_field(
    first: int, last: int, reason: RejectReason
) -> None:
    raw = b45decode(_code()[3:])
    for bit in range(first * 8, (last + 1) * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        _rejects("T2:" + b45encode(bytes(flipped)), reason)


@pytest.mark.parametrize("version", [0, 1, 3, 0xFF])
def test_wrong_version_byte_is_malformed(version: int) -> None:
    raw = bytearray(b45decode(_code()[3:]))
    raw[0] = version
    err = _rejects("T2:" + b45encode(bytes(raw)), RejectReason.malformed)
    assert "version" in str(err)


def test_a_t2_payload_under_the_t1_prefix_is_malformed() -> None:
    _rejects("T1:" + _code()[3:], RejectReason.malformed)


# --- the holder key --------------------------------------------------------------------------


def test_a_code_signed_by_another_phone_fails_the_holder_signature() -> None:
    """A copied pass without the phone's key: signed by another holder key, still bound to the
    first, so the event signature holds and the holder's does not."""
    forged = _resigned(b45decode(_code()[3:]), OTHER_HOLDER)
    verify_signature(parse_code(forged), KEYRING)
    _rejects(forged, RejectReason.bad_holder_signature)


def test_a_pass_rebound_to_another_holder_key_fails_the_event_signature() -> None:
    """The holder key swapped in the pass (and the code properly signed by that key): only
    syncd can bind a key, so the event signature fails."""
    raw = bytearray(b45decode(_code()[3:]))
    raw[31:63] = public_raw(OTHER_HOLDER.public_key())
    swapped = _resigned(bytes(raw), OTHER_HOLDER)
    check_holder(parse_code(swapped))
    _rejects(swapped, RejectReason.bad_signature)


@pytest.mark.parametrize("holder_key", [b"", b"\x00" * 31, b"\xff" * 32, b"\x01" * 33])
def test_check_holder_names_any_holder_key_it_cannot_use(holder_key: bytes) -> None:
    ticket = parse_code(_code())
    unusable = Ticket(
        kid=ticket.kid,
        event_id=ticket.event_id,
        ticket_id=ticket.ticket_id,
        nonce=ticket.nonce,
        zone=ticket.zone,
        valid_from=ticket.valid_from,
        valid_until=ticket.valid_until,
        signature=ticket.signature,
        version=2,
        holder_key=holder_key,
        step=ticket.step,
        holder_signature=ticket.holder_signature,
    )
    with pytest.raises(TicketRejected) as info:
        check_holder(unusable)
    assert info.value.reason is RejectReason.bad_holder_signature


def test_rotate_refuses_a_pass_bound_to_another_key() -> None:
    with pytest.raises(ValueError, match="another holder key"):
        rotate(PASS, OTHER_HOLDER, STEP)


@pytest.mark.parametrize("not_a_pass", [b"", PASS[:-1], PASS + b"\x00", b"\x01" + PASS[1:]])
def test_rotate_refuses_what_is_not_a_pass(not_a_pass: bytes) -> None:
    with pytest.raises(ValueError, match="not a T2 pass"):
        rotate(not_a_pass, HOLDER, STEP)


@pytest.mark.parametrize(
    "field", [{"event_id": 2**32}, {"ticket_id": -1}, {"zone": 2**16}, {"nonce": 2**32}]
)
def test_sign_pass_refuses_out_of_range_fields(field: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="out of range"):
        sign_pass(KEY, holder_key=public_raw(HOLDER.public_key()), **{**FIELDS, **field})


@pytest.mark.parametrize("holder_key", [b"", b"\x01" * 31, b"\x01" * 33, b"\x01" * 64])
def test_sign_pass_refuses_a_holder_key_that_is_not_32_bytes(holder_key: bytes) -> None:
    with pytest.raises(ValueError, match="32-byte"):
        sign_pass(KEY, holder_key=holder_key, **FIELDS)


def test_the_pass_is_127_bytes_signed_by_the_event_key() -> None:
    assert len(PASS) == PASS_SIZE == 127
    KEY.public_key().verify(PASS[63:], PASS[:63])


# --- the step --------------------------------------------------------------------------------


def _step_rejected(step: int, **kwargs: float) -> None:
    with pytest.raises(TicketRejected) as info:
        check_step(parse_code(_code(step)), **kwargs)  # type: ignore[arg-type]
    assert info.value.reason is RejectReason.code_expired


@pytest.mark.parametrize("now", [NOW, NOW + 5, NOW + 9.999])
def test_one_step_either_side_is_accepted_two_are_expired(now: float) -> None:
    for step in (STEP - 1, STEP, STEP + 1):
        check_step(parse_code(_code(step)), now, PERIOD)
    for step in (STEP - 2, STEP + 2, 0, 2**32 - 1):
        _step_rejected(step, now=now, period=PERIOD)
        _rejects(_code(step), RejectReason.code_expired, now=now)


@pytest.mark.parametrize(("period", "steps"), [(10, 1), (10, 3), (2, 5), (300, 1), (30, 10)])
def test_a_tolerance_of_n_periods_widens_the_window_by_n_steps(period: int, steps: int) -> None:
    now = STEP * period + period / 2  # mid-step: the tolerance reaches as far either way
    for tolerance in (steps * period, steps * period + period / 2 - 0.01):
        for step in range(STEP - steps - 1, STEP + steps + 2):
            check_step(parse_code(_code(step)), now, period, tolerance)
        _step_rejected(STEP - steps - 2, now=now, period=period, tolerance=tolerance)
        _step_rejected(STEP + steps + 2, now=now, period=period, tolerance=tolerance)


def test_a_tolerance_short_of_a_step_boundary_widens_nothing() -> None:
    now = NOW + 5  # mid-step
    _step_rejected(STEP - 2, now=now, period=PERIOD, tolerance=4.9)
    _step_rejected(STEP + 2, now=now, period=PERIOD, tolerance=4.9)
    check_step(parse_code(_code(STEP + 2)), now, PERIOD, tolerance=5)


@settings(max_examples=200)
@given(
    now=st.floats(10**6, 2**32, allow_nan=False),
    period=st.integers(MIN_PERIOD, MAX_PERIOD),
    tolerance=st.integers(0, 600),
    skew=st.floats(-1, 1, allow_nan=False),
)
def test_a_phone_clock_within_the_tolerance_is_accepted(
    now: float, period: int, tolerance: int, skew: float
) -> None:
    """A phone whose clock is off by up to the tolerance, or by less than a period, shows a step
    the gate accepts."""
    ticket = parse_code(_code(step_at(now + skew * max(tolerance, period - 0.001), period)))
    check_step(ticket, now, period, tolerance)


@settings(max_examples=200)
@given(
    shown=st.floats(10**6, 2**31, allow_nan=False),
    later=st.floats(0, 10**6, allow_nan=False),
    period=st.integers(MIN_PERIOD, MAX_PERIOD),
)
def test_a_screenshot_expires_within_two_periods(shown: float, later: float, period: int) -> None:
    """A code on screen at ``shown`` is refused from two periods later on (no tolerance)."""
    step = step_at(shown, period)
    _step_rejected(step, now=shown + 2 * period + later, period=period)


@pytest.mark.parametrize(
    ("period", "clamped"), [(0, 2), (1, 2), (-5, 2), (2, 2), (301, 300), (10_000, 300)]
)
def test_the_period_is_clamped_to_2_through_300(period: int, clamped: int) -> None:
    now = NOW + 1
    check_step(parse_code(_code(math.floor(now / clamped))), now, period)
    for wrong in (math.floor(now / clamped) - 2, math.floor(now / clamped) + 2):
        _step_rejected(wrong, now=now, period=period)
    if period > 0 and period != clamped:
        _step_rejected(math.floor(now / period), now=now, period=period)


def test_step_at_is_floor_of_now_over_period_within_uint32() -> None:
    assert step_at(NOW + 9.99, PERIOD) == STEP
    assert step_at(-100, PERIOD) == 0
    assert step_at(2**40 * PERIOD, PERIOD) == 2**32 - 1
