"""Publish a batch of messages on a confirm channel in one write, with one confirm per message.

aiormq's ``basic_publish`` costs several event-loop round trips and a socket write per message
(about 450 µs of CPU), which caps a relay near 2,000 messages/s. Here the whole batch is
marshalled into one frame buffer and queued once, under the channel's publish lock, and each
message gets its delivery tag and confirmation future registered exactly as ``basic_publish``
registers them, so aiormq's own reader resolves acks, nacks (``multiple`` too) and returns.
The frames on the wire are the ordinary ``basic.publish`` + content header + body frames.

This touches aiormq's channel attributes (``lock``, ``delivery_tag``, ``confirmations``,
``message_id_delivery_tag``, ``write_queue``); ``tests/syncd/test_fanout.py`` and the e2e
tests exercise it against a real broker, so an aiormq upgrade that moves them fails loudly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import aiormq
from aiormq.abc import ChannelFrame
from pamqp import commands as spec
from pamqp.header import ContentHeader


@dataclass(frozen=True, slots=True)
class Outgoing:
    routing_key: str
    body: bytes
    message_id: str


def _properties(message_id: str) -> spec.Basic.Properties:
    return spec.Basic.Properties(
        message_id=message_id,
        content_type="application/json",
        delivery_mode=2,  # persistent
        app_id="syncd",
    )


def _forget(channel: aiormq.Channel, message_id: str) -> Callable[[asyncio.Future], None]:
    def forget(_: asyncio.Future) -> None:
        channel.message_id_delivery_tag.pop(message_id, None)

    return forget


async def publish_batch(
    channel: aiormq.Channel, exchange: str, batch: list[Outgoing]
) -> list[asyncio.Future]:
    """Queue every message (``mandatory``, persistent); returns one confirmation per message."""
    if not channel.publisher_confirms:
        raise RuntimeError("publish_batch needs a channel with publisher confirms")
    frames: list = []
    confirmations: list[asyncio.Future] = []
    async with channel.lock:
        for m in batch:
            channel.delivery_tag += 1
            future = channel.create_future()
            channel.confirmations[channel.delivery_tag] = future
            channel.message_id_delivery_tag[m.message_id] = channel.delivery_tag
            future.add_done_callback(_forget(channel, m.message_id))
            confirmations.append(future)
            frames.append(
                spec.Basic.Publish(exchange=exchange, routing_key=m.routing_key, mandatory=True)
            )
            frames.append(
                ContentHeader(properties=_properties(m.message_id), body_size=len(m.body))
            )
            frames += channel._split_body(m.body)
        await channel.write_queue.put(
            ChannelFrame.marshall(channel_number=channel.number, frames=frames)
        )
    return confirmations
