"""Real services for scripts/demo: a throwaway database, syncd and gates as processes, and a tap
on syncd's exchange that counts what it delivered.

Everything here is created with a random name and removed by its ``close``/``drop`` function,
so the demo never touches an existing database, exchange or queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aio_pika
import asyncpg
import httpx

COMPONENT_PREFIXES = ("GATE_", "SYNCD_", "TESSERA_CLI_")
GATE_RUN = (sys.executable, "-m", "gate", "run")


class DemoError(Exception):
    """A step of the demo failed; the message says which and why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any component setting (a shell's SYNCD_DATABASE_URL
    must never point the demo at a real database), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(COMPONENT_PREFIXES)}
    return {**env, **extra}


def run_tool(module: str, args: list[str], env: dict[str, str], timeout: float = 60) -> str:
    """Run ``python -m module args`` to completion; its stdout, or DemoError with its stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        raise DemoError(f"{module} {' '.join(args[:2])} failed ({proc.returncode}):\n{tail}")
    return proc.stdout


def stop_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> int | None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


# -- Postgres -------------------------------------------------------------------------------------
def database_url(admin_url: str, name: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


def create_database(admin_url: str, name: str) -> None:
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))


def drop_database(admin_url: str, name: str) -> None:
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(url: str, sql: str) -> None:
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise DemoError(f"PostgreSQL is not reachable ({exc}); run scripts/setup") from exc
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# -- syncd --------------------------------------------------------------------------------------
@dataclass
class Syncd:
    """``syncd serve`` as a subprocess; its JSON logs go to ``log_path``."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "syncd", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DemoError(f"syncd exited with {self.proc.returncode}: see {self.log_path}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise DemoError(f"syncd not ready (database and broker) within {timeout:.0f} s")

    def stop(self) -> int | None:
        return stop_process(self.proc) if self.proc is not None else None


# -- a gate -------------------------------------------------------------------------------------
@dataclass
class GateProcess:
    """``gate run --source VIDEO --source stdin``: the video plays once; the stdin pipe keeps the
    gate (and its sync worker) running until ``finish()`` closes it, like a door that stays open
    after the last visitor. Decisions (JSON lines on stdout) are collected as they come."""

    name: str
    env: dict[str, str]
    video: Path
    log_path: Path
    decisions: list[dict[str, Any]] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    _reader: threading.Thread | None = None

    def start(self) -> None:
        with self.log_path.open("a") as log:
            self.proc = subprocess.Popen(
                [*GATE_RUN, "--source", str(self.video), "--source", "stdin"],
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
            )
        self._reader = threading.Thread(target=self._read, name=f"read-{self.name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.decisions.append(json.loads(line))

    def wait_decisions(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.decisions) < count and time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return len(self.decisions) >= count

    def finish(self, timeout: float = 30) -> int | None:
        """Close stdin: the gate pushes what is left and exits."""
        if self.proc is None:
            return None
        _close(self.proc.stdin)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return stop_process(self.proc)
        if self._reader is not None:
            self._reader.join(5)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None:
            _close(self.proc.stdin)
            stop_process(self.proc, grace=5)


def _close(stream: IO[str] | None) -> None:
    if stream is not None:
        with contextlib.suppress(OSError):
            stream.close()


# -- the exchange tap ---------------------------------------------------------------------------
@dataclass
class Deliveries:
    """What the exchange delivered to the tap queue: distinct messages per routing key."""

    by_key: Counter[str] = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)
    duplicates: int = 0
    bodies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def add(self, message_id: str, key: str, body: dict[str, Any]) -> None:
        if message_id in self.seen:
            self.duplicates += 1
            return
        self.seen.add(message_id)
        self.by_key[key] += 1
        self.bodies.append((key, body))


@dataclass(frozen=True)
class Tap:
    """A queue bound '#' to syncd's exchange (declared exactly as syncd declares it)."""

    url: str
    exchange: str

    @property
    def queue(self) -> str:
        return f"{self.exchange}.demo-tap"

    def open(self) -> None:
        asyncio.run(self._open())

    async def _open(self) -> None:
        from syncd.outbox.topology import declare_topology

        try:
            conn = await aio_pika.connect(self.url, timeout=10)
        except Exception as exc:
            raise DemoError(f"RabbitMQ is not reachable ({exc}); run scripts/setup") from exc
        async with conn:
            channel = await conn.channel()
            exchange = await declare_topology(channel, self.exchange)
            queue = await channel.declare_queue(self.queue, durable=False, auto_delete=False)
            await queue.bind(exchange, "#")

    def collect(self, into: Deliveries, done: Callable[[Deliveries], bool], within: float) -> None:
        """Take messages from the queue until ``done(into)`` or ``within`` seconds passed."""
        asyncio.run(self._collect(into, done, time.monotonic() + within))

    async def _collect(
        self, into: Deliveries, done: Callable[[Deliveries], bool], deadline: float
    ) -> None:
        async with await aio_pika.connect(self.url, timeout=10) as conn:
            queue = await (await conn.channel()).get_queue(self.queue)
            while True:
                message = await queue.get(no_ack=True, fail=False)
                if message is not None:
                    body = json.loads(message.body)
                    into.add(str(message.message_id), str(message.routing_key), body)
                    continue
                if done(into) or time.monotonic() > deadline:
                    return
                await asyncio.sleep(0.1)

    def delete(self) -> None:
        asyncio.run(self._delete())

    async def _delete(self) -> None:
        x = self.exchange
        async with await aio_pika.connect(self.url, timeout=10) as conn:
            for queue in (self.queue, f"{x}.dead", f"{x}.unrouted"):
                with contextlib.suppress(aio_pika.exceptions.AMQPError):
                    await (await conn.channel()).queue_delete(queue)
            for exchange in (x, f"{x}.dlx", f"{x}.unrouted"):
                with contextlib.suppress(aio_pika.exceptions.AMQPError):
                    await (await conn.channel()).exchange_delete(exchange)
