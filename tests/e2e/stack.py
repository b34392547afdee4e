"""Real processes for end-to-end tests: ``syncd serve`` and ``gate run --source stdin``.

syncd reaches Postgres and RabbitMQ through cuttable TCP proxies, and gates reach syncd through
one, so a test can take the network, the broker or the database away for real. Waiting is done
with ``eventually`` (generous bounds, never a speed assertion).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tessera_dev.netproxy import TcpProxy, _free_port

T = TypeVar("T")
MASTER_KEY = "e2e-master-key-0123456789-abcdefghijklmnop"


def eventually(check: Callable[[], T], what: str, timeout: float = 90) -> T:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            value = check()
            if value:
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        time.sleep(0.1)


@dataclass
class Syncd:
    env: dict[str, str]
    port: int
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "serve"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        eventually(lambda: self.get("/healthz").status_code == 200, "syncd answers")

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=5)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def syncd_command(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "syncd", *args], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@dataclass
class Gate:
    """A ``gate run --source stdin`` process; ``scan`` feeds a code and returns the decision."""

    name: str
    data_dir: Path
    server: str
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    reader: threading.Thread | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    _lines: queue.Queue = field(default_factory=queue.Queue)

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "GATE_DATA_DIR": str(self.data_dir),
            "GATE_NAME": self.name,
            "GATE_DEBOUNCE_SECONDS": "0",
            "GATE_SYNC_PUSH_INTERVAL": "0.3",
            "GATE_SYNC_LONG_POLL": "5",
            "GATE_SYNC_TIMEOUT": "3",
            "GATE_SYNC_BACKOFF_INITIAL": "0.2",
            "GATE_SYNC_BACKOFF_MAX": "1",
            "GATE_LOG_LEVEL": "WARNING",
            **self.env,
        }

    def enroll(self, code: str) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "gate", "enroll", "--server", self.server, "--code", code],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gate", "run", "--source", "stdin"],
            env=self._env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self.reader.start()

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("{"):
                self._lines.put(json.loads(line))

    def scan(self, text: str) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        decision: dict[str, Any] = self._lines.get(timeout=60)
        self.decisions.append(decision)
        return decision

    def stop(self) -> None:
        """Close stdin: the gate finishes its last push and exits."""
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(60)
        self._close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        assert self.proc is not None and self.reader is not None
        self.reader.join(10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(OSError):
                    pipe.close()


def proxy(target_port: int) -> TcpProxy:
    return TcpProxy("127.0.0.1", target_port, _free_port())
