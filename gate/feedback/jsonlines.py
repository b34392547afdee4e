"""A feedback sink that writes one JSON object per decision to a text stream (stdout)."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from gate.checkin.decision import Decision


class JsonLinesFeedback:
    """One line per decision, flushed at once, so a reader sees only committed decisions."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def show(self, decision: Decision) -> None:
        stream = self._stream or sys.stdout
        stream.write(json.dumps(decision.to_json(), ensure_ascii=False) + "\n")
        stream.flush()
