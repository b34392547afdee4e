"""``syncd serve --workers N`` (issue 22): N processes answer on one port, a worker that dies is
replaced, SIGTERM stops them all cleanly, a fixed port is required."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import httpx
import psutil

from tests.conftest import AMQP_URL, Rabbit
from tests.syncd.conftest import MASTER_KEY, relay_exchange
from tests.syncd.web.test_serve import _free_port, _wait_healthy


def _env(db_url: str, rabbit: Rabbit, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "SYNCD_DATABASE_URL": db_url,
        "SYNCD_MASTER_KEY": MASTER_KEY,
        "SYNCD_AMQP_URL": AMQP_URL,
        "SYNCD_AMQP_EXCHANGE": relay_exchange(rabbit),
        "SYNCD_PORT": str(port),
    }


def _listening(port: int) -> set[int]:
    """The pids of the workers that listen on ``port``."""
    pids = set()
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            pids.add(conn.pid)
    return pids


def _workers(supervisor: int) -> set[int]:
    """The supervisor's live children: its workers."""
    alive = set()
    for child in psutil.Process(supervisor).children():
        with contextlib.suppress(psutil.NoSuchProcess):  # reaped while we looked
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.add(child.pid)
    return alive


def _until(check, seconds: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.1)


def test_workers_share_a_port_are_replaced_and_stop_together(db_url: str, rabbit: Rabbit) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd", "serve", "--workers", "2"],
        env=_env(db_url, rabbit, port),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        _until(lambda: len(_listening(port)) == 2)
        workers = _listening(port)
        assert proc.pid not in workers  # the supervisor only supervises
        assert {p.pid for p in psutil.Process(proc.pid).children()} == workers
        for _ in range(20):  # new connections each: every one answered
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
        victim = min(_workers(proc.pid))  # a worker, never anything else on the port
        os.kill(victim, signal.SIGKILL)
        _until(lambda: victim not in _workers(proc.pid) and len(_workers(proc.pid)) == 2)
        _until(lambda: _listening(port) == _workers(proc.pid))
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        survivors = _listening(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                   for pid in survivors)  # fmt: skip
    assert "worker exited" in err


def test_workers_need_a_fixed_port(db_url: str, rabbit: Rabbit) -> None:
    env = _env(db_url, rabbit, 0)
    run = subprocess.run(
        [sys.executable, "-m", "syncd", "serve", "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0 and "fixed port" in run.stderr
