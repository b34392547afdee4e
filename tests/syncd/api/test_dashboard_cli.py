"""``tessera events create|update --capacity ZONE=N`` (N alone: the whole event) and
``--no-capacity`` against a real syncd (in-process, on a real TCP port) and Postgres; a zone the
event lacks is syncd's 422, named; a malformed value is the CLI's own usage error."""

from __future__ import annotations

import json

from syncd.settings import SyncdSettings
from tests.support.cli import tessera_client


async def test_capacity_from_the_command_line(settings: SyncdSettings, db_url: str) -> None:
    async with tessera_client(settings, db_url) as tessera:
        created = await tessera(
            "events", "create", "Fest", "--zone", "Main", "--zone", "VIP",
            "--capacity", "2000", "--capacity", "VIP=150",
        )  # fmt: skip
        event = json.loads(created.stdout)
        eid = str(event["event_id"])
        assert event["capacity"] == {"*": 2000, "VIP": 150}
        kept = await tessera("events", "update", eid, "--venue", "Hall")
        assert json.loads(kept.stdout)["capacity"] == {"*": 2000, "VIP": 150}
        changed = await tessera("events", "update", eid, "--capacity", "Main=1800")
        assert json.loads(changed.stdout)["capacity"] == {"Main": 1800}
        unknown = await tessera("events", "update", eid, "--capacity", "Garden=5", ok=False)
        assert "'Garden'" in unknown.stderr and "zones: Main, VIP" in unknown.stderr
        for bad in ("VIP=lots", "VIP=", "=-3"):
            wrong = await tessera("events", "update", eid, "--capacity", bad, ok=False)
            assert "ZONE=N" in wrong.output, bad
        both = await tessera("events", "update", eid, "--capacity", "5", "--no-capacity", ok=False)
        assert "exclude each other" in both.output
        off = await tessera("events", "update", eid, "--no-capacity")
        assert json.loads(off.stdout)["capacity"] == {}
        help_text = (await tessera("events", "update", "--help")).stdout
        assert "--capacity ZONE=N" in help_text and "--no-capacity" in help_text
