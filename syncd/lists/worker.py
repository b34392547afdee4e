"""Parsing lists in worker processes: a parse never competes with the event loop for the GIL.

A parser thread kept the loop answering on average, but on a busy machine the loop waited for
the GIL while the thread holding it was descheduled (``/healthz`` up to 160-220 ms during a
1M-row parse in ``scripts/bench_lists``). Workers are ``forkserver`` children (never a fork of
the threaded server), at most ``WORKERS`` per replica, started on first use and kept. They
import only ``parse`` (no aiohttp, no pydantic: about 25 MB each when idle), get paths and plain
values and hand back plain values: the row count and the problems, or the ``ListError``.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from syncd.lists.parse import Limits, Task, run_task
from syncd.lists.rows import RowChecker
from syncd.web.errors import ApiError

WORKERS = 2
"""Lists parsed at once per replica; more wait for a free worker."""
_pool: ProcessPoolExecutor | None = None
_starting = threading.Lock()


def _start() -> ProcessPoolExecutor:
    """The pool, its forkserver running (starting it takes about a second, so it happens in a
    thread, never on the loop)."""
    global _pool
    with _starting:
        if _pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["syncd.lists.parse"])
            pool = ProcessPoolExecutor(WORKERS, mp_context=context)
            pool.submit(int).result()
            _pool = pool
        return _pool


async def _executor() -> ProcessPoolExecutor:
    return _pool if _pool is not None else await asyncio.to_thread(_start)


async def check_off_loop(
    body: Path, copy_file: Path, media_type: str, checker: RowChecker, limits: Limits
) -> int:
    """``parse.check_list`` in a worker process; its problems land in ``checker``."""
    task = Task(
        body, copy_file, media_type, checker.zones, checker.timezone, checker.max_problems, limits
    )
    global _pool
    try:
        outcome = await asyncio.get_running_loop().run_in_executor(
            await _executor(), functools.partial(run_task, task)
        )
    except BrokenProcessPool:
        _pool = None  # a worker died (killed?): the next list starts fresh workers
        raise ApiError(503, "parser_unavailable", "the list parser restarted; send again") from None
    if outcome.error is not None:
        raise ApiError(outcome.error.status, outcome.error.code, outcome.error.message)
    checker.problems[:] = outcome.problems
    checker.problem_count = outcome.problem_count
    return outcome.rows
