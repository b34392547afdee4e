"""The broker's side of the fan-out, declared at every connect, idempotently.

Topology (declared at every connect, idempotently), for ``SYNCD_AMQP_EXCHANGE=<x>``::

    <x>            topic, durable; alternate-exchange <x>.unrouted; routing keys from
                   shared.protocol.ROUTING_KEYS; consumers bind their own queues
    <x>.unrouted   fanout, durable -> queue <x>.unrouted (messages no queue wanted are kept)
    <x>.dlx        topic, durable  -> queue <x>.dead bound "#" (consumers' queues set
                   x-dead-letter-exchange=<x>.dlx, so rejected poison messages land here)
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange


async def declare_topology(channel: AbstractChannel, name: str) -> AbstractExchange:
    """Declare the exchange, its dead-letter and unrouted companions; returns the exchange."""
    dlx = await channel.declare_exchange(f"{name}.dlx", aio_pika.ExchangeType.TOPIC, durable=True)
    dead = await channel.declare_queue(f"{name}.dead", durable=True)
    await dead.bind(dlx, "#")
    unrouted = await channel.declare_exchange(
        f"{name}.unrouted", aio_pika.ExchangeType.FANOUT, durable=True
    )
    kept = await channel.declare_queue(f"{name}.unrouted", durable=True)
    await kept.bind(unrouted)
    return await channel.declare_exchange(
        name,
        aio_pika.ExchangeType.TOPIC,
        durable=True,
        arguments={"alternate-exchange": f"{name}.unrouted"},
    )
