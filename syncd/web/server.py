"""The HTTP server around the app: what ``syncd serve`` runs.

aiohttp answers a request its parser refuses (a control character or a bare LF in a header, an
over-long line) itself, before any middleware, with the parser's message as a text/plain body,
and logs that message with a traceback. The message quotes the raw line, so a malformed
``Authorization`` header put the bearer token into both. ``SafeRequestHandler`` answers such a
request with the same JSON error shape as every other error and logs one line naming only the
error type; ``SyncdRunner`` makes aiohttp use it. ``logs.SecretFilter`` scrubs aiohttp's own log
lines too, for any other way the app is run. A body that cannot be decoded is a 400
(``middleware.errors``) and a warning here, not an ERROR with a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler, RequestPayloadError

from syncd.web.middleware import SECURITY_HEADERS

log = logging.getLogger("syncd.server")


class SafeRequestHandler(RequestHandler):
    """aiohttp's connection handler, but errors outside the app never echo the request."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, HttpProcessingError):
            log.warning(
                "malformed HTTP request refused: %s",
                type(exc).__name__,
                extra={"status": status, "remote": request.remote},
            )
            body = {"error": "bad_request", "message": "malformed HTTP request"}
        else:
            log.error("error outside the app: %s", type(exc).__name__, exc_info=exc)
            body = {"error": "internal", "message": "internal error"}
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send the error")
        response = web.json_response(body, status=status, headers=SECURITY_HEADERS)
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp logs a body it cannot decode (corrupt gzip, broken chunks) as an ERROR with a
        traceback when it drains it after the answer; it is the client's fault: one warning."""
        exc = kw.get("exc_info")
        if isinstance(exc, HttpProcessingError | RequestPayloadError):
            log.warning("undecodable request body: %s", type(exc).__name__)
            return
        super().log_exception(*args, **kw)


class _SafeServer(web.Server):
    def __call__(self) -> RequestHandler:
        return SafeRequestHandler(self, loop=self._loop, **self._kwargs)


def protect(app: web.Application) -> None:
    """Make every runner of ``app`` (``TestServer``, ``AppRunner``, ``run_app``) serve its
    connections with ``SafeRequestHandler``: aiohttp builds a runner's server through
    ``app._make_handler``, so that one call is wrapped (``create_app`` does this)."""
    make = app._make_handler

    def safe_handler(**kwargs: Any) -> web.Server:
        server = make(**kwargs)
        server.__class__ = _SafeServer  # see SyncdRunner
        return server

    app._make_handler = safe_handler  # type: ignore[method-assign]


class SyncdRunner(web.AppRunner):
    """An ``AppRunner`` whose connections are ``SafeRequestHandler``s."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The same object (built by aiohttp with the app's handler and settings); only its
        # protocol factory changes. _SafeServer adds no state, so the swap is sound.
        server.__class__ = _SafeServer
        return server


async def serve(
    app: web.Application, host: str, port: int, *, reuse_port: bool = False, **runner_args: Any
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down cleanly (cleanup_ctx in reverse).
    ``reuse_port``: share the port with the other workers of ``syncd serve --workers``."""
    runner = SyncdRunner(app, access_log=None, **runner_args)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
        log.info("listening", extra={"host": host, "port": port})
        await stop.wait()
    finally:
        await runner.cleanup()
