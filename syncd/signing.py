"""Event signing keys: generated here, sealed under the master key, rotated and retired.

The signer (exactly one per event) signs every new issue; other active keys still verify the
tickets they signed. Retiring a key first reissues its valid tickets under the signer, so no
ticket is left signed by a key gates no longer accept. Private keys never leave this module
except as ``Ed25519PrivateKey`` objects used to sign in-process.
"""

from __future__ import annotations

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.ticket import generate_private_key, key_id, public_raw
from syncd.feed import append as feed
from syncd.vault import KeyVault
from syncd.web.errors import ApiError

NEW_NONCE_SQL = "((floor(random() * 4294967295))::bigint + 1 + {old}) % 4294967296"
"""A random uint32 that always differs from ``old``."""


async def create_key(conn: asyncpg.Connection, vault: KeyVault, event_id: int) -> bytes:
    """Generate a key, make it the signer, record ``key.added``; returns its kid."""
    private = generate_private_key()
    kid = key_id(private.public_key())
    await conn.execute(
        "UPDATE signing_keys SET is_signer = false WHERE event_id = $1 AND is_signer", event_id
    )
    await conn.execute(
        "INSERT INTO signing_keys (event_id, kid, public_key, private_enc, is_signer)"
        " VALUES ($1, $2, $3, $4, true)",
        event_id,
        kid,
        public_raw(private.public_key()),
        vault.seal(private, event_id, kid),
    )
    await feed.append_key(conn, event_id, "added", kid)
    return kid


async def signer(conn: asyncpg.Connection, event_id: int) -> bytes:
    kid = await conn.fetchval(
        "SELECT kid FROM signing_keys WHERE event_id = $1 AND is_signer", event_id
    )
    if kid is None:
        raise ApiError(409, "no_signer", "event has no signing key; create one")
    return bytes(kid)


async def private_keys(
    conn: asyncpg.Connection, vault: KeyVault, event_id: int
) -> dict[bytes, Ed25519PrivateKey]:
    """kid -> private key for the event's active keys (for signing QR codes and bundles)."""
    rows = await conn.fetch(
        "SELECT kid, private_enc FROM signing_keys WHERE event_id = $1 AND status = 'active'",
        event_id,
    )
    return {bytes(r["kid"]): vault.open(r["private_enc"], event_id, bytes(r["kid"])) for r in rows}


async def retire_key(conn: asyncpg.Connection, event_id: int, kid: bytes) -> int:
    """Retire ``kid``; its valid tickets are reissued under the signer. Returns that count."""
    row = await conn.fetchrow(
        "SELECT status, is_signer FROM signing_keys WHERE event_id = $1 AND kid = $2 FOR UPDATE",
        event_id,
        kid,
    )
    if row is None:
        raise ApiError(404, "not_found", "key not found")
    if row["is_signer"]:
        raise ApiError(409, "key_is_signer", "rotate to a new key before retiring the signer")
    if row["status"] == "retired":
        return 0
    new_kid = await signer(conn, event_id)
    moved = await conn.fetch(
        "UPDATE tickets SET kid = $3, nonce = "
        + NEW_NONCE_SQL.format(old="nonce")
        + ", issued_at = now(), updated_at = now()"
        " WHERE event_id = $1 AND kid = $2 RETURNING ticket_id",
        event_id,
        kid,
        new_kid,
    )
    if moved:
        await feed.append_tickets(conn, "reissued", event_id, [r["ticket_id"] for r in moved])
    await conn.execute(
        "UPDATE signing_keys SET status = 'retired', retired_at = now()"
        " WHERE event_id = $1 AND kid = $2",
        event_id,
        kid,
    )
    await feed.append_key(conn, event_id, "retired", kid)
    return len(moved)
