"""Test fixtures shared by the whole suite.

Postgres and RabbitMQ are real servers (scripts/setup makes sure they run). A missing service is
a set-up failure: the fixtures fail loudly, they never skip. Each test gets its own fresh
database and its own uniquely named exchange/queues, so nothing leaks between tests; after the
session, ``pytest_sessionfinish`` fails the run if the broker holds anything new that this session
made (tests/support/broker.py).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import aio_pika
import asyncpg
import pytest

from tests.support.broker import leaked, passive_names, rabbitmqctl_names

PG_URL = os.environ.get(
    "TESSERA_TEST_DATABASE_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("TESSERA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")

_COMPONENT_PREFIXES = ("GATE_", "SYNCD_", "TESSERA_CLI_")


@pytest.fixture(autouse=True)
def _clean_component_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings are built from what a test passes, never from the developer's shell."""
    for name in list(os.environ):
        if name.startswith(_COMPONENT_PREFIXES):
            monkeypatch.delenv(name)
    yield


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """URL of a brand-new, empty Postgres database, dropped after the test."""
    name = f"tessera_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(PG_URL, timeout=10)
    except Exception as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL!r} ({exc}); run scripts/setup")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield _with_database(PG_URL, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@dataclass
class Rabbit:
    """A RabbitMQ connection URL plus a per-test namespace for exchange and queue names."""

    url: str
    namespace: str
    declared_exchanges: list[str] = field(default_factory=list)
    declared_queues: list[str] = field(default_factory=list)

    def exchange(self, name: str = "events") -> str:
        full = f"{self.namespace}.{name}"
        self.declared_exchanges.append(full)
        return full

    def queue(self, name: str) -> str:
        full = f"{self.namespace}.{name}"
        self.declared_queues.append(full)
        return full


_BROKER: dict[str, object] = {}  # the snapshot before the first test that used the broker
_NAMESPACES: set[str] = set()  # every Rabbit namespace this session handed out


async def _broker_snapshot(method: str = "rabbitmqctl") -> tuple[str, set[str]]:
    names = rabbitmqctl_names(AMQP_URL) if method == "rabbitmqctl" else None
    if names is not None:
        return "rabbitmqctl", names
    return "passive", await passive_names(AMQP_URL)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when the broker holds exchanges or queues this session made and left."""
    if "before" not in _BROKER:
        return
    method, after = asyncio.run(_broker_snapshot(str(_BROKER["method"])))
    before = _BROKER["before"]
    assert isinstance(before, set)
    leaks = leaked(before, after, _NAMESPACES)
    if leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"the broker holds what this test session left ({method}): {', '.join(leaks)}"
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
async def rabbit() -> AsyncIterator[Rabbit]:
    """RabbitMQ with unique names; everything named through it is deleted after the test."""
    try:
        conn = await aio_pika.connect(AMQP_URL, timeout=10)
    except Exception as exc:
        pytest.fail(f"RabbitMQ is not reachable at {AMQP_URL!r} ({exc}); run scripts/setup")
    if "before" not in _BROKER:
        _BROKER["method"], _BROKER["before"] = await _broker_snapshot()
    r = Rabbit(url=AMQP_URL, namespace=f"tessera-test-{uuid.uuid4().hex[:12]}")
    _NAMESPACES.add(r.namespace)
    try:
        yield r
    finally:
        async with conn:
            channel = await conn.channel()
            for q in r.declared_queues:
                await channel.queue_delete(q)
            for ex in r.declared_exchanges:
                await channel.exchange_delete(ex)
