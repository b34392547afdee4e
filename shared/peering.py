"""Gates that tell each other (docs/design.md section 6): the gate certificate, the handshake
proofs and the signed admission a gate serves to its peers.

**Certificate.** Each gate makes its own Ed25519 key pair at enrolment and sends the public half;
syncd certifies it with the event's signing key. Binary, big-endian, base64url on the wire::

    offset  size  field        meaning
    0       1     version      0x01
    1       4     kid          the event key that signed it (as in T1)
    5       4     event_id     uint32
    9       8     gate_id      uint64, syncd's id of the gate
    17      32    gate_key     raw Ed25519 public key made on the gate
    49      4     issued_at    uint32 Unix seconds (a later certificate of the same gate wins)
    53      1     name_len     n, 1..64 (the gate's name, UTF-8, as staff read it)
    54      n     name
    54+n    64    signature    Ed25519 by the event key over b"TESSERA-GATE\\x00" + bytes 0..53+n

**Handshake.** Each side sends its certificate and a fresh 16-byte nonce, then signs
``proof_message`` (its role, both gate ids and both nonces, the other side's first) with its
gate key; nothing is applied or served before both proofs verified. A replayed proof fails on
the fresh nonce; a proof cannot be reflected because the role is signed.

**Admission.** What a gate serves is its own admissions, each signed with its gate key over
``Admission.message`` (event, gate, journal seq, ticket, direction, scan time and the gate's skew
to syncd), so the follower applies exactly what the maker decided.

**Annulment.** Since peer protocol 2 a gate also serves the rows that undo its admissions
(``gate.door.annul``), signed over ``Annulment.message``: event, gate, the annulment's own journal
seq, the seq of the admission it undoes, that admission's ticket and direction, the time of the
annulment and the gate's skew. Its own domain string keeps an annulment's signature from ever
passing for an admission's, and the reverse.

Contract: ``parse_certificate`` and ``verify_certificate`` take any object and either return a
``GateCertificate`` or raise ``PeerError``; no other exception escapes.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.ticket import key_id, public_raw

CERT_VERSION = 1
MAX_NAME = 64
NONCE_SIZE = 16
_HEAD = struct.Struct(">B4sIQ32sIB")  # 54 bytes
_CERT_DOMAIN = b"TESSERA-GATE\x00"
_PROOF_DOMAIN = b"TESSERA-PEER-PROOF\x00"
_ADMISSION_DOMAIN = b"TESSERA-PEER-ADMISSION\x00"
_ADMISSION = struct.Struct(">IQQQcdd")
_ANNULMENT_DOMAIN = b"TESSERA-PEER-ANNULMENT\x00"
_ANNULMENT = struct.Struct(">IQQQQcdd")
MAX_CERT_TEXT = 4 * ((_HEAD.size + MAX_NAME + 64 + 2) // 3)


class PeerError(ValueError):
    """A certificate, proof, admission or annulment that is not what a gate of this event would
    send."""


@dataclass(frozen=True, slots=True)
class GateCertificate:
    kid: bytes
    event_id: int
    gate_id: int
    gate_key: Ed25519PublicKey
    issued_at: int
    name: str
    raw: bytes  # the whole certificate, as signed and sent

    @property
    def text(self) -> str:
        return b64(self.raw)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: object, limit: int) -> bytes:
    if not isinstance(text, str) or len(text) > limit or not text.isascii():
        raise PeerError("not base64url text of the expected size")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise PeerError("not base64url text") from exc


def _name_bytes(name: str) -> bytes:
    data = name.encode()[:MAX_NAME]
    return data.decode(errors="ignore").encode() or b"Gate"


def make_certificate(
    event_key: Ed25519PrivateKey,
    event_id: int,
    gate_id: int,
    gate_key: Ed25519PublicKey,
    name: str,
    issued_at: int | None = None,
) -> bytes:
    """syncd's side: certify a gate's public key with the event key (the name is cut to 64
    bytes at a character boundary)."""
    label = _name_bytes(name)
    when = int(time.time()) if issued_at is None else issued_at
    head = _HEAD.pack(
        CERT_VERSION,
        key_id(event_key.public_key()),
        event_id,
        gate_id,
        public_raw(gate_key),
        when,
        len(label),
    )
    body = head + label
    return body + event_key.sign(_CERT_DOMAIN + body)


def parse_certificate(data: object) -> GateCertificate:
    """The fields of a certificate (raw bytes or its base64url text); the signature unchecked."""
    raw = unb64(data, MAX_CERT_TEXT) if isinstance(data, str) else data
    if not isinstance(raw, bytes) or len(raw) < _HEAD.size + 1 + 64:
        raise PeerError("certificate too short")
    version, kid, event_id, gate_id, key, issued, n = _HEAD.unpack_from(raw)
    if version != CERT_VERSION:
        raise PeerError(f"certificate version {version} is not {CERT_VERSION}")
    if not 1 <= n <= MAX_NAME or len(raw) != _HEAD.size + n + 64:
        raise PeerError("certificate length does not match its name")
    try:
        name = raw[_HEAD.size : _HEAD.size + n].decode()
    except UnicodeDecodeError as exc:
        raise PeerError("certificate name is not UTF-8") from exc
    try:
        public = Ed25519PublicKey.from_public_bytes(key)
    except ValueError as exc:
        raise PeerError("certificate gate key is not an Ed25519 key") from exc
    return GateCertificate(kid, event_id, gate_id, public, issued, name, raw)


def verify_certificate(
    data: object, event_id: int, event_keys: Mapping[bytes, Ed25519PublicKey]
) -> GateCertificate:
    """A certificate of ``event_id`` signed by one of ``event_keys`` (kid -> key), or PeerError."""
    cert = parse_certificate(data)
    if cert.event_id != event_id:
        raise PeerError(f"certificate of event {cert.event_id}, not {event_id}")
    key = event_keys.get(cert.kid)
    if key is None:
        raise PeerError(f"certificate signed by unknown key {cert.kid.hex()}")
    try:
        key.verify(cert.raw[-64:], _CERT_DOMAIN + cert.raw[:-64])
    except InvalidSignature as exc:
        raise PeerError("certificate signature does not verify") from exc
    return cert


def proof_message(
    role: str, event_id: int, signer: int, other: int, their_nonce: bytes, my_nonce: bytes
) -> bytes:
    """What one side signs in the handshake: ``role`` is "follower" or "server"."""
    if role not in ("follower", "server"):
        raise ValueError(role)
    ids = struct.pack(">IQQ", event_id, signer, other)
    return _PROOF_DOMAIN + role.encode() + b"\x00" + ids + their_nonce + my_nonce


def verify_proof(key: Ed25519PublicKey, signature: object, message: bytes) -> None:
    sig = unb64(signature, 90)
    if len(sig) != 64:
        raise PeerError("proof is not a 64-byte signature")
    try:
        key.verify(sig, message)
    except InvalidSignature as exc:
        raise PeerError("proof does not verify: not the certified gate") from exc


def _record(
    domain: bytes,
    layout: struct.Struct,
    what: str,
    ids: tuple[int, ...],
    way: str,
    at: float,
    skew: float,
) -> bytes:
    """``domain`` + the packed ids, direction (its first letter), time and skew."""
    if way not in ("in", "out") or not (math.isfinite(at) and math.isfinite(skew)):
        raise PeerError(f"{what} fields out of range")
    try:
        packed = layout.pack(*ids, way[0].encode(), at, skew)
    except struct.error as exc:
        raise PeerError(f"{what} fields out of range: {exc}") from exc
    return domain + packed


class _Signed:
    """What a gate signs for its peers: ``message()`` with the gate key; ``_WHAT`` names the
    kind in errors."""

    __slots__ = ()
    _WHAT: ClassVar[str]

    def message(self) -> bytes:
        raise NotImplementedError

    def sign(self, key: Ed25519PrivateKey) -> str:
        return b64(key.sign(self.message()))

    def verify(self, key: Ed25519PublicKey, signature: object) -> None:
        sig = unb64(signature, 90)
        if len(sig) != 64:
            raise PeerError(f"{self._WHAT} signature is not 64 bytes")
        try:
            key.verify(sig, self.message())
        except InvalidSignature as exc:
            raise PeerError(f"{self._WHAT} signature does not verify") from exc


@dataclass(frozen=True, slots=True)
class Admission(_Signed):
    """One admission a gate made, as it serves it to peers."""

    _WHAT = "admission"

    event_id: int
    gate_id: int
    seq: int
    ticket_id: int
    direction: str  # "in" | "out"
    at: float  # the maker's clock, Unix seconds
    skew: float  # the maker's last skew to syncd (0 when never measured)

    def message(self) -> bytes:
        return _record(
            _ADMISSION_DOMAIN,
            _ADMISSION,
            self._WHAT,
            (self.event_id, self.gate_id, self.seq, self.ticket_id),
            self.direction,
            self.at,
            self.skew,
        )


@dataclass(frozen=True, slots=True)
class Annulment(_Signed):
    """One annulment a gate made (journal row ``seq`` undoes its admission ``ref_seq``), as it
    serves it to peers."""

    _WHAT = "annulment"

    event_id: int
    gate_id: int
    seq: int  # the annulment's own journal seq
    ref_seq: int  # the admission it undoes (a seq of the same gate's journal)
    ticket_id: int  # the admission's ticket and direction
    direction: str  # "in" | "out"
    at: float  # when it was annulled, the maker's clock
    skew: float  # the maker's last skew to syncd (0 when never measured)

    def message(self) -> bytes:
        return _record(
            _ANNULMENT_DOMAIN,
            _ANNULMENT,
            self._WHAT,
            (self.event_id, self.gate_id, self.seq, self.ref_seq, self.ticket_id),
            self.direction,
            self.at,
            self.skew,
        )
