"""The outcome of one scan, as every feedback sink, the CLI and the journal see it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from gate.store.records import Direction, Outcome
from shared.errors import RejectReason

if TYPE_CHECKING:
    from gate.checkin.group import GroupSummary


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """ADMIT or DENY for one scan. ``seq`` is set once the scan is committed to the journal.

    ``message`` is what door staff read ("Already checked in 19:02 at Gate B"); ``reason`` is
    the stable code (None on admit). ``latency_ms`` runs from the code's arrival to the commit;
    ``frame_ms``, for a code read by the camera, from the capture of its frame to the moment the
    committed decision is handed to the display (decode, any wait, decision and commit).
    ``group`` sums up the rest of the ticket's group when its admission let them in too
    (``gate.checkin.group``; None otherwise).
    """

    outcome: Outcome
    reason: RejectReason | None
    message: str
    ticket_id: int | None = None
    event_id: int | None = None
    category: str = ""
    holder: str | None = None
    direction: Direction = "in"
    via: str = "scanner"
    seq: int | None = None
    scanned_at: float = 0.0
    latency_ms: float = 0.0
    frame_ms: float | None = None
    group: GroupSummary | None = None

    @property
    def admitted(self) -> bool:
        return self.outcome == "admit"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; ``decision`` is the outcome under the name the CLI promises."""
        data = asdict(self)
        head = {
            "ticket_id": self.ticket_id,
            "decision": data.pop("outcome"),
            "reason": self.reason.value if self.reason else None,
            "message": self.message,
            "latency_ms": round(self.latency_ms, 3),
        }
        if self.frame_ms is not None:
            data["frame_ms"] = round(self.frame_ms, 3)
        data["group"] = self.group.to_json() if self.group is not None else None
        return {**head, **{k: v for k, v in data.items() if k not in head}}
