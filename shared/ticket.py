"""The signed T1 ticket: what a ticket QR code holds, and how to sign and check it.

Format (docs/design.md section 1). The QR text is ``T1:`` followed by the base45 (RFC 9285) encoding
of exactly 95 bytes, all integers big-endian::

    offset  size  field        meaning
    0       1     version      0x01
    1       4     kid          SHA-256(raw 32-byte Ed25519 public key)[:4]
    5       4     event_id     uint32
    9       8     ticket_id    uint64
    17      4     nonce        uint32, new random value at every (re)issue
    21      2     zone         uint16 bit mask of areas the ticket opens, 0xFFFF = all
    23      4     valid_from   uint32 Unix seconds, 0 = no lower bound
    27      4     valid_until  uint32 Unix seconds, 0 = no upper bound
    31      64    signature    Ed25519 over bytes 0..30

Base45 keeps the QR in alphanumeric mode: 146 characters fit QR version 6 at error correction
level M. The kid selects the one key to try, so verification never loops over keys. The nonce lets
an organiser reissue a ticket so that the old QR stops working even at an offline gate.

Contract: ``parse_ticket`` and ``verify_ticket`` accept *any* object and either return a
``Ticket`` or raise ``TicketRejected`` with a ``RejectReason``; no other exception escapes.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.base45 import Base45Error, b45decode, b45encode
from shared.errors import RejectReason, TicketRejected

PREFIX = "T1:"
VERSION = 1
ALL_ZONES = 0xFFFF
DEFAULT_CLOCK_TOLERANCE = 300
"""Seconds of gate clock error forgiven at both ends of the validity window."""

_BODY = struct.Struct(">B4sIQIHII")  # shared.rotating packs the same fields for T2
BODY_SIZE = _BODY.size  # 31
SIGNATURE_SIZE = 64
TICKET_SIZE = BODY_SIZE + SIGNATURE_SIZE  # 95
TEXT_LENGTH = len(PREFIX) + (TICKET_SIZE // 2) * 3 + 2  # 146

Keyring = Mapping[bytes, Ed25519PublicKey]
"""kid (4 bytes) -> public key. Only keys the caller accepts for this event belong in it."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """The fields of a T1 ticket. ``signed`` is bytes 0..30 exactly as they were signed."""

    kid: bytes
    event_id: int
    ticket_id: int
    nonce: int
    zone: int
    valid_from: int
    valid_until: int
    signature: bytes
    version: int = VERSION
    holder_key: bytes = b""  # T2 only (shared.rotating): the holder device's raw public key
    step: int = 0  # T2 only: floor(unix_time / period) on the holder's device
    holder_signature: bytes = b""  # T2 only: by holder_key over the code's bytes 0..130

    @property
    def signed(self) -> bytes:
        """What the event key signed: bytes 0..30 (T1), or bytes 0..62 of a T2 pass."""
        return (
            _BODY.pack(
                self.version,
                self.kid,
                self.event_id,
                self.ticket_id,
                self.nonce,
                self.zone,
                self.valid_from,
                self.valid_until,
            )
            + self.holder_key
        )

    @property
    def rotating(self) -> bool:
        """A holder-bound rotating code (T2), as opposed to a static T1 code."""
        return self.version != VERSION


def key_id(public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte kid: the first bytes of SHA-256 of the raw public key."""
    return hashlib.sha256(public_raw(public_key)).digest()[:4]


def public_raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_to_b64(public_key: Ed25519PublicKey) -> str:
    """Raw 32-byte public key as unpadded base64url, the form used in JSON."""
    return base64.urlsafe_b64encode(public_raw(public_key)).rstrip(b"=").decode("ascii")


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    """Inverse of ``public_key_to_b64``; raises ``ValueError`` for anything but 32 bytes."""
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_to_pem(private_key: Ed25519PrivateKey, password: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted when a password is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def private_key_from_pem(pem: bytes, password: bytes | None = None) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=password)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def sign_ticket(
    private_key: Ed25519PrivateKey,
    *,
    event_id: int,
    ticket_id: int,
    nonce: int,
    zone: int = ALL_ZONES,
    valid_from: int = 0,
    valid_until: int = 0,
) -> str:
    """Sign a ticket and return its QR text (``T1:`` + base45). Out-of-range fields raise."""
    kid = key_id(private_key.public_key())
    try:
        body = _BODY.pack(VERSION, kid, event_id, ticket_id, nonce, zone, valid_from, valid_until)
    except struct.error as exc:
        raise ValueError(f"ticket field out of range: {exc}") from exc
    return PREFIX + b45encode(body + private_key.sign(body))


def read_payload(
    text: str, prefix: str, text_length: int, version: int
) -> tuple[bytes, tuple[Any, ...]]:
    """The bytes of a ticket text behind its ``prefix`` and the fields of its first 31 (shared
    by T1 and T2, ``shared.rotating``); a wrong length, bad base45 or another version is
    ``malformed``. A trailing CR/LF from a keyboard-wedge scanner is forgiven."""
    max_text = text_length + 2
    payload = text[len(prefix) : max_text].rstrip("\r\n")
    if len(text) > max_text or len(payload) != text_length - len(prefix):
        raise TicketRejected(RejectReason.malformed, "wrong length")
    try:
        raw = b45decode(payload)
    except Base45Error as exc:
        raise TicketRejected(RejectReason.malformed, str(exc)) from None
    fields = _BODY.unpack_from(raw)
    if fields[0] != version:
        raise TicketRejected(RejectReason.malformed, f"unsupported version {fields[0]}")
    return raw, fields


def parse_ticket(text: object) -> Ticket:
    """Decode the fields of a QR text without checking the signature."""
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise TicketRejected(RejectReason.not_a_ticket, "not a Tessera ticket")
    raw, fields = read_payload(text, PREFIX, TEXT_LENGTH, VERSION)
    return Ticket(
        version=fields[0],
        kid=fields[1],
        event_id=fields[2],
        ticket_id=fields[3],
        nonce=fields[4],
        zone=fields[5],
        valid_from=fields[6],
        valid_until=fields[7],
        signature=raw[BODY_SIZE:],
    )


def verify_signature(ticket: Ticket, keyring: Keyring) -> None:
    """Check the signature with the one key the kid names."""
    key = keyring.get(ticket.kid)
    if key is None:
        raise TicketRejected(RejectReason.unknown_key, f"no key {ticket.kid.hex()}")
    try:
        key.verify(ticket.signature, ticket.signed)
    except InvalidSignature:
        raise TicketRejected(RejectReason.bad_signature, "signature does not match") from None


def check_window(ticket: Ticket, now: float, clock_tolerance: float) -> None:
    """Validity window with ``clock_tolerance`` seconds of grace at both ends."""
    if ticket.valid_from and now + clock_tolerance < ticket.valid_from:
        raise TicketRejected(RejectReason.not_yet_valid, f"valid from {ticket.valid_from}")
    if ticket.valid_until and now - clock_tolerance > ticket.valid_until:
        raise TicketRejected(RejectReason.expired, f"valid until {ticket.valid_until}")


def verify_ticket(
    text: object,
    keyring: Keyring,
    *,
    now: float | None = None,
    clock_tolerance: float = DEFAULT_CLOCK_TOLERANCE,
) -> Ticket:
    """Parse, pick the key by kid, check the signature, then the validity window."""
    ticket = parse_ticket(text)
    verify_signature(ticket, keyring)
    check_window(ticket, time.time() if now is None else now, clock_tolerance)
    return ticket
