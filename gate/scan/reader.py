"""Bytes from a file descriptor without a reader thread: the loop waits for it to be readable.

Why not a thread: a daemon thread blocked in a buffered ``stdin`` read holds the buffer's lock
when the interpreter shuts down, and CPython aborts with ``Fatal Python error:
_enter_buffered_busy`` (exit 134) on every SIGTERM or Ctrl-C. Here nothing blocks: the event
loop watches the descriptor (``add_reader``), ``os.read`` takes what is there, and a stop simply
cancels the waiting task. The descriptor's blocking mode is left alone (stdin may be shared with
a shell), which is safe because one ``os.read`` after readiness never blocks.

Descriptors the loop cannot watch (a regular file, ``/dev/null``) never block either; they are
read straight through.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator

CHUNK = 65536


class DeviceGoneError(OSError):
    """The device behind the descriptor went away (unplugged scanner, closed pty)."""


async def read_chunks(fd: int, size: int = CHUNK) -> AsyncIterator[bytes]:
    """Chunks of bytes from ``fd`` as they arrive; ends at end of input.

    Raises ``DeviceGoneError`` when the device disappears (EIO, ENODEV), so a source can reopen it.
    """
    loop = asyncio.get_running_loop()
    watchable = True
    while True:
        if watchable:
            try:
                await _readable(loop, fd)
            except PermissionError:  # epoll refuses regular files and /dev/null
                watchable = False
        data = _read(fd, size)
        if data is None:
            continue
        if not data:
            return
        yield data


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


def _read(fd: int, size: int) -> bytes | None:
    """One read; None when nothing was there after all (a non-blocking descriptor)."""
    try:
        return os.read(fd, size)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno in (errno.EIO, errno.ENODEV, errno.ENXIO):
            raise DeviceGoneError(exc.errno, f"device went away: {exc.strerror}") from exc
        raise
