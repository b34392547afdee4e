"""Ticket changes from the feed bring the validity window and the name to the gate's list.

Regression for issue 13.1 on the sync path: a window that syncd moves (a reissue) must reach a
manual admit, and a renamed holder must be found by the new name, not the old one.
"""

from __future__ import annotations

import time
from pathlib import Path

from gate.store.syncstate import apply_changes
from shared.protocol import Change, ChangesPage, TicketChange
from tessera_dev.sample_event import EVENT, Clock, loaded_store, pipeline


async def test_a_fed_window_and_name_reach_manual_admit_and_search(tmp_path: Path) -> None:
    store = await loaded_store(tmp_path / "gate.sqlite3")
    try:
        await store.conn.execute("UPDATE sync_state SET event_id = ?, gate_id = 1", (EVENT,))
        now = time.time()
        moved = TicketChange(
            ticket_id=1, nonce=12, status="valid", zone=1, holder="Ada Müller", valid_until=100
        )
        new = TicketChange(
            ticket_id=50, nonce=5, status="valid", zone=1, valid_from=int(now) + 86_400
        )
        page = ChangesPage(
            cursor="9",
            changes=[
                Change(seq=8, kind="ticket.reissued", ticket=moved),
                Change(seq=9, kind="ticket.added", ticket=new),
            ],
        )
        assert await apply_changes(store, page, now=now) == 2
        door = pipeline(store, Clock(now))
        assert (await door.manual_admit(1)).reason == "expired"
        assert (await door.manual_admit(50)).reason == "not_yet_valid"
        assert [e.ticket_id for e in await store.search("MULLER")] == [1]
        assert await store.search("lovelace") == []
    finally:
        await store.close()
