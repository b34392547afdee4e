"""Server-sent events, read incrementally: what syncd's feed stream sends (``syncd.feed.stream``).

Pure: bytes in, ``(event name, data)`` out; comments (keepalives) come out as ``("", "")`` so the
reader knows the link is alive. An event bigger than ``max_event`` bytes is refused
(``SseError``) rather than buffered: a feed page is a few hundred kilobytes at most.
"""

from __future__ import annotations

from collections.abc import Iterator

MAX_EVENT = 16 << 20


class SseError(ValueError):
    """The stream is not server-sent events this gate can use."""


class SseParser:
    def __init__(self, max_event: int = MAX_EVENT) -> None:
        self.max_event = max_event
        self._buffer = b""
        self._name = ""
        self._data: list[str] = []
        self._size = 0

    def feed(self, chunk: bytes) -> Iterator[tuple[str, str]]:
        """The events completed by ``chunk``, in order."""
        self._buffer += chunk
        while (end := self._buffer.find(b"\n")) >= 0:
            line, self._buffer = self._buffer[:end].rstrip(b"\r"), self._buffer[end + 1 :]
            if (event := self._line(line)) is not None:
                yield event
        if len(self._buffer) + self._size > self.max_event:
            raise SseError(f"an event over {self.max_event} bytes")

    def _line(self, raw: bytes) -> tuple[str, str] | None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SseError("not UTF-8") from None
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return ("", "")
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._name = value
        elif field == "data":
            self._data.append(value)
            self._size += len(value) + 1
            if self._size > self.max_event:
                raise SseError(f"an event over {self.max_event} bytes")
        return None

    def _dispatch(self) -> tuple[str, str] | None:
        name, data = self._name or "message", "\n".join(self._data)
        had_data = bool(self._data)
        self._name, self._data, self._size = "", [], 0
        return (name, data) if had_data else None
