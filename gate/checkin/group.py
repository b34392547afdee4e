"""Group admission: one scan of any member's code lets the rest of its group in.

The organiser's list may put tickets in a group (an order, a family: the ``group`` column). When
the scanned ticket (or a ticket admitted by hand) is ADMITTED and group admission applies
(``GATE_GROUP_ADMIT``, or staff asked for it), every other ticket of the same group in the same
event is decided on its own, as a manual admit is (``decide`` without a code: list row, validity
window, status, zone, entry state), and journaled on its own row with ``via="group"``, in the
transaction of the scan itself (``gate.store.groups``): durable before anything is shown. A
denied scan admits nobody else. Door staff see the scan's own result and one summary line,
"Group of 4: 3 admitted, 1 already inside"; the decision's JSON carries the summary
(``GroupSummary.to_json``), each member with its outcome, reason and seq.

A group with more than ``GATE_GROUP_MAX`` tickets is not expanded: the scan counts for its own
ticket only and the summary says to scan the others one by one, so a list with a huge group
cannot make one scan write thousands of rows.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gate.checkin.decide import Context, decide
from gate.checkin.decision import Decision
from gate.store.db import Store
from gate.store.groups import GroupCheckIn, GroupJudges, check_in_group
from gate.store.records import Direction, EventInfo, JournalEntry, LocalState
from shared.errors import RejectReason
from shared.ticket import Ticket

VIA = "group"
"""The journal's ``via`` of a member let in by another member's scan."""
REFUSED = {
    RejectReason.already_inside: "already inside",
    RejectReason.reentry_denied: "no re-entry",
    RejectReason.not_inside: "not inside",
    RejectReason.revoked: "cancelled",
    RejectReason.blocked: "blocked",
    RejectReason.wrong_zone: "wrong entrance",
    RejectReason.not_yet_valid: "not valid yet",
    RejectReason.expired: "expired",
    RejectReason.unknown_ticket: "unknown",
}
"""How the summary line names members refused for each reason ("1 already inside")."""


@dataclass(frozen=True, slots=True)
class GroupMember:
    """One other member of the group, as decided and journaled."""

    ticket_id: int
    decision: Decision

    def to_json(self) -> dict[str, Any]:
        d = self.decision
        reason = d.reason.value if d.reason else None
        return {
            "ticket_id": self.ticket_id,
            "decision": d.outcome,
            "reason": reason,
            "message": d.message,
            "holder": d.holder,
            "seq": d.seq,
        }


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """What one group scan did: ``size`` tickets (the scanned one included), ``admitted`` of
    them let through (idem), each other member's decision; ``too_large`` when the group has
    more than ``limit`` tickets and nobody but the scanned ticket was checked (``size`` is then
    0: the group was not counted)."""

    group: str
    direction: Direction
    size: int
    admitted: int
    members: tuple[GroupMember, ...] = ()
    too_large: bool = False
    limit: int = 0

    @property
    def refused(self) -> dict[str, int]:
        """Refused members by reason, most first (ties in ticket order)."""
        counts = Counter(m.decision.reason.value for m in self.members if m.decision.reason)
        return dict(sorted(counts.items(), key=lambda item: -item[1]))

    @property
    def message(self) -> str:
        """The line door staff read: "Group of 4: 3 admitted, 1 already inside"."""
        if self.too_large:
            return f"Group of more than {self.limit}: scan each ticket"
        verb = "admitted" if self.direction == "in" else "left"
        parts = [f"{self.admitted} {verb}"] if self.admitted else []
        labels = {reason.value: label for reason, label in REFUSED.items()}
        parts += [f"{n} {labels.get(reason, 'refused')}" for reason, n in self.refused.items()]
        return f"Group of {self.size}: {', '.join(parts)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "size": self.size,
            "admitted": self.admitted,
            "refused": self.refused,
            "too_large": self.too_large,
            "message": self.message,
            "members": [m.to_json() for m in self.members],
        }


@dataclass(frozen=True, slots=True)
class GroupScan:
    """One check-in that its group may follow: who, where, and how to journal a decision."""

    ticket: Ticket | None  # None: admitted by hand (ticket number)
    ticket_id: int
    event: EventInfo
    ctx: Context
    journal: Callable[[Decision], JournalEntry]
    limit: int  # most tickets a group may have to be admitted from one scan


async def check_in(store: Store, scan: GroupScan) -> Decision:
    """Decide and record the scan and, when it is admitted, the rest of its group (one
    transaction); the scan's decision with its ``seq`` and, for a ticket with fellow members,
    its ``group`` summary. Raises what ``gate.store.groups.check_in_group`` raises."""
    member_ctx = dataclasses.replace(scan.ctx, via=VIA)

    def judge(local: LocalState) -> tuple[Decision, JournalEntry]:
        decision = decide(scan.ticket, local, scan.event, scan.ctx, ticket_id=scan.ticket_id)
        return decision, scan.journal(decision)

    def judge_member(ticket_id: int, local: LocalState) -> tuple[Decision, JournalEntry]:
        decision = decide(None, local, scan.event, member_ctx, ticket_id=ticket_id)
        return decision, scan.journal(decision)

    judges = GroupJudges(judge, lambda d: d.admitted, judge_member)
    done = await check_in_group(store, scan.event.event_id, scan.ticket_id, judges, scan.limit - 1)
    return dataclasses.replace(done.result, seq=done.seq, group=summarize(done, scan))


def summarize(done: GroupCheckIn[Decision, Decision], scan: GroupScan) -> GroupSummary | None:
    """The summary of a recorded group check-in (None: no group, or the scan was refused)."""
    if done.group is None or not done.result.admitted:
        return None
    if done.too_large:
        return GroupSummary(done.group, scan.ctx.direction, 0, 1, too_large=True, limit=scan.limit)
    if not done.members:
        return None  # alone in its group: nothing to say
    members = tuple(
        GroupMember(tid, dataclasses.replace(d, seq=seq)) for tid, d, seq in done.members
    )
    admitted = 1 + sum(m.decision.admitted for m in members)
    return GroupSummary(done.group, scan.ctx.direction, 1 + len(members), admitted, members)
