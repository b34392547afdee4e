"""``syncd serve`` as a real process: it answers, logs JSON lines with request ids, and shuts
down cleanly on SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys

import httpx

from tests.conftest import AMQP_URL, Rabbit
from tests.syncd.conftest import MASTER_KEY, relay_exchange


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen) -> httpx.Response:
    for _ in range(300):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            return httpx.get(url, headers={"X-Request-Id": "serve-test-1"}, timeout=1)
        except httpx.TransportError:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.1)
    raise AssertionError("syncd serve never answered")


def test_serve_process(db_url: str, rabbit: Rabbit) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "SYNCD_DATABASE_URL": db_url,
        "SYNCD_MASTER_KEY": MASTER_KEY,
        "SYNCD_AMQP_URL": AMQP_URL,
        "SYNCD_AMQP_EXCHANGE": relay_exchange(rabbit),
        "SYNCD_PORT": str(port),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd", "serve"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        resp = _wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        assert resp.status_code == 200 and resp.headers["X-Request-Id"] == "serve-test-1"
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    access = [x for x in lines if x.get("msg") == "GET /healthz 200"]
    assert access and access[0]["request_id"] == "serve-test-1" and access[0]["level"] == "info"
    assert MASTER_KEY not in err
