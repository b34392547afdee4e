"""Feedback: where a decision goes once it is committed (display, sound, relay, stdout).

A sink implements ``Feedback``; the pipeline calls every sink in order after the commit. A sink
that needs to start and stop (a web server, a GPIO line) also implements ``start``/``stop``
(see ``gate.app.Part``); the app starts sinks before sources and stops them after.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from gate.checkin.decision import Decision


@runtime_checkable
class Feedback(Protocol):
    async def show(self, decision: Decision) -> None:
        """Present one committed decision. Must not raise for ordinary trouble; log it."""
