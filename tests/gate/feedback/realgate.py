"""A real gate for tests: a SQLite store in tmp_path, a signed list imported, a Pipeline."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.checkin.pipeline import Pipeline
from gate.feedback import Feedback
from gate.settings import GateSettings
from gate.store.db import Store
from gate.store.importer import import_bundle
from shared.bundle import BundleEvent, BundleHeader, BundleKey, BundleTicket, write_bundle
from shared.ticket import generate_private_key, key_id, public_raw, sign_ticket

EVENT = 7


@dataclass
class RealGate:
    store: Store
    pipeline: Pipeline
    key: Ed25519PrivateKey
    settings: GateSettings

    def code(self, ticket_id: int, nonce: int | None = None) -> str:
        return sign_ticket(self.key, event_id=EVENT, ticket_id=ticket_id, nonce=nonce or ticket_id)


async def make_gate(
    tmp_path: Path, tickets: Sequence[BundleTicket], sinks: Sequence[Feedback] = ()
) -> RealGate:
    key = generate_private_key()
    store = await Store.open(tmp_path / "gate" / "gate.sqlite3")
    await store.trust(key.public_key())
    raw = public_raw(key.public_key())
    header = BundleHeader(
        event=BundleEvent(EVENT, "Summer Night"),
        keys=[BundleKey(key_id(key.public_key()).hex(), base64.urlsafe_b64encode(raw).decode())],
        ticket_count=len(tickets),
    )
    buffer = io.BytesIO()
    write_bundle(buffer, header, tickets, key)
    buffer.seek(0)
    await import_bundle(store, buffer)
    settings = GateSettings(gate_name="Gate B", data_dir=tmp_path / "gate")
    return RealGate(store, Pipeline(store, settings, sinks), key, settings)


def tickets(count: int, start: int = 1001) -> list[BundleTicket]:
    return [
        BundleTicket(i, i, category="Weekend pass", holder=f"Guest {i}")
        for i in range(start, start + count)
    ]
