"""Receiving a list upload, bounded in size and time, into a temp file before any database work.

An announced Content-Length over the limit is refused before a byte is read (413); the body is
read under one deadline (``upload_timeout``, 408) into a temporary file, checked to be UTF-8 on
the way (400) and cut off past ``max_list_bytes`` (413). Only then does the handler parse it (in
a worker process) and take a database connection: a client that sends slowly or stops holds no pool
connection, no transaction and no lock, only one of its organisation's upload slots
(``UploadSlots``, 429 past the limit), so it can slow down no other tenant.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
from aiohttp import web

from syncd.web.errors import ApiError

RETRY_AFTER_SECONDS = 5


class UploadRefusedError(ApiError):
    """An ``ApiError`` answered with extra headers, optionally closing the connection (the
    rest of an unread body is not worth reading)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        close: bool = False,
        **details: Any,
    ) -> None:
        super().__init__(status, code, message, headers or {}, **details)
        self.close = close


def too_large(limit: int) -> UploadRefusedError:
    return UploadRefusedError(413, "too_large", f"list is larger than {limit} bytes", close=True)


def refuse_announced_size(request: web.Request, limit: int) -> None:
    """413 at once for a Content-Length over ``limit``: nothing of the body is read."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)


class UploadSlots:
    """List uploads in progress per organisation in this replica; one more is a 429.

    A slot is held from the first byte of the body to the answer, so an organisation whose
    uploads stall blocks only its own further uploads."""

    def __init__(self, per_org: int) -> None:
        self.per_org = per_org
        self._busy: dict[int, int] = {}

    def busy(self, org_id: int) -> int:
        return self._busy.get(org_id, 0)

    @contextlib.contextmanager
    def hold(self, org_id: int) -> Iterator[None]:
        if self.busy(org_id) >= self.per_org:
            raise UploadRefusedError(
                429,
                "too_many_uploads",
                f"{self.per_org} list upload(s) of this organisation are already in progress",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self._busy[org_id] = self.busy(org_id) + 1
        try:
            yield
        finally:
            self._busy[org_id] -= 1
            if not self._busy[org_id]:
                del self._busy[org_id]


async def receive(request: web.Request, path: Path, limit: int, seconds: float) -> int:
    """Copy the body into a new file ``path`` within ``seconds``; returns its size in bytes."""
    dest = await asyncio.to_thread(path.open, "wb")
    try:
        async with asyncio.timeout(seconds):
            return await _copy(request.content, dest, limit)
    except TimeoutError:
        raise UploadRefusedError(
            408,
            "upload_timeout",
            f"the list did not arrive within {seconds:g} s; nothing was changed",
            close=True,
        ) from None
    except (aiohttp.ClientPayloadError, ConnectionError):
        raise UploadRefusedError(400, "upload_broken", "the upload broke off", close=True) from None
    finally:
        dest.close()


async def _copy(content: aiohttp.StreamReader, dest: BinaryIO, limit: int) -> int:
    decoder = codecs.getincrementaldecoder("utf-8")()
    size = 0
    try:
        async for chunk in content.iter_any():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            decoder.decode(chunk)
            _write(dest, chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        near = size - len(exc.object) + exc.start
        raise UploadRefusedError(
            400, "bad_encoding", f"list is not UTF-8 text near byte {near}", close=True
        ) from None
    return size


def _write(dest: BinaryIO, chunk: bytes) -> None:
    try:
        dest.write(chunk)
    except OSError:
        raise UploadRefusedError(
            503,
            "spool_unavailable",
            "syncd cannot store the upload right now",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS * 6)},
            close=True,
        ) from None
