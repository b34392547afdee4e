"""The relay's hand-made publish frames are byte for byte what aiormq/pamqp would send."""

from __future__ import annotations

import itertools
import json
from types import SimpleNamespace

import aiormq
import pytest
from aiormq.abc import ChannelFrame
from pamqp import commands as spec
from pamqp.header import ContentHeader

from shared.protocol import ROUTING_KEYS
from syncd.outbox.frames import MessageFrames as Frames
from syncd.outbox.frames import Outgoing

FRAME_MAX = (4096, 131072)  # the protocol's minimum, RabbitMQ's default


def pamqp_frames(
    channel: int, exchange: str, frame_max: int, m: Outgoing, *, mandatory: bool = True
) -> bytes:
    """What aiormq's ``basic_publish`` writes for the relay's messages."""
    splitter = SimpleNamespace(max_content_size=frame_max - aiormq.Channel.CONTENT_FRAME_SIZE)
    properties = spec.Basic.Properties(
        message_id=m.message_id, content_type="application/json", delivery_mode=2, app_id="syncd"
    )
    frames = [
        spec.Basic.Publish(exchange=exchange, routing_key=m.routing_key, mandatory=mandatory),
        ContentHeader(properties=properties, body_size=len(m.body)),
        *aiormq.Channel._split_body(splitter, m.body),  # type: ignore[arg-type]
    ]
    return ChannelFrame.marshall(channel_number=channel, frames=frames).payload


def bodies(frame_max: int) -> list[bytes]:
    most = frame_max - 8  # one body frame's payload
    checkin = {"type": "checkin.performed", "gate_name": "Nord-Tür", "seq": 17, "at": 1.5}
    return [
        b"",
        b"{}",
        json.dumps(checkin, ensure_ascii=False).encode(),
        b"x" * (most - 1),
        b"x" * most,
        b"x" * (most + 1),
        bytes(range(256)) * (3 * most // 256) + b"tail",
    ]


@pytest.mark.parametrize("frame_max", FRAME_MAX)
def test_frames_equal_pamqp_marshalling(frame_max: int) -> None:
    keys = [*ROUTING_KEYS, "checkin.zone.ü"]
    ids = ["1", "42", str(2**63 - 1)]
    for channel, exchange in [(1, "tessera"), (7, ""), (65535, "x" * 127), (2, "tt-1a.ev:x_y")]:
        frames = Frames(channel, exchange, frame_max - 8)
        cases = itertools.product(bodies(frame_max), keys, ids)
        for body, key, mid in cases:
            m = Outgoing(key, body, mid)
            assert frames.message(key, body, mid) == pamqp_frames(channel, exchange, frame_max, m)


def test_a_batch_is_its_messages_in_order() -> None:
    frames = Frames(3, "tessera", 131072 - 8)
    batch = [Outgoing(k, f'{{"n": {i}}}'.encode(), str(i)) for i, k in enumerate(ROUTING_KEYS)]
    out: list[bytes] = []
    for m in batch:
        frames.append(out, m.routing_key, m.body, m.message_id)
    assert b"".join(out) == b"".join(pamqp_frames(3, "tessera", 131072, m) for m in batch)


def test_names_longer_than_a_short_string_are_refused() -> None:
    with pytest.raises(ValueError, match="255"):
        Frames(1, "é" * 128, 4088)
    with pytest.raises(ValueError, match="255"):
        Frames(1, "tessera", 4088).message("k" * 256, b"{}", "1")
