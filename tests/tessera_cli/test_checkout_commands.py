"""``tessera events create|update --checkout-time HH:MM`` and ``--no-checkout`` against a real
syncd (in-process, on a real TCP port) and Postgres; a bad time is syncd's 422, named."""

from __future__ import annotations

import json

from syncd.settings import SyncdSettings
from tests.support.cli import tessera_client


async def test_checkout_time_from_the_command_line(settings: SyncdSettings, db_url: str) -> None:
    async with tessera_client(settings, db_url) as tessera:
        created = await tessera("events", "create", "Fest", "--checkout-time", "04:00")
        event = json.loads(created.stdout)
        eid = str(event["event_id"])
        assert event["checkout_time"] == "04:00"
        changed = await tessera("events", "update", eid, "--checkout-time", "05:30")
        assert json.loads(changed.stdout)["checkout_time"] == "05:30"
        kept = await tessera("events", "update", eid, "--venue", "Hall")
        assert json.loads(kept.stdout)["checkout_time"] == "05:30"
        stats = (await tessera("stats", eid)).stdout
        assert "inside counts entries since the check-out at" in stats
        off = await tessera("events", "update", eid, "--no-checkout")
        assert json.loads(off.stdout)["checkout_time"] is None
        assert "check-out" not in (await tessera("stats", eid)).stdout
        bad = await tessera("events", "update", eid, "--checkout-time", "25:00", ok=False)
        assert "checkout_time" in bad.stderr and "HH:MM" in bad.stderr
        both = await tessera(
            "events", "update", eid, "--checkout-time", "04:00", "--no-checkout", ok=False
        )
        assert "exclude each other" in both.output
        shown = json.loads((await tessera("events", "show", eid)).stdout)
        assert shown["checkout_time"] is None
        help_text = (await tessera("events", "update", "--help")).stdout
        assert "--checkout-time HH:MM" in help_text and "--no-checkout" in help_text
