"""The gate's HTTP client for syncd (shared/protocol.py), over a swappable httpx transport.

Every lower-layer error is translated here, at the boundary, into one small hierarchy::

    SyncError                 anything that kept a sync call from succeeding
    ├── OfflineError          syncd not reachable or not serving: connection refused or reset,
    │   │                     DNS, timeouts, a cut-off response, 5xx, 429. Retry with backoff.
    │   └── UnreachableError  no answer at all (transport error, timeout): the worker probes
    │                         GET /healthz cheaply until it answers, then retries at once.
    ├── AuthRejectedError     401/403: the credential is revoked (or the enrolment code is
    │                         wrong). Retrying cannot help: stop and show it.
    └── ProtocolError         syncd answered something this gate cannot use: another 4xx, a
                              body that does not match the protocol, a 409 journal clash.

The credential is sent only in the ``Authorization`` header and never appears in an error
message or a log line.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from gate.sync.sse import SseError, SseParser
from shared.protocol import (
    CHANGES_PATH,
    DRILL_PATH,
    ENROLL_PATH,
    PEERS_PATH,
    PRESENCE_PATH,
    PUSH_PATH,
    SNAPSHOT_PATH,
    STREAM_PATH,
    ChangesPage,
    DrillAnswer,
    DrillReport,
    EnrollRequest,
    EnrollResponse,
    PeersPage,
    PeersReport,
    PresencePage,
    PushRequest,
    PushResponse,
)

M = TypeVar("M", bound=BaseModel)
HEALTH_PATH = "/healthz"
_RETRYABLE = {408, 425, 429}


class SyncError(Exception):
    """A sync call did not succeed (see the module docstring for the hierarchy)."""


class OfflineError(SyncError):
    """syncd is not reachable or not serving right now; retry later."""


class UnreachableError(OfflineError):
    """No answer came at all (the link or syncd is down), as opposed to an answer that failed."""


class AuthRejectedError(SyncError):
    """syncd refused the credential (or enrolment code): 401 or 403.

    ``code`` is syncd's own error code from the JSON body ("unauthorized"; "revoked" for the
    stream's ``event: revoked``), None when the answer is not syncd's (a proxy's login page):
    only syncd's word makes a gate wipe itself (``gate.sync.revocation``)."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ProtocolError(SyncError):
    """syncd answered with something this gate cannot use."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SyncClient:
    """One gate's calls to syncd. ``async with SyncClient(...) as client:`` or ``aclose()``.

    ``transport`` is for tests (``httpx.MockTransport``) and proxies; ``timeout`` bounds each
    connect, write and read (a long-poll adds its wait to the read).
    """

    def __init__(
        self,
        base_url: str,
        credential: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        self.timeout = timeout
        self.fingerprint = fingerprint(credential)
        """SHA-256 of the credential: tells which one syncd refused, without keeping it twice."""
        self._transport = transport
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
        )

    async def __aenter__(self) -> SyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def renewed(self, base_url: str, credential: str) -> SyncClient:
        """A client like this one (timeout, transport) for a new enrolment's credential."""
        return SyncClient(base_url, credential, timeout=self.timeout, transport=self._transport)

    async def enroll(
        self, code: str, device: str = "", peer_key: str | None = None
    ) -> EnrollResponse:
        body = EnrollRequest(code=code, device=device, peer_key=peer_key).model_dump(mode="json")
        return await self._call("POST", ENROLL_PATH, EnrollResponse, json=body)

    async def push(self, request: PushRequest) -> PushResponse:
        body = request.model_dump(mode="json")
        return await self._call("POST", PUSH_PATH, PushResponse, json=body)

    async def changes(self, cursor: str, wait: float = 0) -> ChangesPage:
        """One page after ``cursor``; syncd may hold the request up to ``wait`` seconds."""
        params = {"cursor": cursor, "wait": f"{wait:g}"}
        timeout = httpx.Timeout(self.timeout, read=self.timeout + wait)
        return await self._call("GET", CHANGES_PATH, ChangesPage, params=params, limits=timeout)

    async def stream(self, cursor: str, idle: float) -> AsyncIterator[ChangesPage | None]:
        """The pages syncd pushes from ``cursor`` on, until it closes the stream; None for a
        keepalive. ``idle`` bounds the silence between two (syncd keeps alive every 15 s)."""
        timeout = httpx.Timeout(self.timeout, read=idle)
        params = {"cursor": cursor}
        async with (
            self._translated(),
            self._http.stream("GET", STREAM_PATH, params=params, timeout=timeout) as response,
        ):
            if response.status_code != 200:
                await response.aread()
                raise _status_error(response)
            parser = SseParser()
            async for chunk in response.aiter_bytes():
                for name, data in _events(parser, chunk):
                    if name == "revoked":
                        raise AuthRejectedError(
                            401, "syncd revoked this gate's credential", "revoked"
                        )
                    if name == "page":
                        yield _page(data)
                    elif name == "":
                        yield None

    async def presence(self) -> PresencePage:
        return await self._call("GET", PRESENCE_PATH, PresencePage)

    async def peers(self, urls: list[str] | None = None) -> PeersPage:
        """Report this gate's peer URLs (None: unchanged); the event's other gates."""
        body = PeersReport(urls=urls).model_dump(mode="json")
        return await self._call("POST", PEERS_PATH, PeersPage, json=body)

    async def drill(self, report: DrillReport, within: float) -> DrillAnswer:
        """Report a pre-doors drill's board (``gate.drill``); ``within`` bounds the call."""
        body = report.model_dump(mode="json")
        limits = httpx.Timeout(within)
        return await self._call("POST", DRILL_PATH, DrillAnswer, json=body, limits=limits)

    async def probe(self, within: float) -> bool:
        """One cheap reachability check (GET /healthz, short timeout): did syncd answer 200?

        Never raises for network trouble; used while offline to notice the link is back.
        """
        try:
            response = await self._http.get(HEALTH_PATH, timeout=within)
        except (httpx.HTTPError, OSError):
            return False
        return response.status_code == 200

    async def snapshot(self, dest: Path) -> int:
        """Stream the snapshot bundle into ``dest`` (replaced); returns its size in bytes.

        Asks for bundle format 3 (with each ticket's group); a syncd built before groups
        ignores the parameter and sends format 2, which loads the same (no groups)."""
        params = {"format": "3"}
        request = self._http.stream("GET", SNAPSHOT_PATH, params=params)
        async with self._translated(), request as response:
            if response.status_code != 200:
                await response.aread()
                raise _status_error(response)
            size = 0
            with dest.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
                    size += len(chunk)
        return size

    async def _call(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        json: object = None,
        params: dict[str, str] | None = None,
        limits: httpx.Timeout | None = None,
    ) -> M:
        async with self._translated():
            response = await self._http.request(
                method,
                path,
                json=json,
                params=params,
                timeout=limits if limits is not None else httpx.USE_CLIENT_DEFAULT,
            )
        if response.status_code != 200:
            raise _status_error(response)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise ProtocolError(
                f"{method} {path}: answer does not match the protocol: {exc}"
            ) from exc

    @asynccontextmanager
    async def _translated(self) -> AsyncIterator[None]:
        try:
            yield
        except httpx.TimeoutException as exc:
            raise UnreachableError(f"syncd did not answer in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise UnreachableError(f"syncd unreachable: {type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise UnreachableError(f"sync I/O failed: {type(exc).__name__}: {exc}") from exc


def _events(parser: SseParser, chunk: bytes) -> list[tuple[str, str]]:
    try:
        return list(parser.feed(chunk))
    except SseError as exc:
        raise ProtocolError(f"feed stream: {exc}") from exc


def _page(data: str) -> ChangesPage:
    try:
        return ChangesPage.model_validate_json(data)
    except ValidationError as exc:
        raise ProtocolError(f"feed stream: a page does not match the protocol: {exc}") from exc


def fingerprint(credential: str | None) -> str | None:
    return hashlib.sha256(credential.encode()).hexdigest() if credential else None


def _code(response: httpx.Response) -> str | None:
    """syncd's error code: ``{"error": "unauthorized", "message": ...}``; None otherwise."""
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _status_error(response: httpx.Response) -> SyncError:
    status = response.status_code
    where = f"{response.request.method} {response.request.url.path}"
    detail = response.text[:300].strip()
    if status in (401, 403):
        return AuthRejectedError(
            status, f"{where}: syncd refused the credential ({status}) {detail}", _code(response)
        )
    if status >= 500 or status in _RETRYABLE:
        return OfflineError(f"{where}: syncd answered {status} {detail}")
    return ProtocolError(f"{where}: syncd answered {status} {detail}", status)
