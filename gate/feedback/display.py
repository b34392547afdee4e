"""The kiosk page: a local aiohttp site the gate's screen shows full-screen.

::

    GET  /               the page (static/display.html, .css, .js)
    GET  /events         server-sent events: "decision" (one result) and "status" (every second)
    GET  /preview.jpg    the newest camera frame, small, for the preview thumbnail
    GET  /api/state      the last status and decision as JSON
    POST /api/scan, /api/search, /api/admit, /api/direction, /api/staff/...   (display_api)

Every request passes the Host/Origin guard first (display_guard: 421 / 403), bodies are
bounded (``max_body_bytes``, 413), and staff actions need a staff session (display_api,
staff). The page serves every gate, whatever its sources: it takes keyboard-wedge scans, and
``gate run --source kiosk`` (``KioskInput``) is a gate whose only scanner is this page.

``Display`` is a ``Feedback``: ``await display.show(decision)`` pushes the result to every open
page. What the page needs from the rest of the gate is the small ``DisplayBackend`` protocol,
given to the constructor (``gate.app`` builds it from the pipeline and the sync worker's state);
until a display has one, its API answers 503 "the gate is still starting".
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import cv2
from aiohttp import web

from gate.camera.capture import Capture
from gate.feedback.display_api import DisplayBackend, KioskApi, json_response
from gate.feedback.display_guard import HostGuard
from gate.feedback.display_settings import DisplaySettings
from gate.scan.debounce import Debouncer
from shared.errors import ConfigError
from shared.tasks import stop

log = logging.getLogger("gate.feedback.display")

STATIC = Path(__file__).with_name("static")


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
    """Serves the kiosk page and pushes decisions and status to it.

    A port that cannot be bound (another gate or program holds it) leaves the gate scanning
    without a page, logged as an error, unless the page is ``required`` (``--source kiosk``:
    it is the only scanner), which stops the start with a ``ConfigError``."""

    def __init__(
        self,
        settings: DisplaySettings,
        backend: DisplayBackend | None = None,
        camera: Capture | None = None,
        *,
        required: bool = False,
        debouncer: Debouncer | None = None,
    ) -> None:
        self.settings = settings
        self.required = required
        self.backend = backend
        self.camera = camera
        self.last_decision: dict[str, Any] | None = None
        self.last_status: dict[str, Any] = {}
        self._queues: set[asyncio.Queue[bytes | None]] = set()
        self._runner: web.AppRunner | None = None
        self._preview: tuple[float, bytes] = (0.0, b"")
        self.url = ""
        self.guard = HostGuard(settings.host, settings.host_names())
        self.api = KioskApi(settings, self._need_backend, self._on_page)
        self.api.debouncer = debouncer
        self.api.camera = camera

    # -- Feedback -----------------------------------------------------------------------------
    async def show(self, decision: Any) -> None:
        data = self._on_page(decision)
        self.last_decision = data
        self._broadcast(_sse("decision", data))

    def _on_page(self, decision: Any) -> dict[str, Any]:
        data = decision_json(decision)
        data["hold_ms"] = int(self.settings.hold_seconds * 1000)
        data["shown_at"] = time.time()
        return data

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self, app: Any = None) -> str:
        """Start serving; returns the page URL. ``app`` (what ``gate.app`` passes every
        ``Part``) is not used: the backend and the debouncer came with the constructor."""
        # No access log: the preview alone is 4 requests a second. Refusals are logged (guard).
        self._runner = web.AppRunner(self.create_app(), shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            where = f"{self.settings.host}:{self.settings.port}"
            if self.required:
                raise ConfigError(f"cannot serve the kiosk page on {where}: {exc}") from exc
            log.error(
                "kiosk page not served; the gate scans on", extra={"at": where, "error": str(exc)}
            )
            return ""
        host, port = self._runner.addresses[0][:2]
        self.guard.port = port
        self.url = f"http://{host}:{port}/" if ":" not in host else f"http://[{host}]:{port}/"
        log.info("display serving", extra={"url": self.url})
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def create_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self.guard.middleware], client_max_size=self.settings.max_body_bytes
        )
        app.add_routes(
            [
                web.get("/", self._page),
                web.get("/events", self._events),
                web.get("/preview.jpg", self._preview_jpg),
                web.get("/api/state", self._state),
                *self.api.routes(),
                web.static("/static", STATIC),
            ]
        )
        app.cleanup_ctx.append(self._status_pusher)
        app.on_shutdown.append(self._close_streams)
        app.on_response_prepare.append(_safe_headers)
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
        return json_response({"status": await self.status(), "decision": self.last_decision})

    def _need_backend(self) -> DisplayBackend:
        if self.backend is None:
            raise web.HTTPServiceUnavailable(text="the gate is still starting")
        return self.backend


class KioskInput:
    """``gate run --source kiosk``: the kiosk page is this gate's only scanner (a keyboard-wedge
    scanner typing into the screen's browser), so nothing needs a terminal. It yields nothing
    itself (the page's scans go through ``/api/scan``); it keeps the gate running until stop."""

    via = "kiosk"

    async def texts(self) -> AsyncIterator[str]:
        forever: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        yield await forever


async def _safe_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every answer (streams too): no version banner, no MIME sniffing, not framed by another
    page, and names and decisions from the API never kept in a browser cache."""
    response.headers["Server"] = "tessera-gate"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
