"""Who may talk to the kiosk page: Host and Origin checks on every request.

The page listens on the gate's own machine, but any web page the kiosk browser (or another
browser on that machine) opens can send it requests, and a DNS-rebinding site can even make
them "same-origin" under its own name. So every request is checked before a handler runs:

- ``Host`` must name this page: the bound address, ``localhost``, ``127.0.0.1``, ``[::1]`` or a
  name in ``GATE_DISPLAY_ALLOWED_HOSTS``, with the port the page listens on. Otherwise
  **421 Misdirected Request** (a rebinding site's own name is never among them).
- ``Origin``, when the browser sends one (it does on every POST and every cross-origin fetch),
  must be ``http://`` + such a host and port; ``Origin: null`` (sandboxed frames, files) is
  refused. A write (POST) must also not be marked ``Sec-Fetch-Site: cross-site``/``same-site``
  and must send ``Content-Type: application/json`` (which no plain HTML form can send).
  Otherwise **403 Forbidden**.

Clients that are not browsers (curl, the kiosk unit's readiness probe) send no Origin; they
still need a right Host. Staff actions need a staff session on top (gate.feedback.staff).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp import web

log = logging.getLogger("gate.feedback.display")

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
_SAFE_METHODS = {"GET", "HEAD"}
_FOREIGN_FETCH = {"cross-site", "same-site"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HostGuard:
    """The names and port this page answers to; ``middleware`` applies the checks."""

    def __init__(self, bind_host: str, extra_names: Iterable[str] = ()) -> None:
        names = {bind_host, *LOCAL_NAMES, *extra_names}
        self.names = {n.strip().strip("[]").lower() for n in names if n.strip()}
        self.port: int | None = None  # set once the site is bound (port 0 = any free port)

    def host_allowed(self, value: str | None) -> bool:
        return self._split(value, scheme="") is not None

    def origin_allowed(self, value: str) -> bool:
        return self._split(value, scheme="http") is not None

    def _split(self, value: str | None, *, scheme: str) -> tuple[str, int] | None:
        if not value or len(value) > 300:
            return None
        try:
            parts = urlsplit(value if scheme else f"//{value}")
            name, port = (parts.hostname or "").lower(), parts.port or 80
        except ValueError:  # a port that is not a number or out of range
            return None
        if parts.scheme != scheme or parts.path or parts.query or parts.username is not None:
            return None
        if name not in self.names or port != self.port:
            return None
        return name, port

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            self._check(request)
        except web.HTTPException as exc:
            log.warning(
                "kiosk request refused",
                extra={
                    "status": exc.status,
                    "path": request.path[:200],
                    "host": request.headers.get("Host", "")[:200],
                    "origin": request.headers.get("Origin", "")[:200],
                },
            )
            raise
        return await handler(request)

    def _check(self, request: web.Request) -> None:
        if not self.host_allowed(request.headers.get("Host")):
            raise web.HTTPMisdirectedRequest(
                text="this kiosk page answers only to its own address (Host header refused)"
            )
        origin = request.headers.get("Origin")
        if origin is not None and not self.origin_allowed(origin):
            raise web.HTTPForbidden(text="requests from other web pages are refused (Origin)")
        if request.method not in _SAFE_METHODS:
            if request.headers.get("Sec-Fetch-Site", "").lower() in _FOREIGN_FETCH:
                raise web.HTTPForbidden(text="requests from other web pages are refused")
            if request.content_type != "application/json":
                raise web.HTTPUnsupportedMediaType(text="send Content-Type: application/json")
