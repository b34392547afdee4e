"""Stopping background tasks for good."""

from __future__ import annotations

import asyncio
from typing import Any


async def stop(task: asyncio.Task[Any], *, every: float = 1.0) -> BaseException | None:
    """Cancel ``task`` and wait for it to end, cancelling again while it still runs.

    On Python 3.11 ``asyncio.wait_for`` can swallow a cancellation that arrives just as its inner
    call completes; a reconnect loop around it then runs on and a single ``cancel()`` followed by
    ``await task`` hangs shutdown forever (seen as a test teardown that never ended).
    Returns the exception the task had ended with, if any, instead of raising it: by the time a
    part is stopped its owner has dealt with (or logged) its failure.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=every)
    return None if task.cancelled() else task.exception()
