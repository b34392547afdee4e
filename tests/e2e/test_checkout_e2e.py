"""The automatic check-out with real processes: ``syncd serve``, a ``gate run`` and the broker.

The organiser sets a check-out time a minute or so ahead (in a zone 14 hours from UTC); the gate
learns it from the feed, admits a ticket, refuses it again, loses the network, and once the
check-out time has passed admits it again on its own. syncd meanwhile counts nobody inside and
announces ``checkout.automatic`` once. No clock is faked: the test waits for the minute to turn.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from tests.e2e.event_stack import Stack, drain_queue
from tests.e2e.stack import Gate, eventually

ZONE = "Pacific/Kiritimati"  # +14: whole hours, so its minutes turn with UTC's


def _gate_checkout(gate: Gate) -> str | None:
    db = sqlite3.connect(f"file:{gate.data_dir / 'gate.sqlite3'}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute("SELECT checkout_time FROM events").fetchone()[0]
    finally:
        db.close()


def _stats(stack: Stack) -> dict:
    return dict(stack.api.get(f"/api/v1/events/{stack.event_id}/stats").json())


def test_a_gate_with_no_network_starts_the_new_day_clean(stack: Stack) -> None:
    stack.syncd.stop()  # look for due check-outs every second (default: a minute)
    stack.syncd.env["SYNCD_CHECKOUT_INTERVAL"] = "1"
    stack.syncd.start()
    gate = stack.gate("A")
    boundary = (math.floor((time.time() + 25) / 60) + 1) * 60  # 25 to 85 s from now
    checkout = datetime.fromtimestamp(boundary, ZoneInfo(ZONE)).strftime("%H:%M")
    resp = stack.api.patch(
        f"/api/v1/events/{stack.event_id}", json={"timezone": ZONE, "checkout_time": checkout}
    )
    assert resp.status_code == 200, resp.text
    eventually(lambda: _gate_checkout(gate) == checkout, "the gate applied event.updated")

    ticket = stack.codes[0]
    first = gate.scan(ticket)
    assert (first["decision"], first["message"]) == ("admit", "Welcome")
    assert gate.scan(ticket)["reason"] == "already_inside"
    eventually(lambda: _stats(stack)["inside"] == 1, "syncd counts the ticket inside")
    assert time.time() < boundary - 2, "the set-up took longer than the margin"

    stack.net.cut()  # from here on the gate decides alone
    time.sleep(max(0.0, boundary - time.time()) + 1)
    again = gate.scan(ticket)
    assert (again["decision"], again["message"]) == ("admit", "Welcome")  # a first entry today
    stats = _stats(stack)
    assert (stats["inside"], stats["checked_out_at"]) == (0, boundary)

    announced = eventually(
        lambda: stack.sql("SELECT boundary, inside FROM checkouts"), "the check-out announced"
    )
    assert [(r["boundary"], r["inside"]) for r in announced] == [(boundary, 1)]
    stack.net.restore()
    eventually(lambda: _stats(stack)["inside"] == 1, "today's entry reached syncd")
    assert _stats(stack)["conflicts"] == 0  # an entry on a new day is no conflict
    gate.stop()
    eventually(lambda: not stack.sql("SELECT 1 FROM outbox"), "outbox relayed")
    keys = dict(asyncio.run(drain_queue(stack.queue)))  # message_id -> routing key
    assert list(keys.values()).count("checkout.automatic") == 1
    assert list(keys.values()).count("checkin.performed") == 2
