"""``syncd`` admin commands for the benches, and waiting for ``serve`` replicas to be ready
(bench.stack starts and stops them)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tessera_dev.bench.kit import BenchError

ROOT = Path(__file__).resolve().parents[2]
PROFILE = os.environ.get("BENCH_PROFILE") == "1"  # write a cProfile of each syncd to /tmp


def syncd(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "syncd", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def wait_ready(bases: list[str], servers: list[subprocess.Popen]) -> None:
    for base, server in zip(bases, servers, strict=True):
        for _ in range(300):
            if server.poll() is not None:
                raise BenchError(f"syncd at {base} exited with status {server.returncode}")
            with contextlib.suppress(OSError), urllib.request.urlopen(base + "/readyz", timeout=2):
                break
            time.sleep(0.1)
        else:
            raise BenchError(f"syncd at {base} was not ready within 30 s")
