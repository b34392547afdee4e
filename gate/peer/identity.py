"""This gate's own peer key pair: made at enrolment, the private half in a file only its owner
can read (mode 0600, beside the credential), the public half certified by syncd."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.sync.credential import write_secret
from shared.peering import GateCertificate
from shared.ticket import (
    generate_private_key,
    private_key_from_pem,
    private_key_to_pem,
    public_raw,
)


def new_key() -> Ed25519PrivateKey:
    return generate_private_key()


def write_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Write atomically, mode 0600 from the first byte (as the credential)."""
    write_secret(path, private_key_to_pem(key))


def read_key(path: Path) -> Ed25519PrivateKey | None:
    """The key, or None when the file is missing or unreadable (the mesh then stays off)."""
    try:
        return private_key_from_pem(path.read_bytes())
    except (OSError, ValueError, TypeError):
        return None


def public_of(thing: Ed25519PrivateKey | GateCertificate) -> bytes:
    """The raw public key of a private key or a certificate (to check they belong together)."""
    key = thing.public_key() if isinstance(thing, Ed25519PrivateKey) else thing.gate_key
    return public_raw(key)
