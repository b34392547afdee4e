"""Debounce: a code held in front of the scanner is one scan, not one per frame.

A code seen again less than ``window`` seconds after it was *last* seen is dropped, so a ticket
held in view for a minute stays one scan; a different code passes at once. The clock is injected
(monotonic by default), which keeps this pure and testable without sleeping.

A holder-bound rotating code (T2) changes its text every period while the phone is held up, so
it is remembered by its pass (``code_key``: the characters before the step), not its text: a
phone left in view across a rotation stays one scan instead of flashing "Already checked in".
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shared import rotating

# base45 turns each 2 bytes into 3 characters: the first 189 characters after "T2:" hold bytes
# 0..125 of the pass (ticket, nonce, holder key, most of the event's signature), never the step.
_T2_KEY_LENGTH = len(rotating.PREFIX) + (rotating.PASS_SIZE // 2) * 3


def code_key(text: str) -> str:
    """What makes two sightings the same code: the text, or a T2 code's pass."""
    if text.startswith(rotating.PREFIX):
        return text[:_T2_KEY_LENGTH]
    return text


class Debouncer:
    """Remembers recently seen codes; ``accept`` says whether a sighting is a new scan."""

    def __init__(
        self, window: float, clock: Callable[[], float] = time.monotonic, *, max_codes: int = 64
    ) -> None:
        if window < 0:
            raise ValueError("debounce window must be >= 0")
        self.window = window
        self._clock = clock
        self._max_codes = max_codes
        self._seen: dict[str, float] = {}

    def accept(self, text: str) -> bool:
        """True for a new scan; False for the same code still (or again) in view."""
        now = self._clock()
        text = code_key(text)
        last = self._seen.pop(text, None)
        self._seen[text] = now  # re-inserted: the dict stays ordered oldest -> newest
        if last is not None and now - last < self.window:
            return False
        self._forget_before(now - self.window)
        return True

    def _forget_before(self, cutoff: float) -> None:
        for code, seen in list(self._seen.items()):
            if seen >= cutoff and len(self._seen) <= self._max_codes:
                break
            del self._seen[code]
