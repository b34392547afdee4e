"""Request id, access log, metrics, error mapping and response headers.

Order (outermost first): ``observe`` sets the request id, times the request, logs one access
line and counts it; ``errors`` turns every failure into a JSON body (a 500 only for bugs,
logged with its traceback and the request id the client also sees). A database that cannot be
reached, wherever it is found out (the credential lookup runs before any handler), is a 503 with
``Retry-After``, never a 500. ``secure_headers`` (an ``on_response_prepare`` hook, so streamed
answers get them too) puts ``SECURITY_HEADERS`` on every answer and a script-free CSP on pages.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import CollectorRegistry, Counter, Histogram

from syncd.db import DB_DOWN
from syncd.keys import METRICS
from syncd.web.auth import PRINCIPAL
from syncd.web.errors import ApiError
from syncd.web.logs import redact, request_id

log = logging.getLogger("syncd.http")
RETRY_AFTER_SECONDS = 5  # what a 503 tells the client to wait (Postgres or RabbitMQ down)
# nosniff: a browser never runs an answer as another type; no-store: answers carry tokens,
# credentials, enrolment codes and tickets, none of which a cache may keep; Server: no version.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Server": "syncd",
}
# Pages (the printable ticket sheet) are inline CSS and inline SVG: nothing else may load or run.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none';"
    " form-action 'none'; frame-ancestors 'none'"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_GOOD_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps can live in a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "syncd_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "syncd_http_request_seconds", "HTTP request latency", ["route"], registry=self.registry
        )
        self.list_rows = Counter(
            "syncd_list_rows", "Attendee list rows applied", ["outcome"], registry=self.registry
        )


def _route_name(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-Id", "")
    # A client's id is echoed in answers and logs, so one shaped like a secret is replaced.
    good = _GOOD_ID.match(incoming) and redact(incoming) == incoming
    rid = incoming if good else uuid.uuid4().hex
    token = request_id.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers["X-Request-Id"] = rid
        return response
    finally:
        elapsed = time.perf_counter() - started
        route = _route_name(request)
        metrics = request.app[METRICS]
        metrics.requests.labels(request.method, route, str(status)).inc()
        metrics.latency.labels(route).observe(elapsed)
        principal = request.get(PRINCIPAL)
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            status,
            extra={
                "status": status,
                "ms": round(elapsed * 1000, 1),
                "org_id": getattr(principal, "org_id", None),
            },
        )
        request_id.reset(token)


async def secure_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the security headers on every answer the app makes, and the
    request id on answers a handler streams (prepared before ``observe`` sees them)."""
    response.headers.update(SECURITY_HEADERS)
    if request_id.get() != "-":
        response.headers.setdefault("X-Request-Id", request_id.get())
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
    if response.status == 503:
        response.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))


def _error_response(status: int, body: dict, headers: dict[str, str] | None = None) -> web.Response:
    body["request_id"] = request_id.get()
    response = web.json_response(body, status=status, headers=headers)
    response.headers["X-Request-Id"] = request_id.get()
    return response


def _http_error(exc: web.HTTPException) -> web.Response:
    code = exc.reason.lower().replace(" ", "_")
    allow = exc.headers.get("Allow")
    return _error_response(
        exc.status, {"error": code, "message": exc.reason}, {"Allow": allow} if allow else None
    )


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _error_response(exc.status, exc.body(), exc.headers)
    except DB_DOWN as exc:
        log.warning("database unavailable: %s", type(exc).__name__)
        return _error_response(
            503,
            {"error": "unavailable", "message": "database unavailable, retry later"},
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    except RequestPayloadError:
        # A body aiohttp cannot decode (corrupt gzip/deflate, broken chunked encoding). The
        # exception's text is the parser's and is not repeated.
        return _error_response(
            400, {"error": "bad_body", "message": "request body could not be decoded"}
        )
    except asyncpg.DataError as exc:
        # Values Postgres cannot hold (e.g. NUL in text) that slipped past validation.
        log.warning("rejected by Postgres: %s", type(exc).__name__)
        return _error_response(400, {"error": "bad_value", "message": "a value is not storable"})
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(exc)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return _error_response(500, {"error": "internal", "message": "internal error"})
