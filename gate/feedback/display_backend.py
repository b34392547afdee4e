"""``PipelineBackend``: the kiosk page's view of the gate (pipeline, store, sync state)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gate.checkin.decision import Decision
from gate.checkin.pipeline import Pipeline
from gate.store.stats import read_stats


class PipelineBackend:
    """Answers the page's status, search, manual-admit, direction and scan requests.

    ``online`` reports whether the sync worker reached syncd recently (False while there is no
    sync); ``sync`` (the worker's ``SyncStatus.as_dict``) adds sync_state (online, offline,
    error, revoked ...), sync_error and last_sync_at; ``peers`` (the mesh's status) adds
    peers_online and peers_known for the header. Counters come from
    ``gate.store.stats.read_stats`` (cheap read-only queries).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        online: Callable[[], bool] = lambda: False,
        sync: Callable[[], Mapping[str, Any]] | None = None,
        *,
        peers: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.online = online
        self.sync = sync
        self.peers = peers

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
        stats = await read_stats(self.pipeline.store, time.time(), last=0)
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
            }
            for s in found
            if s.entry is not None
        ]

    async def admit(self, ticket_id: int) -> Decision:
        return await self.pipeline.manual_admit(ticket_id)

    async def scan(self, text: str) -> Decision:
        """A code from the page (wedge scanner or typed), recorded as ``via="kiosk"``."""
        return await self.pipeline.process(text, via="kiosk")

    async def set_direction(self, direction: str) -> str:
        """The direction switch; ValueError when the gate's mode has none."""
        self.pipeline.set_direction("out" if direction == "out" else "in")
        return self.pipeline.direction
