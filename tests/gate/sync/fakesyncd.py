"""An in-memory syncd behind ``httpx.MockTransport``: the protocol of shared/protocol.py, plus
fault injection (a dead network, 5xx, timeouts, answers lost after storing, partial acks)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from gate.sync.client import HEALTH_PATH
from shared.bundle import BundleEvent, BundleHeader, BundleTicket, write_bundle
from shared.protocol import (
    CHANGES_PATH,
    ENROLL_PATH,
    PRESENCE_PATH,
    PUSH_PATH,
    SNAPSHOT_PATH,
    Change,
    ChangesPage,
    CheckinChange,
    CheckinIn,
    EnrollResponse,
    PresencePage,
    PushRequest,
    PushResponse,
)
from tessera_dev.sample_event import EVENT, KEY, TICKETS, bundle_key

CREDENTIAL = "tsg_secret-credential-value"
NOW = 1_781_366_400.0


@dataclass
class FakeSyncd:
    gate_id: int = 2
    tickets: list[BundleTicket] = field(default_factory=lambda: list(TICKETS))
    stored: dict[int, CheckinIn] = field(default_factory=dict)
    feed: list[Change] = field(default_factory=list)
    inside: list[CheckinChange] = field(default_factory=list)
    faults: list[Any] = field(default_factory=list)  # consumed one per request, in order
    partial: int | None = None  # store only the first N check-ins of each push
    ack_override: int | None = None
    floor: int = 0  # cursors older than this get snapshot_required
    page_size: int = 100
    revoked: bool = False
    credential: str = CREDENTIAL  # what enrolment hands out and authenticates; another: 401
    pushes: list[PushRequest] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    codes: dict[str, bool] = field(default_factory=lambda: {"CODE-1": True})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        fault = self.faults.pop(0) if self.faults else None
        if fault == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if fault == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if isinstance(fault, int):
            return httpx.Response(fault, json={"error": {"code": "boom", "message": "boom"}})
        response = self._route(request)
        if fault == "lost":  # syncd did the work, the answer never arrived
            raise httpx.RemoteProtocolError("server disconnected", request=request)
        return response

    def _route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == ENROLL_PATH:
            return self._enroll(json.loads(request.content))
        if path == HEALTH_PATH:
            return httpx.Response(200, json={"status": "ok"})
        if self.revoked or request.headers.get("authorization") != f"Bearer {self.credential}":
            return httpx.Response(401, json={"error": "unauthorized", "message": "no"})
        if path == PUSH_PATH:
            return self._push(PushRequest.model_validate_json(request.content))
        if path == CHANGES_PATH:
            return self._changes(request.url.params.get("cursor", ""))
        if path == SNAPSHOT_PATH:
            return httpx.Response(200, content=self.snapshot_bytes())
        if path == PRESENCE_PATH:
            page = PresencePage(cursor=str(len(self.feed)), inside=self.inside)
            return httpx.Response(200, json=page.model_dump(mode="json"))
        return httpx.Response(404)

    def _enroll(self, body: dict[str, Any]) -> httpx.Response:
        if not self.codes.get(body["code"]):
            return httpx.Response(403, json={"error": {"code": "bad_code"}})
        self.codes[body["code"]] = False
        key = bundle_key(KEY)
        answer = EnrollResponse(
            gate_id=self.gate_id,
            gate_name="Gate B",
            event_id=EVENT,
            credential=self.credential,
            keys=[{"kid": key.kid, "public_key": key.public_key}],  # type: ignore[list-item]
            server_time=NOW,
        )
        return httpx.Response(200, json=answer.model_dump(mode="json"))

    def _push(self, push: PushRequest) -> httpx.Response:
        self.pushes.append(push)
        new = 0
        checkins = push.checkins[: self.partial] if self.partial is not None else push.checkins
        for c in checkins:
            held = self.stored.get(c.seq)
            if held is not None and held.scan_id != c.scan_id:
                return httpx.Response(409, json={"error": {"code": "seq_clash"}})
            if held is None:
                self.stored[c.seq] = c
                new += 1
        acked = self.ack_override if self.ack_override is not None else self.contiguous()
        answer = PushResponse(acked_seq=acked, stored=new, server_time=NOW, skew=NOW - push.sent_at)
        return httpx.Response(200, json=answer.model_dump(mode="json"))

    def contiguous(self) -> int:
        seq = 0
        while seq + 1 in self.stored:
            seq += 1
        return seq

    def _changes(self, cursor: str) -> httpx.Response:
        position = int(cursor) if cursor else 0
        if position < self.floor or position > len(self.feed):
            page = ChangesPage(cursor=cursor, snapshot_required=True)
        else:
            chunk = self.feed[position : position + self.page_size]
            end = position + len(chunk)
            page = ChangesPage(cursor=str(end), changes=chunk, more=end < len(self.feed))
        return httpx.Response(200, json=page.model_dump(mode="json"))

    def snapshot_bytes(self) -> bytes:
        header = BundleHeader(
            event=BundleEvent(EVENT, "Fest", {"0": "Main", "1": "VIP"}, "Europe/Berlin"),
            keys=[bundle_key(KEY)],
            ticket_count=len(self.tickets),
            issued_at=int(NOW),
            cursor=str(len(self.feed)),
        )
        out = io.BytesIO()
        write_bundle(out, header, self.tickets, KEY)
        return out.getvalue()
