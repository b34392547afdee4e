"""Helpers for the gate tests: a signing key, bundles written with shared.bundle, a clock."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.checkin.pipeline import Pipeline
from gate.settings import GateSettings
from gate.store.db import Store
from gate.store.importer import import_bundle
from shared.bundle import BundleEvent, BundleHeader, BundleKey, BundleTicket, write_bundle
from shared.ticket import key_id, public_key_to_b64, sign_ticket

KEY = Ed25519PrivateKey.generate()
EVENT = 7
# Sat 2026-06-13 18:00 Europe/Berlin (16:00 UTC)
SAT_18 = 1781366400
TICKETS = [
    BundleTicket(1, 11, "valid", 0b01, "GA", "Ada Lovelace"),
    BundleTicket(2, 22, "valid", 0b10, "VIP", "Grace Hopper"),
    BundleTicket(3, 33, "revoked", 0b01, "GA", None),
    BundleTicket(4, 44, "blocked", 0b01, "GA", "Alan Turing"),
    BundleTicket(5, 55, "valid", 0b01, "GA", None),
    BundleTicket(6, 66, "valid", 0b11, "VIP", "Edsger Dijkstra"),
]


@dataclass
class Clock:
    now: float = SAT_18

    def __call__(self) -> float:
        return self.now


def bundle_key(key: Ed25519PrivateKey, status: str = "active") -> BundleKey:
    return BundleKey(key_id(key.public_key()).hex(), public_key_to_b64(key.public_key()), status)


def bundle_bytes(
    tickets: Iterable[BundleTicket] = TICKETS,
    *,
    signer: Ed25519PrivateKey = KEY,
    keys: list[BundleKey] | None = None,
    event_id: int = EVENT,
    **event: Any,
) -> bytes:
    tickets = list(tickets)
    event.setdefault("zones", {"0": "Main", "1": "VIP"})
    event.setdefault("timezone", "Europe/Berlin")
    header = BundleHeader(
        event=BundleEvent(event_id=event_id, name="Fest", **event),
        keys=keys if keys is not None else [bundle_key(KEY)],
        ticket_count=len(tickets),
        issued_at=SAT_18 - 3600,
    )
    out = io.BytesIO()
    write_bundle(out, header, tickets, signer)
    return out.getvalue()


def write_bundle_file(path: Path, **kwargs: Any) -> Path:
    path.write_bytes(bundle_bytes(**kwargs))
    return path


def code(ticket_id: int, nonce: int, *, key: Ed25519PrivateKey = KEY, **fields: Any) -> str:
    fields.setdefault("event_id", EVENT)
    return sign_ticket(key, ticket_id=ticket_id, nonce=nonce, **fields)


async def loaded_store(path: Path, data: bytes | None = None) -> Store:
    """A store at ``path`` trusting KEY, with the default bundle (or ``data``) imported."""
    store = await Store.open(path)
    await store.trust(KEY.public_key())
    await import_bundle(store, io.BytesIO(data or bundle_bytes()))
    return store


def pipeline(store: Store, clock: Clock | None = None, **settings: Any) -> Pipeline:
    settings.setdefault("gate_name", "Gate B")
    settings.setdefault("data_dir", store.path.parent)
    return Pipeline(store, GateSettings(**settings), clock=clock or Clock())
