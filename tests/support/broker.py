"""What the test suite leaves on the RabbitMQ broker: nothing, and this checks it.

Every test names its exchanges and queues under a namespace of its own (``tests.conftest.Rabbit``)
and deletes them. ``BrokerLedger`` snapshots the broker's exchanges and queues when the session
starts and again when it ends, and reports what is new *and* belongs to this session: a name
under one of this session's namespaces, or a fixed name (one without a random id in it, such as
syncd's default ``tessera`` exchange, which an earlier ``test_serve`` left behind with its
``tessera.dlx``, ``tessera.unrouted`` and ``tessera.dead``). Names with a random id from other
runs (other worktrees' tests, the demo, benchmarks on the same broker) are not this session's.

The snapshot comes from ``rabbitmqctl`` when this user may run it against the local broker; where
it may not, the check falls back to AMQP passive declares of syncd's fixed default names (AMQP has
no way to list names).
"""

from __future__ import annotations

import re
import subprocess
from urllib.parse import urlparse

import aio_pika
import aiormq

SYNCD_DEFAULTS = {
    "exchange": ["tessera", "tessera.dlx", "tessera.unrouted"],
    "queue": ["tessera.dead", "tessera.unrouted"],
}
_RANDOM_ID = re.compile(r"[0-9a-f]{8,}")


def rabbitmqctl_names(amqp_url: str) -> set[str] | None:
    """``"exchange NAME"``/``"queue NAME"`` of everything on the local broker; None: cannot ask."""
    if urlparse(amqp_url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    names: set[str] = set()
    for kind in ("exchange", "queue"):
        try:
            out = subprocess.run(
                ["rabbitmqctl", "-q", f"list_{kind}s", "name", "--no-table-headers"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.returncode != 0:
            return None
        names |= {f"{kind} {line.strip()}" for line in out.stdout.splitlines() if line.strip()}
    return names


async def passive_names(amqp_url: str) -> set[str]:
    """Which of syncd's fixed default names exist on the broker (AMQP passive declares)."""
    found: set[str] = set()
    async with await aio_pika.connect(amqp_url, timeout=10) as conn:
        for kind, names in SYNCD_DEFAULTS.items():
            for name in names:
                channel = await conn.channel()
                try:
                    if kind == "exchange":
                        await channel.declare_exchange(name, passive=True)
                    else:
                        await channel.declare_queue(name, passive=True)
                    found.add(f"{kind} {name}")
                except aiormq.exceptions.ChannelNotFoundEntity:
                    continue
                await channel.close()
    return found


def leaked(before: set[str], after: set[str], namespaces: set[str]) -> list[str]:
    """New names in ``after`` that this session made: under its namespaces or fixed."""
    new = after - before
    return sorted(
        entry
        for entry in new
        if any(ns in entry for ns in namespaces) or not _RANDOM_ID.search(entry)
    )
