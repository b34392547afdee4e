"""Parsing lists in worker processes: a parse never competes with the event loop for the GIL.

A parser thread kept the loop answering on average, but on a busy machine the loop waited for
the GIL while the thread holding it was descheduled (``/healthz`` up to 160-220 ms during a
1M-row parse in ``scripts/bench_lists``). Workers are ``forkserver`` children (never a fork of
the threaded server), at most ``WORKERS`` per replica, started on first use and kept. They get
paths and plain values and hand back plain values: the row count and the problems, or the
error to raise.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncd.http import ApiError
from syncd.lists.parse import Limits, check_list
from syncd.lists.rows import Problem, RowChecker

WORKERS = 2
"""Lists parsed at once per replica; more wait for a free worker."""
_pool: ProcessPoolExecutor | None = None


@dataclass
class Outcome:
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    error: tuple[int, str, str, dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class Task:
    body: Path
    copy_file: Path
    media_type: str
    zones: list[str]
    timezone: str
    max_problems: int
    limits: Limits


_starting = threading.Lock()


def _start() -> ProcessPoolExecutor:
    """The pool, its forkserver running (starting it imports this package: about a second,
    so it happens in a thread, never on the loop)."""
    global _pool
    with _starting:
        if _pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["syncd.lists.worker"])
            pool = ProcessPoolExecutor(WORKERS, mp_context=context)
            pool.submit(int).result()
            _pool = pool
        return _pool


async def _executor() -> ProcessPoolExecutor:
    return _pool if _pool is not None else await asyncio.to_thread(_start)


def run(task: Task) -> Outcome:
    """In a worker: ``parse.check_list`` with a fresh checker; never raises for bad input."""
    checker = RowChecker(task.zones, task.timezone, task.max_problems)
    try:
        rows = check_list(task.body, task.copy_file, task.media_type, checker, task.limits)
    except ApiError as exc:
        return Outcome(error=(exc.status, exc.code, exc.message, exc.details))
    return Outcome(rows, checker.problems, checker.problem_count)


async def check_off_loop(
    body: Path, copy_file: Path, media_type: str, checker: RowChecker, limits: Limits
) -> int:
    """``check_list`` in a worker process; its problems land in ``checker``."""
    task = Task(
        body, copy_file, media_type, checker.zones, checker.timezone, checker.max_problems, limits
    )
    global _pool
    try:
        outcome = await asyncio.get_running_loop().run_in_executor(
            await _executor(), functools.partial(run, task)
        )
    except BrokenProcessPool:
        _pool = None  # a worker died (killed?): the next list starts fresh workers
        raise ApiError(503, "parser_unavailable", "the list parser restarted; send again") from None
    if outcome.error is not None:
        status, code, message, details = outcome.error
        raise ApiError(status, code, message, **details)
    checker.problems[:] = outcome.problems
    checker.problem_count = outcome.problem_count
    return outcome.rows
