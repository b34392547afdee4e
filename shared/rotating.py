"""The holder-bound rotating ticket (T2): a code that changes every ``period`` seconds and that
only the holder's phone can make, checked offline with the event's public key alone.

Format (docs/design.md section 5). The QR text is ``T2:`` followed by the base45 encoding of
exactly 195 bytes, integers big-endian::

    offset  size  field             meaning
    0       1     version           0x02
    1       30    kid .. valid_until as in T1 (shared.ticket), same sizes and order
    31      32    holder_key        raw Ed25519 public key made on the holder's device
    63      64    event signature   by the event key over bytes 0..62: the *pass*
    127     4     step              uint32 floor(unix_time / period) on the holder's device
    131     64    holder signature  by holder_key over b"TESSERA-T2\\x00" + bytes 0..130

Bytes 0..126 are the *pass*: syncd signs it once when the holder claims the ticket (and again
when the ticket is reissued); the phone appends the step and its own signature every period.
The private holder key never leaves the phone (the wallet makes it non-extractable), so a
screenshot is good for at most the step after next, and a copied pass without the phone's key
makes no valid code. The domain prefix keeps a holder signature from ever being read as an
event signature or a bundle signature. 296 characters: QR version 10 at level M, alphanumeric.

Contract, as for T1: ``parse_code`` and every ``check_*`` accept any input and either return
or raise ``TicketRejected`` with a ``RejectReason``; no other exception escapes.
"""

from __future__ import annotations

import math
import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared import ticket as t1
from shared.base45 import b45encode
from shared.errors import RejectReason, TicketRejected
from shared.ticket import Ticket, key_id, public_raw

PREFIX = "T2:"
VERSION = 2
HOLDER_DOMAIN = b"TESSERA-T2\x00"
DEFAULT_PERIOD = 10
MIN_PERIOD, MAX_PERIOD = 2, 300
"""Seconds a code lives: below 2 a phone cannot redraw and a scanner cannot read in time;
above 300 a screenshot is good for a quarter of an hour (two steps either side)."""

_BODY = struct.Struct(">B4sIQIHII")  # T1's fields with version 2: bytes 0..30
_STEP = struct.Struct(">I")
HOLDER_KEY_SIZE = 32
SIGNATURE_SIZE = 64
PASS_SIZE = _BODY.size + HOLDER_KEY_SIZE + SIGNATURE_SIZE  # 127
CODE_SIZE = PASS_SIZE + _STEP.size + SIGNATURE_SIZE  # 195
TEXT_LENGTH = len(PREFIX) + (CODE_SIZE // 2) * 3 + 2  # 296
MAX_STEP = 2**32 - 1


def step_at(now: float, period: int) -> int:
    """The step a device whose clock reads ``now`` shows: floor(now / period)."""
    return min(max(math.floor(now / period), 0), MAX_STEP)


def sign_pass(
    private_key: Ed25519PrivateKey,
    *,
    holder_key: bytes,
    event_id: int,
    ticket_id: int,
    nonce: int,
    zone: int = t1.ALL_ZONES,
    valid_from: int = 0,
    valid_until: int = 0,
) -> bytes:
    """The 127-byte pass syncd hands the holder's phone: bytes 0..62 and the event signature."""
    if len(holder_key) != HOLDER_KEY_SIZE:
        raise ValueError("a holder key is a raw 32-byte Ed25519 public key")
    kid = key_id(private_key.public_key())
    try:
        body = _BODY.pack(VERSION, kid, event_id, ticket_id, nonce, zone, valid_from, valid_until)
    except struct.error as exc:
        raise ValueError(f"ticket field out of range: {exc}") from exc
    signed = body + holder_key
    return signed + private_key.sign(signed)


def rotate(pass_: bytes, holder_private: Ed25519PrivateKey, step: int) -> str:
    """The QR text the holder's device shows for ``step`` (what the wallet page does in JS)."""
    if len(pass_) != PASS_SIZE or pass_[0] != VERSION:
        raise ValueError("not a T2 pass")
    if pass_[_BODY.size : _BODY.size + HOLDER_KEY_SIZE] != public_raw(holder_private.public_key()):
        raise ValueError("the pass is bound to another holder key")
    body = pass_ + _STEP.pack(step)
    return PREFIX + b45encode(body + holder_private.sign(HOLDER_DOMAIN + body))


def parse_code(text: object) -> Ticket:
    """A T1 or T2 QR text's fields, no signature checked; anything else is a named rejection."""
    if isinstance(text, str) and text.startswith(t1.PREFIX):
        return t1.parse_ticket(text)
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise TicketRejected(RejectReason.not_a_ticket, "not a Tessera ticket")
    raw, fields = t1.read_payload(text, PREFIX, TEXT_LENGTH, VERSION)
    holder_end = _BODY.size + HOLDER_KEY_SIZE
    return Ticket(
        version=fields[0],
        kid=fields[1],
        event_id=fields[2],
        ticket_id=fields[3],
        nonce=fields[4],
        zone=fields[5],
        valid_from=fields[6],
        valid_until=fields[7],
        holder_key=raw[_BODY.size : holder_end],
        signature=raw[holder_end:PASS_SIZE],
        step=_STEP.unpack_from(raw, PASS_SIZE)[0],
        holder_signature=raw[PASS_SIZE + _STEP.size :],
    )


def holder_signed(ticket: Ticket) -> bytes:
    """What the holder key signed: the domain, the pass and the step."""
    return HOLDER_DOMAIN + ticket.signed + ticket.signature + _STEP.pack(ticket.step)


def check_holder(ticket: Ticket) -> None:
    """The holder's signature over the pass and step, with the key the pass binds."""
    try:
        key = Ed25519PublicKey.from_public_bytes(ticket.holder_key)
        key.verify(ticket.holder_signature, holder_signed(ticket))
    except (InvalidSignature, ValueError):
        raise TicketRejected(
            RejectReason.bad_holder_signature, "holder signature does not match"
        ) from None


def check_step(ticket: Ticket, now: float, period: int, tolerance: float = 0.0) -> None:
    """The step must be within one of the gate's own, widened by ``tolerance`` seconds."""
    period = min(max(int(period), MIN_PERIOD), MAX_PERIOD)
    low = step_at(now - tolerance, period) - 1
    high = step_at(now + tolerance, period) + 1
    if not low <= ticket.step <= high:
        raise TicketRejected(RejectReason.code_expired, f"step {ticket.step} outside {low}..{high}")
