"""Secrets at rest: API token hashing and private-key encryption under the master key.

* API tokens are ``tsr_`` + 43 random base64url characters; only SHA-256 of the text is stored,
  so a database dump cannot be replayed as a token. The prefix leaves room for other principal
  kinds (a gate credential gets its own prefix) to be told apart before any lookup.
* Private keys are sealed with AES-256-GCM. The AES key is HKDF-SHA256 of the master key; the
  associated data binds each ciphertext to its event and kid, so a sealed key copied onto another
  row does not open.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from shared.errors import ConfigError

TOKEN_PREFIX = "tsr_"  # noqa: S105 (a prefix, not a secret)
_SEAL_VERSION = b"\x01"
MIN_MASTER_KEY = 32


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "replace")).digest()


def new_master_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()


class KeyVault:
    """Seals and opens Ed25519 private keys with a key derived from the master key."""

    def __init__(self, master_key: str) -> None:
        if len(master_key) < MIN_MASTER_KEY:
            raise ConfigError(
                f"SYNCD_MASTER_KEY must be at least {MIN_MASTER_KEY} characters "
                "(make one with: syncd gen-master-key)"
            )
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"tessera-syncd-keys")
        self._aead = AESGCM(hkdf.derive(master_key.encode()))

    def __repr__(self) -> str:
        return "KeyVault(<sealed>)"

    def seal(self, key: Ed25519PrivateKey, event_id: int, kid: bytes) -> bytes:
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        nonce = os.urandom(12)
        return _SEAL_VERSION + nonce + self._aead.encrypt(nonce, raw, _aad(event_id, kid))

    def open(self, sealed: bytes, event_id: int, kid: bytes) -> Ed25519PrivateKey:
        if sealed[:1] != _SEAL_VERSION:
            raise ConfigError("sealed key has an unknown format")
        try:
            raw = self._aead.decrypt(sealed[1:13], sealed[13:], _aad(event_id, kid))
        except InvalidTag:
            raise ConfigError("cannot open a signing key: wrong SYNCD_MASTER_KEY?") from None
        return Ed25519PrivateKey.from_private_bytes(raw)


def _aad(event_id: int, kid: bytes) -> bytes:
    return b"tessera-key:" + str(event_id).encode() + b":" + kid
