"""Who this gate talks to: its own identity, and the checks every peer certificate passes.

A certificate is accepted when it verifies with one of the event's keys (pinned at enrolment,
updated by the feed), names this event and another gate, is not of a gate syncd revoked, and is
not older than the newest certificate known for that gate (a re-enrolled gate's old key stops
working once its new certificate is known). ``refresh()`` reloads what syncd said.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.store.db import Store
from gate.store.peers import KnownPeer, event_keyring, read_peers
from shared.peering import (
    NONCE_SIZE,
    GateCertificate,
    PeerError,
    b64,
    proof_message,
    verify_certificate,
    verify_proof,
)


class SelfError(PeerError):
    """The peer is this gate itself (its own URL in GATE_PEERS)."""


@dataclass(frozen=True, slots=True)
class Me:
    key: Ed25519PrivateKey
    cert: GateCertificate

    @property
    def gate_id(self) -> int:
        return self.cert.gate_id

    @property
    def event_id(self) -> int:
        return self.cert.event_id


def new_nonce() -> bytes:
    return os.urandom(NONCE_SIZE)


def nonce_bytes(text: str) -> bytes:
    return bytes.fromhex(text)  # the message models allow exactly 32 hex digits


class Trust:
    def __init__(self, store: Store, me: Me) -> None:
        self.store = store
        self.me = me
        self.known: dict[int, KnownPeer] = {}

    async def refresh(self) -> None:
        self.known = await read_peers(self.store)

    def check(self, cert_text: str) -> GateCertificate:
        keys = event_keyring(self.store, self.me.event_id)
        cert = verify_certificate(cert_text, self.me.event_id, keys)
        if cert.gate_id == self.me.gate_id:
            raise SelfError("that is this gate itself")
        known = self.known.get(cert.gate_id)
        if known is not None and known.revoked:
            raise PeerError(f"gate #{cert.gate_id} ({known.name}) is revoked")
        if known is not None and known.cert is not None and known.cert.issued_at > cert.issued_at:
            raise PeerError(f"gate #{cert.gate_id} has a newer certificate: this one is old")
        return cert

    def revoked(self, gate_id: int) -> bool:
        known = self.known.get(gate_id)
        return known is not None and known.revoked

    def prove(self, role: str, other: int, their_nonce: bytes, my_nonce: bytes) -> str:
        message = proof_message(
            role, self.me.event_id, self.me.gate_id, other, their_nonce, my_nonce
        )
        return b64(self.me.key.sign(message))

    def check_proof(
        self, cert: GateCertificate, role: str, sig: str, their_nonce: bytes, my_nonce: bytes
    ) -> None:
        """``cert``'s holder signed ``role`` over my nonce and theirs (as it sent them)."""
        message = proof_message(
            role, self.me.event_id, cert.gate_id, self.me.gate_id, my_nonce, their_nonce
        )
        verify_proof(cert.gate_key, sig, message)
