"""The kiosk page: a local aiohttp site the gate's screen shows full-screen.

::

    GET  /               the page (static/display.html, .css, .js)
    GET  /events         server-sent events: "decision" (one result) and "status" (every second)
    GET  /preview.jpg    the newest camera frame, small, for the preview thumbnail
    GET  /api/state      the last status and decision as JSON
    POST /api/search     {"q": "..."}      -> {"results": [...]}   (name, ticket number, ...)
    POST /api/admit      {"ticket_id": n}  -> the decision (manual admission by door staff)
    POST /api/scan       {"text": "T1:..."} -> the decision (typed or wedge-scanned code)

``Display`` is a ``Feedback``: ``await display.show(decision)`` pushes the result to every open
page. What the page needs from the rest of the gate is the small ``DisplayBackend`` protocol.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
from aiohttp import web

from gate.camera.capture import Capture
from gate.feedback.display_settings import DisplaySettings
from shared.tasks import stop

log = logging.getLogger("gate.feedback.display")

STATIC = Path(__file__).with_name("static")


class DisplayBackend(Protocol):
    """What the page asks of the gate. ``status`` keys: gate_name, admitted_today, inside_now,
    online, list_age_s (seconds since the list was last refreshed, None if never), unsynced."""

    async def status(self) -> Mapping[str, Any]: ...
    async def search(self, query: str) -> Sequence[Mapping[str, Any]]: ...
    async def admit(self, ticket_id: int) -> Any: ...
    async def scan(self, text: str) -> Any: ...


def decision_json(decision: Any) -> dict[str, Any]:
    """A decision as the page receives it (``outcome`` is always present)."""
    if hasattr(decision, "to_json"):
        data = dict(decision.to_json())
    else:
        data = dataclasses.asdict(decision)
    data.setdefault("outcome", data.get("decision"))
    reason = data.get("reason")
    data["reason"] = getattr(reason, "value", reason)
    return data


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


class Display:
    """Serves the kiosk page and pushes decisions and status to it."""

    def __init__(
        self,
        settings: DisplaySettings,
        backend: DisplayBackend | None = None,
        camera: Capture | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.camera = camera
        self.last_decision: dict[str, Any] | None = None
        self.last_status: dict[str, Any] = {}
        self._queues: set[asyncio.Queue[bytes | None]] = set()
        self._runner: web.AppRunner | None = None
        self._preview: tuple[float, bytes] = (0.0, b"")
        self.url = ""

    # -- Feedback -----------------------------------------------------------------------------
    async def show(self, decision: Any) -> None:
        data = decision_json(decision)
        data["hold_ms"] = int(self.settings.hold_seconds * 1000)
        data["shown_at"] = time.time()
        self.last_decision = data
        self._broadcast(_sse("decision", data))

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self, app: Any = None) -> str:
        """Start serving; returns the page URL. As a ``gate.app.Part`` it gets the running app
        and, without a backend yet, talks to ``app.pipeline``."""
        if app is not None and self.backend is None:
            from gate.feedback.display_backend import PipelineBackend

            self.backend = PipelineBackend(app.pipeline)
        self._runner = web.AppRunner(self.create_app(), shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/"
        log.info("display serving", extra={"url": self.url})
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def create_app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.get("/", self._page),
                web.get("/events", self._events),
                web.get("/preview.jpg", self._preview_jpg),
                web.get("/api/state", self._state),
                web.post("/api/search", self._search),
                web.post("/api/admit", self._admit),
                web.post("/api/scan", self._scan),
                web.static("/static", STATIC),
            ]
        )
        app.cleanup_ctx.append(self._status_pusher)
        app.on_shutdown.append(self._close_streams)
        return app

    # -- status -------------------------------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        data: dict[str, Any] = {"camera": None, "time": time.time()}
        if self.camera is not None:
            data["camera"] = self.camera.status().as_dict()
        if self.backend is not None:
            try:
                data.update(await self.backend.status())
            except Exception as exc:
                log.exception("display status failed")
                data["error"] = str(exc)
        self.last_status = data
        return data

    async def _status_pusher(self, app: web.Application) -> AsyncIterator[None]:
        async def push() -> None:
            while True:
                if self._queues:
                    self._broadcast(_sse("status", await self.status()))
                await asyncio.sleep(self.settings.status_interval)

        task = asyncio.create_task(push(), name="display-status")
        yield
        await stop(task)

    def _broadcast(self, message: bytes) -> None:
        for queue in self._queues:
            if queue.qsize() < 100:
                queue.put_nowait(message)

    async def _close_streams(self, app: web.Application) -> None:
        for queue in self._queues:
            queue.put_nowait(None)

    # -- handlers -----------------------------------------------------------------------------
    async def _page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "display.html")

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._queues.add(queue)
        try:
            await response.write(_sse("status", await self.status()))
            while (message := await queue.get()) is not None:
                await response.write(message)
        except ConnectionResetError:
            pass
        finally:
            self._queues.discard(queue)
        return response

    async def _preview_jpg(self, request: web.Request) -> web.Response:
        made, jpeg = self._preview
        if time.monotonic() - made >= 1.0 / self.settings.preview_fps:
            jpeg = await asyncio.to_thread(self._encode_preview)
            self._preview = (time.monotonic(), jpeg)
        if not jpeg:
            raise web.HTTPNotFound(text="no camera frame yet")
        return web.Response(
            body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"}
        )

    def _encode_preview(self) -> bytes:
        frame = self.camera.slot.peek() if self.camera is not None else None
        if frame is None:
            return b""
        height, width = frame.image.shape[:2]
        scale = min(1.0, self.settings.preview_width / width)
        small = cv2.resize(frame.image, (int(width * scale), int(height * scale)))
        ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 70])
        return jpeg.tobytes() if ok else b""

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"status": await self.status(), "decision": self.last_decision}, dumps=_dumps
        )

    async def _search(self, request: web.Request) -> web.Response:
        query = str((await _body(request)).get("q", "")).strip()
        if len(query) < 2:
            raise web.HTTPBadRequest(text="type at least 2 characters")
        results = await self._need_backend().search(query)
        return web.json_response({"results": [dict(r) for r in results]}, dumps=_dumps)

    async def _admit(self, request: web.Request) -> web.Response:
        raw = (await _body(request)).get("ticket_id")
        try:
            ticket_id = int(str(raw))
        except ValueError:
            raise web.HTTPBadRequest(text="ticket_id must be a number") from None
        decision = await self._need_backend().admit(ticket_id)
        await self.show(decision)
        return web.json_response(decision_json(decision), dumps=_dumps)

    async def _scan(self, request: web.Request) -> web.Response:
        text = str((await _body(request)).get("text", "")).strip()
        if not text:
            raise web.HTTPBadRequest(text="empty code")
        decision = await self._need_backend().scan(text)
        await self.show(decision)
        return web.json_response(decision_json(decision), dumps=_dumps)

    def _need_backend(self) -> DisplayBackend:
        if self.backend is None:
            raise web.HTTPServiceUnavailable(text="the gate is still starting")
        return self.backend


def _dumps(data: Any) -> str:
    return json.dumps(data, default=str)


async def _body(request: web.Request) -> Mapping[str, Any]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="send a JSON object") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="send a JSON object")
    return data
