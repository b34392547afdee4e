"""A gate enrolled without a syncd, and the feed pages syncd would send it: for tests that drive
``apply_changes`` by hand on the sample event (tessera_dev/sample_event.py)."""

from __future__ import annotations

from pathlib import Path

from gate.store.db import Store
from gate.store.syncstate import save_enrolment
from shared.protocol import ChangesPage, EnrollResponse, KeyInfo
from tessera_dev.sample_event import EVENT, KEY, SAT_18, bundle_key


async def enrol_offline(
    store: Store, credential_file: Path, gate_id: int = 1, server_url: str = "http://syncd"
) -> None:
    """What ``gate enroll`` saves, with no syncd asked: gate ``gate_id`` "Gate B" of the sample
    event, pinning the sample event's key."""
    key = bundle_key(KEY)
    enrolled = EnrollResponse(
        gate_id=gate_id,
        gate_name="Gate B",
        event_id=EVENT,
        credential="tsg_x",
        keys=[KeyInfo(kid=key.kid, public_key=key.public_key)],
        server_time=SAT_18,
    )
    await save_enrolment(store, server_url, credential_file, enrolled)


def event_updated(seq: int, event: dict[str, object]) -> ChangesPage:
    """A page of one ``event.updated`` change at ``seq`` (the cursor too) carrying ``event``."""
    return ChangesPage.model_validate(
        {"cursor": str(seq), "changes": [{"seq": seq, "kind": "event.updated", "event": event}]}
    )
