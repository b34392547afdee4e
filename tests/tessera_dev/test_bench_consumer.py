"""tessera_dev/bench/consumer.py: the hand-written frame parser and the consumer process.

The parser is checked against frames pamqp marshals (the same library aiormq and syncd's relay
use to write them), fed whole, byte by byte and in random splits; the process against the real
RabbitMQ, with messages published by aio-pika.
"""

from __future__ import annotations

import asyncio
import datetime
import random

import aio_pika
import pytest
from pamqp import commands as spec
from pamqp import frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader
from pamqp.heartbeat import Heartbeat

from tessera_dev.bench.consumer import ConsumerError, ConsumerProcess, DeliveryParser
from tests.conftest import Rabbit

PROPERTIES = [
    spec.Basic.Properties(),
    spec.Basic.Properties(message_id="42"),
    spec.Basic.Properties(
        message_id="7", content_type="application/json", delivery_mode=2, app_id="syncd"
    ),
    spec.Basic.Properties(
        content_type="application/json",
        content_encoding="utf-8",
        headers={"x-death": "none", "n": 3, "nested": {"a": True}},
        delivery_mode=1,
        priority=9,
        correlation_id="corr",
        reply_to="amq.rabbitmq.reply-to",
        expiration="60000",
        message_id="123456789012",
        timestamp=datetime.datetime(2024, 5, 1, tzinfo=datetime.UTC),
        message_type="checkin.performed",
        user_id="guest",
        app_id="bench",
    ),
    spec.Basic.Properties(app_id="only-after-message-id", timestamp=datetime.datetime.now()),
]
BODIES = [b"", b"{}", b'{"type":"checkin.performed","seq":1}' * 3, bytes(range(256)) * 5]


def _message(k: int, props: spec.Basic.Properties, body: bytes, frame_max: int) -> bytes:
    """One delivery as the broker writes it: method, header, body split at ``frame_max``."""
    out = frame.marshal(
        spec.Basic.Deliver(
            consumer_tag=f"ctag-{k}" * (k % 3),
            delivery_tag=k + 1,
            redelivered=bool(k % 2),
            exchange="x" * (k % 5),
            routing_key=f"checkin.k{k}",
        ),
        1,
    )
    out += frame.marshal(ContentHeader(body_size=len(body), properties=props), 1)
    for i in range(0, len(body), frame_max):
        out += frame.marshal(ContentBody(body[i : i + frame_max]), 1)
    return out


def _stream() -> tuple[bytes, list[tuple[bytes, bytes | None, bytes]]]:
    data, want = b"", []
    k = 0
    for props in PROPERTIES:
        for body in BODIES:
            for frame_max in (7, 64, 4096):
                data += _message(k, props, body, frame_max)
                if k % 4 == 0:
                    data += frame.marshal(Heartbeat(), 0)
                mid = props.message_id.encode() if props.message_id else None
                want.append((f"checkin.k{k}".encode(), mid, body))
                k += 1
    return data, want


def _feed(chunks: list[bytes]) -> list[tuple[bytes, bytes | None, bytes]]:
    parser = DeliveryParser()
    got = []
    for chunk in chunks:
        got += parser.feed(chunk)
    return got


def test_parser_reads_pamqp_frames_whatever_the_reads() -> None:
    data, want = _stream()
    assert _feed([data]) == want
    assert _feed([data[i : i + 1] for i in range(len(data))]) == want
    rng = random.Random(6)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(data)), 200))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert _feed(chunks) == want


def test_parser_counts_heartbeats_and_keeps_an_incomplete_frame() -> None:
    parser = DeliveryParser()
    one = _message(0, spec.Basic.Properties(message_id="1"), b"body", 4096)
    assert parser.feed(frame.marshal(Heartbeat(), 0) + one[:-1]) == []
    assert parser.heartbeats == 1
    assert parser.feed(one[-1:]) == [(b"checkin.k0", b"1", b"body")]


def test_parser_names_a_channel_close() -> None:
    close = spec.Channel.Close(404, "NOT_FOUND - no exchange 'x'", 50, 20)
    with pytest.raises(ConsumerError, match=r"Channel\.Close on channel 1: NOT_FOUND"):
        DeliveryParser().feed(frame.marshal(close, 1))


def test_parser_rejects_a_frame_without_its_end_byte() -> None:
    broken = bytearray(frame.marshal(Heartbeat(), 0))
    broken[-1] = 0
    with pytest.raises(ConsumerError, match="0xCE"):
        DeliveryParser().feed(bytes(broken))


async def test_consumer_process_receives_every_message_once(rabbit: Rabbit) -> None:
    """Published with aio-pika to a topic exchange; one id sent twice counts as a duplicate."""
    name = rabbit.exchange()
    sent: list[tuple[str, str, bytes]] = []
    for i in range(1, 501):
        key = "tickets.updated" if i % 50 == 0 else "checkin.performed"
        size = 300_000 if i == 7 else i  # one body above the broker's frame_max
        sent.append((key, str(i), bytes([i % 256]) * size))
    async with await aio_pika.connect(rabbit.url) as conn:
        channel = await conn.channel()
        exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC)
        consumer = ConsumerProcess(rabbit.url, name)
        try:
            await asyncio.to_thread(consumer.start)
            for key, mid, body in [*sent[:-1], sent[3], sent[-1]]:
                await exchange.publish(aio_pika.Message(body, message_id=mid), key)
            checkins = sum(key.startswith("check") for key, _, _ in sent)
            for _ in range(600):
                if consumer.count >= checkins or not consumer.alive:
                    break
                await asyncio.sleep(0.1)
            got = await asyncio.to_thread(consumer.stop)
        finally:
            consumer.kill()
    assert got.duplicates == 1
    assert [
        (k.decode(), (m or b"").decode(), b)
        for k, m, b in zip(got.routing_keys, got.message_ids, got.bodies, strict=True)
    ] == sent
    assert len(got.arrivals) == len(sent)
    assert got.arrivals == sorted(got.arrivals)
