"""A real ``syncd serve`` process on a test database, for tests that need real sockets."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from tests.conftest import AMQP_URL, Rabbit
from tests.syncd.conftest import MASTER_KEY, relay_exchange
from tests.syncd.web.test_serve import _free_port, _wait_healthy


@dataclass
class Served:
    port: int
    proc: subprocess.Popen
    log: IO[str]  # its stderr: a file, so a chatty server never blocks on a full pipe

    def stop(self) -> str:
        """SIGTERM the server, wait for it, and return everything it wrote to stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.seek(0)
        return self.log.read()


@contextlib.contextmanager
def running_syncd(db_url: str, rabbit: Rabbit, **env: str) -> Iterator[Served]:
    """``syncd serve`` relaying to a private exchange of ``rabbit``'s (never syncd's default
    ``tessera``, which no test may leave on the broker)."""
    port = _free_port()
    environ = {
        **os.environ,
        "SYNCD_DATABASE_URL": db_url,
        "SYNCD_MASTER_KEY": MASTER_KEY,
        "SYNCD_AMQP_URL": AMQP_URL,
        "SYNCD_PORT": str(port),
        "SYNCD_AMQP_EXCHANGE": relay_exchange(rabbit),
        **env,
    }
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:
        proc = subprocess.Popen([sys.executable, "-m", "syncd", "serve"], env=environ, stderr=log)
        served = Served(port, proc, log)
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
            yield served
        finally:
            served.stop()
