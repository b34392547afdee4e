"""A feedback sink that writes one JSON object per decision to a text stream (stdout)."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from gate.checkin.decision import Decision


class JsonLinesFeedback:
    """One line per decision, flushed at once, so a reader sees only committed decisions.

    ``holders=False`` (``GATE_PRINT_HOLDERS=false``, as the systemd unit sets it) prints every
    holder name as null: under systemd stdout goes to the system journal, which a wipe on
    revoke cannot reach (gate.store.wipe), so names never go there."""

    def __init__(self, stream: TextIO | None = None, *, holders: bool = True) -> None:
        self._stream = stream
        self._holders = holders

    async def show(self, decision: Decision) -> None:
        stream = self._stream or sys.stdout
        data = decision.to_json()
        if not self._holders:
            _without_holders(data)
        stream.write(json.dumps(data, ensure_ascii=False) + "\n")
        stream.flush()


def _without_holders(data: dict[str, Any]) -> None:
    data["holder"] = None
    for member in (data.get("group") or {}).get("members", ()):
        member["holder"] = None
