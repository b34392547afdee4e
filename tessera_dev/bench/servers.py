"""The ``syncd`` processes of ``bench_sync``: admin commands, and ``serve`` replicas started in
their own session (Ctrl-C reaches only the bench), waited for, and stopped."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tessera_dev.bench.kit import BenchError, free_port

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


def start_servers(env: dict[str, str], replicas: int) -> tuple[list[str], list[subprocess.Popen]]:
    """``syncd serve`` processes in their own session: Ctrl-C reaches only this script."""
    bases, servers = [], []
    for _ in range(replicas):
        port = free_port()
        prof = ["-m", "cProfile", "-o", f"/tmp/syncd-{port}.prof"] if PROFILE else []
        servers.append(
            subprocess.Popen(
                [sys.executable, *prof, "-m", "syncd", "serve"],
                env={**env, "SYNCD_PORT": str(port)},
                cwd=ROOT,
                start_new_session=True,
            )
        )
        bases.append(f"http://127.0.0.1:{port}")
    return bases, servers


def stop_servers(servers: list[subprocess.Popen]) -> None:
    for server in servers:
        server.terminate()
    for server in servers:
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
