"""This gate's own peer key pair: made at enrolment, the private half in a file only its owner
can read (mode 0600, beside the credential), the public half certified by syncd."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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
    """Write atomically (temp file + rename), mode 0600 from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, private_key_to_pem(key))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


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
