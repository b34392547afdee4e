"""The messages gates exchange over the peer WebSocket (``/peer/v1/follow``), in order::

    server -> follower   Challenge   the server's certificate and a fresh nonce
    follower -> server   Hello       the follower's certificate, nonce and proof
    server -> follower   Welcome     the server's proof (both sides are now proven)
    follower -> server   Follow      the follower's mark for this server (its last applied seq)
    server -> follower   Admissions  the server's own admissions after the mark, signed, in order
                         or Records  (protocol 2) its admissions and annulments, signed, in order
    server -> follower   Tick        every heartbeat: the server's latest seq and clock

Every message is one JSON text frame, bounded in size and refused (connection closed) when it is
not exactly one of these (``extra`` fields, wrong types, out-of-range numbers).

**Versions.** Protocol 1 carries admissions only. Protocol 2 adds annulments: a follower asks
for the WebSocket subprotocol ``PROTOCOL_2``; a server that knows it selects it, and only then
does the follower set ``Follow.annulments`` (a protocol-1 server refuses a field it does not
know). A server sends ``Records`` only to a follower whose ``Follow`` says ``annulments: true``,
``Admissions`` as before to any other, so old and new gates follow each other both ways. An
optional field is left out of the JSON when it is None (``send``), never sent as null.

An ``Annul`` is checked by its signature alone after it parsed: one that does not verify is
ignored (and logged) by the follower, the session goes on; its ``sig`` may therefore be missing
or of any short length here. A bad admission signature still ends the session.
"""

from __future__ import annotations

import asyncio
import json
from typing import Literal, TypeVar

from aiohttp import WSMsgType, web
from aiohttp.client_ws import ClientWebSocketResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.peering import MAX_CERT_TEXT, PeerError

FOLLOW_PATH = "/peer/v1/follow"
PROTOCOL_2 = "tessera-peer.2"
MAX_BATCH = 100
MAX_MESSAGE = 64 * 1024
_NONCE = Field(pattern=r"^[0-9a-f]{32}$")
_SIG = Field(min_length=86, max_length=86)
_CERT = Field(min_length=10, max_length=MAX_CERT_TEXT)
M = TypeVar("M", bound="_Message")


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Challenge(_Message):
    t: Literal["challenge"] = "challenge"
    cert: str = _CERT
    nonce: str = _NONCE


class Hello(_Message):
    t: Literal["hello"] = "hello"
    cert: str = _CERT
    nonce: str = _NONCE
    sig: str = _SIG


class Welcome(_Message):
    t: Literal["welcome"] = "welcome"
    sig: str = _SIG


class Follow(_Message):
    t: Literal["follow"] = "follow"
    after: int = Field(ge=0, le=2**63 - 1)
    annulments: bool | None = None  # protocol 2: True = send Records; absent = Admissions


class Item(_Message):
    seq: int = Field(ge=1, le=2**63 - 1)
    ticket: int = Field(ge=0, le=2**63 - 1)
    dir: Literal["in", "out"]
    at: float = Field(ge=0, le=2**32 - 1, allow_inf_nan=False)
    skew: float = Field(ge=-(2**32), le=2**32, allow_inf_nan=False)
    sig: str = _SIG


class Annul(_Message):
    """The server's journal row ``seq`` annulled its admission ``ref`` (ticket, direction)."""

    k: Literal["annul"] = "annul"
    seq: int = Field(ge=1, le=2**63 - 1)
    ref: int = Field(ge=1, le=2**63 - 1)
    ticket: int = Field(ge=0, le=2**63 - 1)
    dir: Literal["in", "out"]
    at: float = Field(ge=0, le=2**32 - 1, allow_inf_nan=False)
    skew: float = Field(ge=-(2**32), le=2**32, allow_inf_nan=False)
    sig: str = Field(default="", max_length=90)


class Admissions(_Message):
    t: Literal["admissions"] = "admissions"
    items: list[Item] = Field(min_length=1, max_length=MAX_BATCH)


class Records(_Message):
    t: Literal["records"] = "records"
    items: list[Annul | Item] = Field(min_length=1, max_length=MAX_BATCH)


class Tick(_Message):
    t: Literal["tick"] = "tick"
    head: int = Field(ge=0, le=2**63 - 1)
    at: float = Field(ge=0, le=2**32 - 1, allow_inf_nan=False)


Socket = web.WebSocketResponse | ClientWebSocketResponse


async def receive(ws: Socket, within: float) -> dict[str, object]:
    """One JSON object from the socket within ``within`` seconds, or PeerError."""
    msg = await ws.receive(within)
    if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
        raise ConnectionResetError("the peer closed the connection")
    if msg.type != WSMsgType.TEXT or len(msg.data) > MAX_MESSAGE:
        raise PeerError(f"peer sent a {msg.type.name} frame instead of a message")
    try:
        data = json.loads(msg.data)
    except ValueError as exc:
        raise PeerError("peer sent a frame that is not JSON") from exc
    if not isinstance(data, dict):
        raise PeerError("peer sent JSON that is not an object")
    return data


def parse(model: type[M], data: dict[str, object]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PeerError(f"peer sent a bad {model.__name__.lower()} message") from exc


async def expect(ws: Socket, model: type[M], within: float) -> M:
    return parse(model, await receive(ws, within))


async def send(ws: Socket, message: _Message, within: float) -> None:
    """Send one message; a peer that does not take it ``within`` seconds is a TimeoutError."""
    await asyncio.wait_for(ws.send_str(message.model_dump_json(exclude_none=True)), within)
