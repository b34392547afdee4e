"""An example consumer of syncd's fan-out: prints check-in events live, deduplicated.

The relay delivers at least once (a broker or database failure between publish and "sent"
repeats a message), so a consumer dedupes by ``message_id`` (the outbox id). This one keeps the
last ``remember`` ids in memory; a consumer with side effects would store them with its effect.
Its queue is dead-lettered to ``<exchange>.dlx``: a message it cannot parse is rejected there
rather than retried forever.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aio_pika


@dataclass(frozen=True, slots=True)
class WatchConfig:
    url: str
    exchange: str
    keys: tuple[str, ...] = ("#",)
    queue: str = ""  # empty: a private queue deleted when the watcher stops
    remember: int = 1_000_000
    limit: int = 0  # stop after this many distinct messages (0 = never)


class Dedupe:
    """The last ``size`` message ids seen; ``fresh(id)`` is True the first time only."""

    def __init__(self, size: int) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self.duplicates = 0

    def fresh(self, message_id: str) -> bool:
        if message_id in self._seen:
            self.duplicates += 1
            return False
        self._seen[message_id] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True


def describe(routing_key: str, body: dict[str, Any]) -> str:
    """One line for a person watching the door."""
    if routing_key == "tickets.updated":
        span = f"{body.get('from_seq')}..{body.get('to_seq')}"
        return f"event {body.get('event_id')}: list changed (feed {span})"
    who = f"ticket {body.get('ticket_id')} at {body.get('gate_name')}"
    if routing_key == "checkin.conflict":
        entry = body.get("entry") or {}
        return f"CONFLICT {who}: already entered at {entry.get('gate_name')}"
    if routing_key == "checkin.invalid":
        return f"denied {who}: {body.get('reason')}"
    return f"{'in ' if routing_key == 'checkin.performed' else 'out'} {who}"


async def _queue(channel: aio_pika.abc.AbstractChannel, cfg: WatchConfig) -> Any:
    args: dict[str, Any] = {"x-dead-letter-exchange": f"{cfg.exchange}.dlx"}
    if cfg.queue:
        queue = await channel.declare_queue(cfg.queue, durable=True, arguments=args)
    else:
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True, arguments=args)
    for key in cfg.keys:
        await queue.bind(cfg.exchange, key)
    return queue


async def watch(cfg: WatchConfig, emit: Callable[[str, str, dict[str, Any]], None]) -> Dedupe:
    """Consume until ``limit`` distinct messages (or forever); ``emit(id, key, body)`` each."""
    seen, count = Dedupe(cfg.remember), 0
    connection = await aio_pika.connect_robust(cfg.url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=500)
        queue = await _queue(channel, cfg)
        async with queue.iterator() as messages:
            async for message in messages:
                try:
                    body = json.loads(message.body)
                except ValueError:
                    await message.reject(requeue=False)  # to the dead-letter queue
                    continue
                if seen.fresh(message.message_id or ""):
                    emit(message.message_id or "", message.routing_key or "", body)
                    count += 1
                await message.ack()
                if cfg.limit and count >= cfg.limit:
                    break
    return seen


def run(cfg: WatchConfig, emit: Callable[[str, str, dict[str, Any]], None]) -> Dedupe:
    try:
        return asyncio.run(watch(cfg, emit))
    except KeyboardInterrupt:
        return Dedupe(0)
