"""A real ``gate run`` subprocess for source and stop tests: decisions read from its stdout.

``prepared(tmp_path)`` makes a data folder with the kit's list loaded; ``RunningGate`` starts
``gate run --source ...`` on it, collects decision lines and log lines in threads, and stops it
with a signal, returning the exit code and stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from gate.store.db import Store
from tessera_dev.sample_event import loaded_store


def prepared(tmp_path: Path) -> Path:
    """A data folder whose database trusts the kit's KEY and holds its list."""
    data_dir = tmp_path / "data"

    async def load() -> None:
        store = await loaded_store(data_dir / "gate.sqlite3")
        await store.close()

    asyncio.run(load())
    return data_dir


def journal(data_dir: Path) -> list[tuple[int, str, str | None]]:
    """(seq, decision, via) of every journal row, in seq order."""

    async def read() -> list[tuple[int, str, str | None]]:
        store = await Store.open(data_dir / "gate.sqlite3")
        try:
            sql = "SELECT seq, decision, via FROM journal ORDER BY seq"
            return [tuple(row) for row in await store.conn.execute_fetchall(sql)]  # type: ignore[misc]
        finally:
            await store.close()

    return asyncio.run(read())


class RunningGate:
    def __init__(self, data_dir: Path, *sources: str, stdin: int | None = None, **env: str):
        environ = {
            **os.environ,
            "GATE_DATA_DIR": str(data_dir),
            "GATE_NAME": "Gate B",
            "GATE_DEBOUNCE_SECONDS": "0",
            "GATE_DISPLAY_ENABLED": "false",
            "GATE_LOG_LEVEL": "INFO",
        }
        environ.update({f"GATE_{k.upper()}": v for k, v in env.items()})
        args = [arg for source in sources for arg in ("--source", source)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gate", "run", *args],
            stdin=subprocess.PIPE if stdin is None else stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environ,
        )
        self.decisions: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stderr: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._read_out, args=(self.proc.stdout,), daemon=True),
            threading.Thread(target=self._read_err, args=(self.proc.stderr,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_out(self, stream: IO[bytes]) -> None:
        for line in stream:
            if line.startswith(b"{"):
                self.decisions.put(json.loads(line))

    def _read_err(self, stream: IO[bytes]) -> None:
        for line in stream:
            text = line.decode("utf-8", "replace")
            self.stderr.append(text)

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def next_decisions(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        return [self.decisions.get(timeout=timeout) for _ in range(count)]

    def no_more_decisions(self, wait: float = 0.5) -> bool:
        time.sleep(wait)
        return self.decisions.empty()

    def wait_for_log(self, needle: str, count: int = 1, timeout: float = 30) -> None:
        """Until ``count`` log lines so far contain ``needle``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(needle in line for line in list(self.stderr)) >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"no log line with {needle!r}; stderr: {''.join(self.stderr)}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> tuple[int, str, float]:
        """Send ``sig``; returns (exit code, stderr, seconds the exit took)."""
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        took = time.monotonic() - started
        self._close()
        return code, "".join(self.stderr), took

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        self._close()
        return code

    def _close(self) -> None:
        for thread in self._threads:
            thread.join(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
