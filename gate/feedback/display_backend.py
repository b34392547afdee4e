"""``PipelineBackend``: the kiosk page's view of the gate (pipeline, store, sync state)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gate.camera.capture import Capture
from gate.checkin.decision import Decision
from gate.checkin.pipeline import Pipeline
from gate.door.annul import Annulment
from gate.door.passage import Passage, PassageLane
from gate.drill.run import DrillContext, run_drill
from gate.store.groups import group_size
from gate.store.stats import read_stats


class PipelineBackend:
    """Answers the page's status, search, manual-admit, direction and scan requests.

    ``online`` reports whether the sync worker reached syncd recently (False while there is no
    sync); ``sync`` (the worker's ``SyncStatus.as_dict``) adds sync_state (online, offline,
    error, revoked ...), sync_error and last_sync_at; ``peers`` (the mesh's status) adds
    peers_online and peers_known for the header; a revoked gate adds revoked and
    holder_data_deleted (the page's banner). Counters come from
    ``gate.store.stats.read_stats`` (cheap read-only queries).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        online: Callable[[], bool] = lambda: False,
        sync: Callable[[], Mapping[str, Any]] | None = None,
        *,
        peers: Callable[[], Mapping[str, Any]] | None = None,
        lane: PassageLane | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.online = online
        self.sync = sync
        self.peers = peers
        self.lane = lane

    async def status(self) -> Mapping[str, Any]:
        data: dict[str, Any] = {
            "gate_name": self.pipeline.settings.gate_name,
            "online": self.online(),
            "direction": self.pipeline.direction,
            "mode": self.pipeline.settings.mode,
        }
        if self.sync is not None:
            sync = self.sync()
            data.update(
                sync_state=sync["state"],
                sync_error=sync["last_error"],
                last_sync_at=max(sync["last_push_at"] or 0, sync["last_pull_at"] or 0) or None,
            )
            if sync["last_pull_at"]:  # the list is as fresh as the last pull of the feed
                data["list_age_s"] = max(0.0, time.time() - sync["last_pull_at"])
        if self.peers is not None:
            mesh = self.peers()
            data.update(peers_online=mesh["online"], peers_known=len(mesh["peers"]))
        store = self.pipeline.store
        if store.revoked_at is not None:  # the page's red banner; scans are refused meanwhile
            data.update(revoked=True, holder_data_deleted=store.wiped_at is not None)
        stats = await read_stats(store, time.time(), last=0)
        data.setdefault("list_age_s", stats.list_age_seconds)
        data.update(
            admitted_today=stats.admitted_today,
            inside_now=stats.inside_now,
            list_size=stats.list_size,
            unsynced=stats.unsynced,
        )
        return data

    async def search(self, query: str) -> Sequence[Mapping[str, Any]]:
        found = await self.pipeline.search(query)
        return [
            {
                "ticket_id": s.entry.ticket_id,
                "event_id": s.entry.event_id,
                "holder": s.entry.holder,
                "category": s.entry.category,
                "status": s.entry.status,
                "state": "inside" if s.state is not None and s.state.inside else "not inside",
                "group": await self._group(s.entry.event_id, s.entry.ticket_id),
            }
            for s in found
            if s.entry is not None
        ]

    async def _group(self, event_id: int, ticket_id: int) -> dict[str, Any] | None:
        """The ticket's group as the search shows it (None: it has no fellow members)."""
        limit = self.pipeline.settings.group_max
        size = await group_size(self.pipeline.store, event_id, ticket_id, limit)
        if size < 2:
            return None
        return {"size": min(size, limit), "too_large": size > limit}

    async def admit(self, ticket_id: int, group: bool | None = None) -> Decision:
        """Admit by hand; ``group``: its group too (None: as ``GATE_GROUP_ADMIT`` says)."""
        return await self.pipeline.manual_admit(ticket_id, group=group)

    async def scan(self, text: str) -> Decision:
        """A code from the page (wedge scanner or typed), recorded as ``via="kiosk"``."""
        return await self.pipeline.process(text, via="kiosk")

    async def annul(self, seq: int | None) -> Annulment:
        """Staff undo an admission (None: the latest); ``AnnulRefused`` says why not."""
        return await self.pipeline.annul(seq, via="kiosk")

    async def passage(self) -> Passage:
        """A passage signal; ``LookupError`` when this gate does not confirm passages."""
        if self.lane is None:
            raise LookupError("passage confirmation is off on this gate (GATE_PASSAGE_CONFIRM)")
        return await self.lane.passage("http")

    async def set_direction(self, direction: str) -> str:
        """The direction switch; ValueError when the gate's mode has none."""
        self.pipeline.set_direction("out" if direction == "out" else "in")
        return self.pipeline.direction

    async def drill(self, camera: Capture | None) -> Mapping[str, Any]:
        """The pre-doors drill (``gate.drill``) on this running gate: its store, its settings
        and, when it scans with one, its camera's live feed (without one, the camera items are
        skipped whatever GATE_CAMERA_SOURCE says). Never journals anything."""
        settings, store = self.pipeline.settings, self.pipeline.store
        context = DrillContext(settings, store, live=camera, camera=camera is not None)
        return (await run_drill(context)).as_json()
