"""The pipeline: verify -> decide -> durable commit -> feedback, one scan at a time.

The result reaches feedback sinks only after the journal row is committed (``synchronous=FULL``):
a power cut after the green light cannot lose the check-in. A scan that cannot be recorded (disk
full, I/O error) is shown as DENY ``not_recorded`` "Not recorded: scan again", with the ticket
id when the code was read, never as an admit (and it is not in the journal: nothing could be).

A gate syncd revoked (``store.revoked_at``, gate.store.wipe) decides nothing: every scan and
manual admit is DENY ``gate_revoked`` "Gate revoked: no scans until it is enrolled again", and
none is journaled: a revoked gate has no identity at syncd to send it under, a refusal by the
gate says nothing about the ticket, and the journal stays exactly as it was at the revocation.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence

from gate.checkin import group as groups
from gate.checkin import messages
from gate.checkin.decide import (
    Clock,
    CodeRejectedError,
    Context,
    decide,
    deny,
    rejected,
    verify_code,
)
from gate.checkin.decision import Decision
from gate.door.annul import Annulment, annul
from gate.feedback import Feedback
from gate.settings import GateSettings
from gate.store.db import StaleCacheError, Store
from gate.store.records import Direction, EventInfo, JournalEntry, LocalState
from gate.store.search import check_ticket_id
from shared.errors import RejectReason
from shared.ticket import Ticket

log = logging.getLogger(__name__)
_KEY_REASONS = {RejectReason.unknown_key, RejectReason.wrong_event, RejectReason.key_retired}
NOT_RECORDED = messages.FIXED[RejectReason.not_recorded]


class NotRecordedError(Exception):
    """The journal write failed; carries what the scan had read so the denial can name it."""

    def __init__(self, ticket: int | None, event: int | None) -> None:
        super().__init__(f"scan of ticket {ticket} not recorded")
        self.ticket = ticket
        self.event = event


class Pipeline:
    """Turns scanned texts (and manual admits) into committed, shown decisions."""

    def __init__(
        self,
        store: Store,
        settings: GateSettings,
        sinks: Sequence[Feedback] = (),
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.sinks = list(sinks)
        self._clock = clock
        self._direction: Direction = settings.initial_direction()

    @property
    def direction(self) -> Direction:
        return self._direction

    def set_direction(self, direction: Direction) -> None:
        """The direction switch of a gate in mode 'both'."""
        if self.settings.mode != "both" and direction != self.settings.initial_direction():
            raise ValueError(f"a gate in mode {self.settings.mode!r} cannot switch direction")
        self._direction = direction

    async def process(
        self,
        text: str,
        *,
        via: str = "scanner",
        direction: Direction | None = None,
        captured_ns: int | None = None,
    ) -> Decision:
        """Decide one scanned text, commit it, then show it. Never raises for bad input.

        ``captured_ns`` (``time.perf_counter_ns()`` when the camera captured the frame the code
        was read in) gives the decision its ``frame_ms``."""
        started = time.perf_counter()
        ctx = self._context(via, direction)
        pending = self._decide_code(text, ctx)
        return await self._finish(pending, started, ctx.via, captured_ns)

    @property
    def revoked(self) -> bool:
        """syncd revoked this gate: it refuses everything until it is enrolled again. No
        database read (a wipe may hold the connection for seconds; a refusal must not wait):
        the sync worker re-reads the store while revoked and sees `gate enroll` clear it."""
        return self.store.revoked_at is not None

    async def _refused(self, ctx: Context, ticket_id: int | None = None) -> Decision:
        """The refusal of a revoked gate (nothing recorded); async, as ``_finish`` awaits it."""
        return deny(RejectReason.gate_revoked, ctx, ticket_id=ticket_id)

    async def _decide_code(self, text: str, ctx: Context) -> Decision:
        if self.revoked:
            return await self._refused(ctx)
        for _ in range(3):
            try:
                ticket = verify_code(text, self.store.keys, self.store.events, self._clock_of(ctx))
            except CodeRejectedError as exc:
                if exc.reason in _KEY_REASONS and await self.store.refresh(force=False):
                    continue  # another process loaded keys since: judge with the new ones
                return await self._record(rejected(exc, self.store.events, ctx))
            try:
                return await self._check_in(ticket, ticket.ticket_id, ticket.event_id, ctx)
            except StaleCacheError:
                continue
        raise RuntimeError("keys keep changing under this scan")

    def _clock_of(self, ctx: Context) -> Clock:
        s = self.settings
        return Clock(ctx.now, s.clock_tolerance, s.rotation_tolerance)

    async def search(self, query: str, *, limit: int = 20) -> list[LocalState]:
        """Tickets by number or holder name, with their entry state, for a manual admit."""
        found = await self.store.search(query, limit=limit)
        return [
            LocalState(e, (await self.store.lookup(e.event_id, e.ticket_id)).state) for e in found
        ]

    async def manual_admit(
        self,
        ticket_id: int,
        *,
        event_id: int | None = None,
        direction: Direction | None = None,
        group: bool | None = None,
    ) -> Decision:
        """Admit by ticket number when the code is unreadable: every rule but the signature.
        ``group``: let the rest of its group in too (None: as ``GATE_GROUP_ADMIT`` says).

        Raises ``TicketIdError`` for a number no list can hold (before anything is recorded).
        """
        check_ticket_id(ticket_id)
        started = time.perf_counter()
        ctx = self._context("manual", direction)
        if self.revoked:
            return await self._finish(self._refused(ctx, ticket_id), started, ctx.via)
        if event_id is None:
            events = {e.event_id for e in await self.store.search(str(ticket_id))}
            if len(events) > 1:
                raise ValueError(f"ticket {ticket_id} is in events {sorted(events)}: pick one")
            event_id = events.pop() if events else next(iter(self.store.events), None)
        if event_id is None or event_id not in self.store.events:
            denial = deny(RejectReason.unknown_ticket, ctx, ticket_id=ticket_id)
            return await self._finish(self._record(denial), started, ctx.via)
        manual = self._manual(ticket_id, event_id, ctx, group)
        return await self._finish(manual, started, ctx.via)

    async def _manual(
        self, ticket_id: int, event_id: int, ctx: Context, group: bool | None = None
    ) -> Decision:
        try:
            return await self._check_in(None, ticket_id, event_id, ctx, group)
        except StaleCacheError:
            return await self._check_in(None, ticket_id, event_id, ctx, group)

    async def annul(
        self, seq: int | None = None, *, via: str = "staff", whole_scan: bool | None = None
    ) -> Annulment:
        """Undo admission ``seq`` (None: this gate's latest), within ``GATE_ANNUL_WINDOW``.
        ``whole_scan``: with the rest of its group scan (None: only for the latest, so "Annul
        last" undoes the whole group the kiosk just showed).

        Raises ``AnnulRefused`` saying why nothing was written (see ``gate.door.annul``)."""
        return await annul(
            self.store,
            seq,
            gate=self.settings.gate_name,
            now=self._clock(),
            window=self.settings.annul_window,
            via=via,
            whole_scan=seq is None if whole_scan is None else whole_scan,
        )

    def _context(self, via: str, direction: Direction | None) -> Context:
        if direction is not None and direction != self._direction:
            self.set_direction(direction)  # validates the mode; the switch stays where it is put
        return Context(self.settings, self._direction, self._clock(), via)

    async def _check_in(
        self,
        ticket: Ticket | None,
        ticket_id: int,
        event_id: int,
        ctx: Context,
        group: bool | None = None,
    ) -> Decision:
        event = self.store.events[event_id]
        if self.settings.group_admit if group is None else group:
            return await self._check_in_group(ticket, ticket_id, event, ctx)

        def judge(local: LocalState) -> tuple[Decision, JournalEntry]:
            decision = decide(ticket, local, event, ctx, ticket_id=ticket_id)
            return decision, self._journal_entry(decision)

        try:
            decision, seq = await self.store.check_in(event_id, ticket_id, judge)
        except (sqlite3.Error, OSError) as exc:
            raise NotRecordedError(ticket_id, event_id) from exc
        return dataclasses.replace(decision, seq=seq)

    async def _check_in_group(
        self, ticket: Ticket | None, ticket_id: int, event: EventInfo, ctx: Context
    ) -> Decision:
        """A check-in the rest of the ticket's group follows when it is admitted."""
        limit = self.settings.group_max
        scan = groups.GroupScan(ticket, ticket_id, event, ctx, self._journal_entry, limit)
        try:
            return await groups.check_in(self.store, scan)
        except (sqlite3.Error, OSError) as exc:
            raise NotRecordedError(ticket_id, event.event_id) from exc

    async def _record(self, decision: Decision) -> Decision:
        try:
            seq = await self.store.record_scan(self._journal_entry(decision))
        except (sqlite3.Error, OSError) as exc:
            raise NotRecordedError(decision.ticket_id, decision.event_id) from exc
        return dataclasses.replace(decision, seq=seq)

    def _journal_entry(self, d: Decision) -> JournalEntry:
        reason = d.reason.value if d.reason else None
        return JournalEntry(
            direction=d.direction,
            outcome=d.outcome,
            reason=reason,
            scanned_at=d.scanned_at,
            via=d.via,
            gate=self.settings.gate_name,
            event_id=d.event_id,
            ticket_id=d.ticket_id,
        )

    def _not_recorded(self, ticket_id: int | None, event_id: int | None, via: str) -> Decision:
        return Decision(
            outcome="deny",
            reason=RejectReason.not_recorded,
            message=NOT_RECORDED,
            ticket_id=ticket_id,
            event_id=event_id,
            direction=self._direction,
            via=via,
            scanned_at=self._clock(),
        )

    async def _finish(
        self,
        pending: Awaitable[Decision],
        started: float,
        via: str,
        captured_ns: int | None = None,
    ) -> Decision:
        try:
            decision = await pending
        except NotRecordedError as exc:
            log.error("could not record a scan: %s", exc.__cause__, extra={"ticket_id": exc.ticket})
            decision = self._not_recorded(exc.ticket, exc.event, via)
        except Exception:
            log.exception("could not record a scan")
            decision = self._not_recorded(None, None, via)
        decision = dataclasses.replace(decision, latency_ms=(time.perf_counter() - started) * 1000)
        if captured_ns is not None:
            frame_ms = (time.perf_counter_ns() - captured_ns) / 1e6
            decision = dataclasses.replace(decision, frame_ms=frame_ms)
        for sink in self.sinks:
            try:
                await sink.show(decision)
            except Exception:
                log.exception("feedback sink %s failed", type(sink).__name__)
        return decision
