"""A lean AMQP 0-9-1 consumer for scripts/bench_sync and bench_relay, in a process of its own.

Why: a benchmark's consumer must cost the machine little and never delay the load generator.
aio-pika/aiormq spend tens of microseconds of Python per message; here the hot path is a plain
blocking socket and a hand-written frame parser (``DeliveryParser``), in a separate process so
its work never runs on the load gates' event loop.

The handshake uses pamqp to build and read the frames: Connection.Start-Ok (PLAIN), Tune-Ok,
Open, Channel.Open, an exclusive server-named queue bound to the exchange with ``#``,
Basic.Consume with ``no_ack``. After that only four frame kinds are expected and parsed by hand
with struct: the basic.deliver method frame, its content header (up to ``message_id``), body
frames (a body may span several), heartbeats. Anything else (a channel or connection close) is
a ``ConsumerError``.

For each message the consumer records its arrival (``time.time()`` when the socket read that
completed it returned), ``message_id``, routing key and raw body; a repeated ``message_id`` is
only counted as a duplicate. JSON parsing and analysis happen after the run, in the caller.
``ConsumerProcess`` runs it in a spawned process: ``count`` is live (distinct check-in messages,
routing keys ``check*``), ``stop()`` returns everything received.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import unquote, urlsplit

from pamqp import commands as spec
from pamqp import frame as pframe
from pamqp.base import Frame
from pamqp.header import ProtocolHeader

FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE
HEARTBEAT = b"\x08\x00\x00\x00\x00\x00\x00\xce"
_HEAD = struct.Struct(">BHI")  # frame type, channel, payload size
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
# Basic property flags before message_id (bit 7), in wire order, with how to skip each.
_SHORTSTR, _TABLE, _OCTET = 0, 1, 2
_BEFORE_MESSAGE_ID = (
    (1 << 15, _SHORTSTR),  # content_type
    (1 << 14, _SHORTSTR),  # content_encoding
    (1 << 13, _TABLE),  # headers
    (1 << 12, _OCTET),  # delivery_mode
    (1 << 11, _OCTET),  # priority
    (1 << 10, _SHORTSTR),  # correlation_id
    (1 << 9, _SHORTSTR),  # reply_to
    (1 << 8, _SHORTSTR),  # expiration
)
_MESSAGE_ID = 1 << 7

Delivery = tuple[bytes, bytes | None, bytes]  # routing key, message_id, body


class ConsumerError(Exception):
    """The broker closed the channel or connection, or sent something this consumer cannot read."""


_SKIPS: dict[int, tuple[int, ...]] = {}  # property flags -> kinds of the fields to skip


def _message_id(buf: bytearray, start: int) -> bytes | None:
    """``message_id`` from a content header payload starting at ``start``."""
    flags = _U16.unpack_from(buf, start + 12)[0]
    p = start + 14
    last = flags
    while last & 1:  # a continued flag word (never for basic, but legal framing)
        last = _U16.unpack_from(buf, p)[0]
        p += 2
    if not flags & _MESSAGE_ID:
        return None
    if (skips := _SKIPS.get(flags)) is None:
        skips = _SKIPS[flags] = tuple(kind for bit, kind in _BEFORE_MESSAGE_ID if flags & bit)
    for kind in skips:
        if kind == _SHORTSTR:
            p += 1 + buf[p]
        elif kind == _TABLE:
            p += 4 + _U32.unpack_from(buf, p)[0]
        else:
            p += 1
    return bytes(buf[p + 1 : p + 1 + buf[p]])


def _routing_key(buf: bytearray, start: int, end: int, channel: int) -> bytes:
    """The routing key of a basic.deliver method frame; any other method is an error."""
    if buf[start + 1] != 60 or buf[start + 3] != 60 or buf[start] or buf[start + 2]:
        raise ConsumerError(_describe(bytes(buf[start:end]), channel))
    p = start + 5 + buf[start + 4]  # consumer tag
    p += 9  # delivery tag, redelivered
    p += 1 + buf[p]  # exchange
    return bytes(buf[p + 1 : p + 1 + buf[p]])


def _describe(payload: bytes, channel: int) -> str:
    """A readable name for an unexpected method frame (pamqp reads it; off the hot path)."""
    try:
        _, _, value = pframe.unmarshal(
            _HEAD.pack(FRAME_METHOD, channel, len(payload)) + payload + bytes([FRAME_END])
        )
    except Exception as exc:
        return f"unreadable method frame ({exc})"
    text = getattr(value, "reply_text", "")
    return f"{value.name} on channel {channel}" + (f": {text}" if text else "")


@dataclass
class DeliveryParser:
    """Bytes after the handshake in, complete deliveries out; frames may split anywhere.

    One flat loop with local state: this runs once per frame, three frames per message.
    """

    _buf: bytearray = field(default_factory=bytearray)
    _routing_key: bytes = b""
    _message_id: bytes | None = None
    _size: int = -1  # body size announced by the content header; -1 = none pending
    _parts: list[bytes] = field(default_factory=list)
    _got: int = 0
    heartbeats: int = 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[Delivery]:
        buf = self._buf
        buf += data
        out: list[Delivery] = []
        key, mid, size = self._routing_key, self._message_id, self._size
        parts, got = self._parts, self._got
        head, pos, n = _HEAD.unpack_from, 0, len(buf)
        while n - pos >= 8:
            kind, channel, length = head(buf, pos)
            start = pos + 7
            end = start + length
            if end >= n:
                break
            if buf[end] != FRAME_END:
                raise ConsumerError(f"frame at byte {pos} does not end with 0xCE")
            pos = end + 1
            if kind == FRAME_BODY:
                if size < 0:
                    raise ConsumerError("a body frame without a content header")
                if not got and length == size:
                    out.append((key, mid, bytes(buf[start:end])))
                    size = -1
                    continue
                parts.append(bytes(buf[start:end]))
                got += length
                if got >= size:
                    out.append((key, mid, b"".join(parts)))
                    size, parts, got = -1, [], 0
            elif kind == FRAME_METHOD:
                key = _routing_key(buf, start, end, channel)
            elif kind == FRAME_HEADER:
                size = _U64.unpack_from(buf, start + 4)[0]
                mid = _message_id(buf, start)
                parts, got = [], 0
                if not size:
                    out.append((key, mid, b""))
                    size = -1
            elif kind == FRAME_HEARTBEAT:
                self.heartbeats += 1
            else:
                raise ConsumerError(f"unexpected frame type {kind}")
        del buf[:pos]
        self._routing_key, self._message_id, self._size = key, mid, size
        self._parts, self._got = parts, got
        return out


@dataclass
class Received:
    """Every distinct message, in arrival order, and how many repeats were dropped."""

    arrivals: list[float] = field(default_factory=list)
    message_ids: list[bytes | None] = field(default_factory=list)
    routing_keys: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    duplicates: int = 0


class Consumer:
    """One blocking connection: ``connect()`` does the handshake, ``run()`` the hot loop."""

    def __init__(self, url: str, exchange: str) -> None:
        self.url, self.exchange = urlsplit(url), exchange
        self.sock: socket.socket | None = None
        self.queue = ""
        self.heartbeat = 0
        self._pending = bytearray()
        self.received = Received()
        self.checkins = 0

    def connect(self, timeout: float = 10.0) -> None:
        u = self.url
        self.sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 5672), timeout)
        self.sock.sendall(ProtocolHeader().marshal())
        self._expect(spec.Connection.Start)
        user, password = unquote(u.username or "guest"), unquote(u.password or "guest")
        self._send(0, spec.Connection.StartOk(response=f"\0{user}\0{password}", locale="en_US"))
        tune = self._expect(spec.Connection.Tune)
        assert isinstance(tune, spec.Connection.Tune)
        self.heartbeat = tune.heartbeat
        self._send(0, spec.Connection.TuneOk(tune.channel_max, tune.frame_max, tune.heartbeat))
        vhost = unquote(u.path[1:]) if len(u.path) > 1 else "/"
        self._send(0, spec.Connection.Open(virtual_host=vhost))
        self._expect(spec.Connection.OpenOk)
        self._send(1, spec.Channel.Open())
        self._expect(spec.Channel.OpenOk)
        self._send(1, spec.Queue.Declare(queue="", exclusive=True, auto_delete=True))
        declared = self._expect(spec.Queue.DeclareOk)
        assert isinstance(declared, spec.Queue.DeclareOk)
        self.queue = str(declared.queue)
        self._send(1, spec.Queue.Bind(queue=self.queue, exchange=self.exchange, routing_key="#"))
        self._expect(spec.Queue.BindOk)
        self._send(1, spec.Basic.Consume(queue=self.queue, no_ack=True))
        self._expect(spec.Basic.ConsumeOk)

    def run(self, stopping: Callable[[], bool], counted: Callable[[int], None]) -> None:
        """Receive until ``stopping()``; ``counted(n)`` after each read that added check-ins."""
        sock = self.sock
        assert sock is not None
        sock.settimeout(0.2)
        parser, got = DeliveryParser(), self.received
        seen: set[bytes] = set()
        chunk = bytearray(1 << 18)
        view = memoryview(chunk)
        beat, next_beat = self.heartbeat / 2, time.monotonic() + self.heartbeat / 2
        pending, self._pending = bytes(self._pending), bytearray()
        while not stopping():
            data: bytes | memoryview
            if pending:
                data, pending = pending, b""
            else:
                try:
                    n = sock.recv_into(chunk)
                except TimeoutError:
                    n = -1
                if n == 0:
                    raise ConsumerError("the broker closed the connection")
                data = view[:n] if n > 0 else b""
            now = time.time()
            before = self.checkins
            for key, mid, body in parser.feed(data):
                if mid is not None:
                    if mid in seen:
                        got.duplicates += 1
                        continue
                    seen.add(mid)
                got.arrivals.append(now)
                got.message_ids.append(mid)
                got.routing_keys.append(key)
                got.bodies.append(body)
                if key.startswith(b"check"):
                    self.checkins += 1
            if self.checkins != before:
                counted(self.checkins)
            if beat and time.monotonic() >= next_beat:
                sock.sendall(HEARTBEAT)
                next_beat = time.monotonic() + beat

    def close(self) -> None:
        """Close politely (the exclusive queue goes with the connection); never raises."""
        if self.sock is None:
            return
        try:
            self.sock.settimeout(2)
            self._send(0, spec.Connection.Close(200, "bench done", 0, 0))
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and self.sock.recv(1 << 16):
                pass  # deliveries still in flight, then Close-Ok and EOF
        except OSError:
            pass
        finally:
            self.sock.close()
            self.sock = None

    def _send(self, channel: int, value: Frame) -> None:
        assert self.sock is not None
        self.sock.sendall(pframe.marshal(value, channel))

    def _expect(self, kind: type[Frame]) -> Any:
        """Read frames until one of ``kind``; heartbeats are skipped, anything else fails."""
        assert self.sock is not None
        while True:
            while True:
                if len(self._pending) >= 7:
                    size = _HEAD.unpack_from(self._pending, 0)[2]
                    if len(self._pending) >= 8 + size:
                        break
                data = self.sock.recv(1 << 16)
                if not data:
                    raise ConsumerError(f"connection closed while waiting for {kind.__name__}")
                self._pending += data
            used, _, value = pframe.unmarshal(bytes(self._pending[: 8 + size]))
            del self._pending[:used]
            if isinstance(value, kind):
                return value
            if value.name != "Heartbeat":
                text = getattr(value, "reply_text", "")
                raise ConsumerError(f"expected {kind.__name__}, got {value.name} {text}".strip())


def _serve(url: str, exchange: str, pipe: Connection, count: Any, stop: Any) -> None:
    """Process entry: handshake, report ready, consume until ``stop``, send ``Received``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us; Ctrl-C is its business
    consumer = Consumer(url, exchange)
    try:
        consumer.connect()
        pipe.send(("ready", consumer.queue))

        def counted(n: int) -> None:
            count.value = n

        consumer.run(stop.is_set, counted)
    except Exception as exc:
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    finally:
        consumer.close()
    pipe.send(("done", consumer.received))


class ConsumerProcess:
    """The consumer in a spawned process. ``count`` is live; ``stop()`` returns what arrived."""

    def __init__(self, url: str, exchange: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._count: Any = ctx.Value("q", 0, lock=False)  # written by the child only
        self._pipe, child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_serve,
            args=(url, exchange, child, self._count, self._stop),
            name="bench-consumer",
            daemon=True,
        )

    @property
    def pid(self) -> int:
        assert self._proc.pid is not None
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.is_alive()

    @property
    def count(self) -> int:
        """Distinct check-in messages (routing keys ``check*``) received so far."""
        return int(self._count.value)

    def start(self, timeout: float = 60.0) -> str:
        """Start and wait until the queue is bound and consuming; returns the queue's name."""
        self._proc.start()
        status, detail = self._receive(timeout)
        if status != "ready":
            raise ConsumerError(f"consumer did not start: {detail}")
        return str(detail)

    def stop(self, timeout: float = 60.0) -> Received:
        self._stop.set()
        status, detail = self._receive(timeout)
        self._proc.join(10)
        if status != "done":
            raise ConsumerError(f"consumer failed: {detail}")
        assert isinstance(detail, Received)
        return detail

    def kill(self) -> None:
        """Last resort (exception paths): end the process if it still runs."""
        if self._proc.pid is not None and self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)

    def _receive(self, timeout: float) -> tuple[str, Any]:
        if not self._pipe.poll(timeout):
            self.kill()
            return "error", f"no answer within {timeout:g} s"
        try:
            status, detail = self._pipe.recv()
        except EOFError:
            return "error", f"the process ended (exit code {self._proc.exitcode})"
        return str(status), detail
