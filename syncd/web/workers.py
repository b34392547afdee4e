"""``syncd serve --workers N``: N processes serving one port, so one host's cores all work.

One asyncio loop is one core; 10,000 connected gates needed more (issue 22). Each worker is a
whole replica (its own pools, notifier and relay candidate: the relay still has one leader per
database) that binds the port with ``SO_REUSEPORT``, and the kernel spreads new connections over
them. Workers share nothing but Postgres and RabbitMQ, exactly as replicas on separate hosts do.

This supervisor starts them, forwards SIGTERM/SIGINT, and restarts a worker that dies. A worker
that dies within ``QUICK_EXIT`` seconds of starting, ``GIVE_UP`` times in a row, is a broken
configuration, not bad luck: the supervisor stops the others and exits 1.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

log = logging.getLogger("syncd.workers")
QUICK_EXIT = 5.0
GIVE_UP = 3
STOP_GRACE = 60.0


class Worker:
    def __init__(self, index: int, command: Sequence[str]) -> None:
        self.index = index
        self.command = list(command)
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.quick_exits = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(self.command)
        self.started = time.monotonic()
        log.info("worker started", extra={"worker": self.index, "pid": self.proc.pid})

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()


def supervise(count: int, command: Sequence[str]) -> int:
    """Run ``count`` copies of ``command`` until a signal; returns the exit status."""
    stopping: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    workers = [Worker(i, command) for i in range(count)]
    for worker in workers:
        worker.start()
    status = 0
    while not stopping:
        time.sleep(0.2)
        for worker in workers:
            if stopping or (code := worker.exited()) is None:
                continue
            if not _restart(worker, code):
                status = 1
                stopping.append(0)
    _stop(workers)
    return status


def _restart(worker: Worker, code: int) -> bool:
    """Restart a worker that exited; False when it keeps dying right after it starts."""
    quick = time.monotonic() - worker.started < QUICK_EXIT
    worker.quick_exits = worker.quick_exits + 1 if quick else 0
    log.error("worker exited", extra={"worker": worker.index, "status": code})
    if worker.quick_exits >= GIVE_UP:
        log.error("worker keeps exiting at start: stopping", extra={"worker": worker.index})
        return False
    time.sleep(min(2.0, 0.2 * 2**worker.quick_exits))
    worker.start()
    return True


def _stop(workers: list[Worker]) -> None:
    for worker in workers:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for worker in workers:
        if worker.proc is None:
            continue
        try:
            worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait()


def worker_command(host: str, port: int) -> list[str]:
    """The command line of one worker: this ``syncd serve`` on the shared port."""
    return [sys.executable, "-m", "syncd", "serve", "--host", host, "--port", str(port),
            "--reuse-port", "--workers", "1"]  # fmt: skip
