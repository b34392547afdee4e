"""The stack a syncd benchmark runs on (scripts/bench_sync, bench_fleet, bench_dashboard), and
the calls such a bench makes of it.

``run_on_stack`` makes a fresh Postgres database and a RabbitMQ exchange of the bench's own,
runs ``syncd migrate``, makes an organisation with a token of each role asked, starts ``syncd
serve`` (``replicas`` processes of ``workers`` each, in their own session: Ctrl-C reaches only
the bench), runs the bench, and tears all of it down in reverse whatever happened (an error,
Ctrl-C or SIGTERM): the syncd processes stopped, the exchange deleted, the database dropped
(or kept, with ``keep``, and named). It exits with the bench's status, 130 when interrupted::

    spec = StackSpec("fleet", keep=args.keep, roles=("organiser",))
    run_on_stack(spec, functools.partial(run, args))  # async def run(args, stack) -> int

``BENCH_PROFILE=1`` writes a cProfile of each syncd to /tmp. The bench's side: one aiohttp
session and a small pool on the bench database (``Stack.clients``), Postgres' transaction
count there (``Stack.xacts``), JSON posts, and gates enrolled over the public API that
long-poll their feed (``Gate``).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import asyncpg

from shared.protocol import CHANGES_PATH, ENROLL_PATH
from tessera_dev.bench.kit import (
    AMQP_URL,
    PG_URL,
    BenchError,
    admin_sql,
    cleanup_exchange,
    free_port,
)
from tessera_dev.bench.servers import PROFILE, ROOT, wait_ready

STOP_GRACE = 60.0  # what ``syncd serve --workers`` gives its workers (syncd/web/workers.py)
MASTER_KEY = "bench-master-key-0123456789abcdefghijkl"


@dataclass(frozen=True)
class StackSpec:
    """What a bench asks of its stack."""

    bench: str  # names the database: tessera_bench_<bench>_<random>
    keep: bool = False  # keep the database afterwards (its name and URL are printed)
    org: str = "Bench"
    roles: tuple[str, ...] = ("organiser",)  # a token of each, in this order
    root: Path = ROOT  # the checkout whose syncd runs (with its own migrations)
    replicas: int = 1  # ``syncd serve`` processes, each on a port of its own
    workers: int = 1  # ``syncd serve --workers`` of each
    pool_max: int | None = None  # SYNCD_POOL_MAX, unless the environment sets it
    # Connections the bench's simulated clients hold, all from 127.0.0.1: the open-files limit
    # is raised for them, and syncd exempts 127.0.0.1 from its auth-failure limit.
    clients: int = 0


@dataclass
class Stack:
    """A running stack: where syncd listens, its processes, the tokens made."""

    spec: StackSpec
    db: str
    exchange: str
    env: dict[str, str]  # the environment syncd runs with
    tokens: list[str] = field(default_factory=list)  # one per ``spec.roles``
    bases: list[str] = field(default_factory=list)  # http://127.0.0.1:PORT per replica
    servers: list[subprocess.Popen] = field(default_factory=list)

    @classmethod
    def new(cls, spec: StackSpec) -> Stack:
        db = f"tessera_bench_{spec.bench}_{uuid.uuid4().hex[:8]}"
        exchange = f"tessera-bench-{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "PYTHONPATH": str(spec.root),
            "SYNCD_DATABASE_URL": _database_url(db),
            "SYNCD_AMQP_URL": AMQP_URL,
            "SYNCD_AMQP_EXCHANGE": exchange,
            "SYNCD_MASTER_KEY": MASTER_KEY,
            "SYNCD_LOG_LEVEL": os.environ.get("SYNCD_LOG_LEVEL", "WARNING"),
        }
        if spec.pool_max is not None:
            env["SYNCD_POOL_MAX"] = os.environ.get("SYNCD_POOL_MAX", str(spec.pool_max))
        if spec.clients:
            env["SYNCD_AUTH_FAIL_EXEMPT"] = "127.0.0.1/32"
        return cls(spec, db, exchange, env)

    @property
    def db_url(self) -> str:
        return _database_url(self.db)

    @property
    def base(self) -> str:
        return self.bases[0]

    @property
    def pids(self) -> list[int]:
        return [server.pid for server in self.servers]

    def admin(self, *args: str) -> str:
        """``syncd ARGS`` (an admin command) of the stack's checkout; what it printed."""
        return syncd_admin(self.env, self.spec.root, *args)

    def start(self) -> None:
        """Database, schema, organisation and tokens, then the servers, ready."""
        asyncio.run(admin_sql(f'CREATE DATABASE "{self.db}"'))
        self.admin("migrate")
        self.admin("create-org", self.spec.org)
        for role in self.spec.roles:
            self.tokens.append(self.admin("create-token", "--org", self.spec.org, "--role", role))
        for _ in range(self.spec.replicas):
            self._serve(free_port())
        wait_ready(self.bases, self.servers)

    def _serve(self, port: int) -> None:
        profile = ["-m", "cProfile", "-o", f"/tmp/syncd-{port}.prof"] if PROFILE else []
        command = [sys.executable, *profile, "-m", "syncd", "serve", "--port", str(port)]
        if self.spec.workers > 1:
            command += ["--workers", str(self.spec.workers)]
        self.servers.append(
            subprocess.Popen(command, env=self.env, cwd=self.spec.root, start_new_session=True)
        )
        self.bases.append(f"http://127.0.0.1:{port}")

    def stop(self) -> None:
        """Servers, exchange, database: each step runs even when an earlier one failed."""
        for server in self.servers:
            server.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for server in self.servers:
            try:
                server.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        try:
            asyncio.run(cleanup_exchange(self.exchange))
        except Exception as exc:
            print(f"could not delete exchange {self.exchange}: {exc}", file=sys.stderr)
        if self.spec.keep:
            print(f"kept database {self.db} ({self.db_url})")
        else:
            asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)'))

    @asynccontextmanager
    async def clients(
        self, limits: aiohttp.ClientTimeout
    ) -> AsyncIterator[tuple[aiohttp.ClientSession, asyncpg.Pool]]:
        """One HTTP session (``limits``: its timeouts) for every simulated client, with no
        limit on connections, and a pool of two on the bench database."""
        connector = aiohttp.TCPConnector(limit=0)
        async with (
            aiohttp.ClientSession(connector=connector, timeout=limits) as session,
            asyncpg.create_pool(self.db_url, min_size=1, max_size=2) as pool,
        ):
            yield session, pool

    async def xacts(self, pool: asyncpg.Pool) -> int:
        """Transactions Postgres counted on the bench database (published up to 10 s late)."""
        row = await pool.fetchrow(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", self.db
        )
        return int(row[0])


def run_on_stack(spec: StackSpec, bench: Callable[[Stack], Coroutine[Any, Any, int]]) -> NoReturn:
    """Start a stack, run ``bench`` on it, tear it down; exit with ``bench``'s status."""
    signal.signal(signal.SIGTERM, _terminated)
    if spec.clients:
        raise_file_limit(spec.clients)
    stack = Stack.new(spec)
    status = 1
    try:
        stack.start()
        status = asyncio.run(bench(stack))
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        status = 130
    finally:
        stack.stop()
    sys.exit(status)


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def _database_url(db: str) -> str:
    return PG_URL.rsplit("/", 1)[0] + "/" + db


def syncd_admin(env: dict[str, str], root: Path, *args: str) -> str:
    """``syncd ARGS`` of the checkout at ``root``; its output, or a BenchError naming its error."""
    out = subprocess.run(
        [sys.executable, "-m", "syncd", *args], env=env, cwd=root, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise BenchError(f"syncd {' '.join(args)} failed: {out.stderr[-500:]}")
    return out.stdout.strip()


def raise_file_limit(connections: int) -> None:
    """Open-files limit to the hard limit (syncd inherits it); a warning when too low for
    ``connections``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < connections + 1000:
        print(f"warning: open-files limit {hard} is below {connections + 1000}", file=sys.stderr)
    elif soft < hard:
        print(f"open-files limit raised from {soft} to {hard} (bench and syncd)")


# --- the bench's side ------------------------------------------------------------------------


async def post(
    session: aiohttp.ClientSession, url: str, body: object, headers: dict[str, str]
) -> dict:
    """POST ``body`` (bytes as they are, ``headers`` naming their type; anything else as JSON);
    the JSON answer, or a BenchError with the status and the answer's start."""
    if isinstance(body, bytes):
        request = session.post(url, data=body, headers=headers)
    else:
        request = session.post(url, json=body, headers=headers)
    async with request as resp:
        raw = await resp.read()
    if resp.status >= 300:
        raise BenchError(f"POST {url} answered {resp.status}: {raw[:300]!r}")
    answer: dict = json.loads(raw)
    return answer


@dataclass
class Gate:
    """A gate enrolled over the public API, and the last seq it pushed."""

    gate_id: int
    event_id: int
    credential: str
    seq: int = 0

    @classmethod
    async def enrol(
        cls, session: aiohttp.ClientSession, base: str, token: str, event_id: int, name: str
    ) -> Gate:
        """A gate of ``event_id`` created with an organiser's ``token``, enrolled with its code."""
        auth = {"Authorization": f"Bearer {token}"}
        url = f"{base}/api/v1/events/{event_id}/gates"
        code = (await post(session, url, {"name": name}, auth))["code"]
        got = await post(session, base + ENROLL_PATH, {"code": code}, {})
        return cls(got["gate_id"], event_id, got["credential"])

    def h(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}

    async def changes(self, session: aiohttp.ClientSession, base: str, cursor: str) -> bytes:
        """One long-poll of the change feed from ``cursor`` (syncd holds it up to 25 s): the
        page as it came."""
        params = {"cursor": cursor, "wait": "25"}
        async with session.get(base + CHANGES_PATH, params=params, headers=self.h()) as resp:
            raw = await resp.read()
        if resp.status != 200:
            raise BenchError(f"changes answered {resp.status}")
        return raw


async def poll_until(check: Callable[[], bool], seconds: float, step: float) -> None:
    """Until ``check()`` or ``seconds`` passed (a bench polls its own counters)."""
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(step)
