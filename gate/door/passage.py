"""Passage confirmation: a turnstile or light beam says someone went through.

``PassageLane`` is a feedback sink: every admission the pipeline commits joins a queue of
admissions waiting for their passage (in the order admitted: people pass in the order they were
let in). A passage signal (``POST /api/passage`` on the kiosk page's port, an edge on a GPIO
line) takes the oldest one and journals it ``passed``; a passage with nothing waiting is a
``tailgate`` (ticket unknown). An admission still waiting after ``GATE_PASSAGE_TIMEOUT`` is
annulled by itself (``gate.door.annul``, reason ``not_passed``): the holder did not go through,
so their ticket is good again. Each of these is a journal row of its own, synced like a scan.

The queue lives in memory; on start it is rebuilt from the journal (admissions younger than the
timeout with neither a passage nor an annulment), so a restart neither forgets a waiting
admission nor keeps an old one forever (one older than the timeout is annulled at once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from gate.checkin.decision import Decision
from gate.door.annul import Annulment, AnnulRefused, annul
from gate.door.gpio import EdgeSource, follow_edges, request_line
from gate.door.settings import PassageSettings
from gate.store.db import Store, Writing
from gate.store.records import JournalEntry

log = logging.getLogger("gate.door")

_WAITING = (
    "SELECT j.seq, j.event_id, j.ticket_id, j.direction, j.scanned_at FROM journal j"
    " WHERE j.decision = 'admit' AND j.ticket_id IS NOT NULL AND j.gate = ? AND j.scanned_at >= ?"
    " AND NOT EXISTS (SELECT 1 FROM journal r WHERE r.ref_seq = j.seq"
    " AND r.decision IN ('passed', 'annul')) ORDER BY j.seq"
)
_ANNULLED = "SELECT 1 FROM journal WHERE ref_seq = ? AND decision = 'annul'"
_TICK = 0.25  # how often waiting admissions are checked against the timeout


class PassageRefused(LookupError):
    """This gate records no passage now (not confirming passages, or revoked)."""


@dataclass(frozen=True, slots=True)
class Waiting:
    seq: int
    event_id: int
    ticket_id: int
    direction: str
    admitted_at: float


@dataclass(frozen=True, slots=True)
class Passage:
    """A recorded passage: ``passed`` (``ref_seq`` set) or ``tailgate``."""

    seq: int
    outcome: str
    ref_seq: int | None
    ticket_id: int | None
    at: float
    via: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "outcome": self.outcome,
            "ref_seq": self.ref_seq,
            "ticket_id": self.ticket_id,
            "at": self.at,
            "via": self.via,
        }


class PassageLane:
    """The admissions waiting for their passage, the passages and the timeout (see above).

    ``notify`` is called with each annulment the timeout makes (the kiosk shows it); ``edges``
    requests the GPIO line (a test passes its own source)."""

    def __init__(
        self,
        store: Store,
        settings: PassageSettings,
        *,
        gate: str,
        annul_window: float,
        clock: Callable[[], float] = time.time,
        notify: Callable[[Annulment], Awaitable[None]] | None = None,
        edges: Callable[[str], EdgeSource] = request_line,
    ) -> None:
        self.store = store
        self.settings = settings
        self.gate = gate
        self.annul_window = annul_window
        self.clock = clock
        self.notify = notify
        self.waiting: deque[Waiting] = deque()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = asyncio.Event()
        self._edges = edges
        self.passed = 0
        self.tailgates = 0
        self.timed_out = 0

    # -- Feedback: every committed decision -------------------------------------------------
    async def show(self, decision: Decision) -> None:
        """Queue the admission, and each member a group admission let in (one passage each)."""
        members = [m.decision for m in decision.group.members] if decision.group else []
        for d in (decision, *members):
            if d.admitted and d.seq is not None and d.ticket_id is not None:
                assert d.event_id is not None
                self.waiting.append(
                    Waiting(d.seq, d.event_id, d.ticket_id, d.direction, d.scanned_at)
                )

    # -- Part ---------------------------------------------------------------------------------
    async def start(self, app: object = None) -> None:
        """Rebuild the queue, start the timeout and, with ``GATE_PASSAGE_GPIO``, the line
        (``ConfigError`` when it cannot be used: the gate does not start half-wired)."""
        await self.reload()
        self._tasks.append(asyncio.create_task(self._expire_loop(), name="passage-timeout"))
        if self.settings.gpio is not None:
            source = self._edges(self.settings.gpio)
            edges = follow_edges(source, lambda: self.passage("gpio"), self._stopping)
            self._tasks.append(asyncio.create_task(edges, name="passage-gpio"))

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def reload(self) -> None:
        """The waiting queue from the journal (at start)."""
        since = self.clock() - self.settings.timeout - self.annul_window
        rows = await self.store.conn.execute_fetchall(_WAITING, (self.gate, since))
        self.waiting = deque(Waiting(r[0], r[1], r[2], r[3], r[4]) for r in rows)

    # -- signals ------------------------------------------------------------------------------
    async def passage(self, via: str = "http") -> Passage:
        """Someone went through: the oldest waiting admission passed, or a tailgate.

        ``PassageRefused`` on a revoked gate: its journal stays as it was (gate.store.wipe)."""
        if self.store.revoked_at is not None:
            raise PassageRefused("gate revoked: no passages recorded until it is enrolled again")
        async with self._lock:
            await self._expire()
            now = self.clock()
            while self.waiting:
                first = self.waiting.popleft()
                entry = JournalEntry(
                    direction="in" if first.direction == "in" else "out",
                    outcome="passed",
                    reason=None,
                    scanned_at=now,
                    via=via,
                    gate=self.gate,
                    event_id=first.event_id,
                    ticket_id=first.ticket_id,
                    ref_seq=first.seq,
                )
                passed = await self.store.write(partial(_pass_unless_annulled, entry=entry))
                if passed is not None:
                    self.passed += 1
                    return Passage(passed, "passed", first.seq, first.ticket_id, now, via)
            seq = await self.store.record_scan(
                JournalEntry(
                    direction="in",
                    outcome="tailgate",
                    reason=None,
                    scanned_at=now,
                    via=via,
                    gate=self.gate,
                )
            )
            self.tailgates += 1
            log.warning("tailgate: a passage with no admission", extra={"seq": seq, "via": via})
            return Passage(seq, "tailgate", None, None, now, via)

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(_TICK)
            try:
                async with self._lock:
                    await self._expire()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not annul an admission whose passage never came")

    async def _expire(self) -> None:
        """Annul every waiting admission older than the timeout (oldest first)."""
        while self.waiting and self.clock() - self.waiting[0].admitted_at > self.settings.timeout:
            first = self.waiting[0]
            try:
                done = await annul(
                    self.store,
                    first.seq,
                    gate=self.gate,
                    now=self.clock(),
                    window=max(self.annul_window, self.settings.timeout + 60),
                    reason="not_passed",
                    via="passage",
                )
            except AnnulRefused as exc:  # staff annulled it, or the ticket moved on
                log.info("no passage, not annulled: %s", exc, extra={"ref_seq": first.seq})
                self.waiting.popleft()
                continue
            self.waiting.popleft()
            self.timed_out += 1
            log.info(
                "admission annulled: no passage",
                extra={"ref_seq": first.seq, "ticket_id": first.ticket_id},
            )
            if self.notify is not None:
                await self.notify(done)

    def status(self) -> dict[str, Any]:
        return {
            "waiting": len(self.waiting),
            "passed": self.passed,
            "tailgates": self.tailgates,
            "timed_out": self.timed_out,
        }


def _pass_unless_annulled(w: Writing, entry: JournalEntry) -> int | None:
    """The passage row of admission ``entry.ref_seq``, unless it was annulled (staff, or
    another process): checked in the transaction that writes it. Its seq, or None."""
    annulled = w.db.execute(_ANNULLED, (entry.ref_seq,)).fetchone()
    return None if annulled is not None else w.append(entry)
