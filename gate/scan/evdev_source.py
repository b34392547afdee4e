"""``--source evdev:/dev/input/by-id/...-event-kbd``: a HID keyboard-wedge scanner, grabbed.

Under systemd a gate has no terminal, so a scanner that types like a keyboard is read from its
input device instead. The device is grabbed (``EVIOCGRAB``): its keystrokes reach only the
gate, never a console or the kiosk browser. Key events are turned into text by
``gate.scan.keymap`` (layout ``GATE_EVDEV_LAYOUT``, per source ``evdev:PATH?layout=de``), then
framed by the shared ``LineFramer``, so Enter ends a scan like a line end.

Why raw ``input_event`` structs and not python-evdev: python-evdev (2.0.0) builds and installs,
but its ``InputDevice`` runs device ioctls in its constructor, so it can only open a real evdev
node. Reading the structs (``struct input_event``: a timeval, type, code, value; ``llHHi``)
is the same kernel interface in a few lines, needs no C build on the appliance, and lets the
tests drive this very source through a FIFO of recorded events. A FIFO or file is a replay:
it is not grabbed and the source ends at its end.
"""

from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import AsyncIterator
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gate.scan.device import DeviceSource, is_device, parse_spec
from gate.scan.keymap import KeyDecoder
from gate.scan.lines import LineFramer
from gate.scan.reader import read_chunks

KIND = "evdev"
EVENT = struct.Struct("llHHi")
EV_KEY = 0x01
EVIOCGRAB = 0x40044590  # _IOW('E', 0x90, int)


class EvdevSettings(BaseSettings):
    """How a HID scanner's key events are read (env prefix ``GATE_EVDEV_``)."""

    model_config = SettingsConfigDict(env_prefix="GATE_EVDEV_", extra="forbid")

    layout: Literal["us", "de"] = Field(
        default="us", description="Keyboard layout the scanner is set to (us, de)."
    )
    grab: bool = Field(default=True, description="Grab the device so only the gate gets its keys.")
    reopen_seconds: float = Field(
        default=1.0, gt=0, le=60, description="Seconds between tries to reopen a lost device."
    )


def pack_events(events: list[tuple[int, int]], type_: int = EV_KEY) -> bytes:
    """Recorded (key code, value) pairs as the kernel writes them (for replays and tests)."""
    return b"".join(EVENT.pack(0, 0, type_, code, value) for code, value in events)


class EvdevSource(DeviceSource[int]):
    """Scanned texts from a grabbed input device; runs until the gate stops (or a replay ends)."""

    via = "evdev"

    def __init__(self, path: str, settings: EvdevSettings) -> None:
        self.settings = settings
        super().__init__(path, self.settings.reopen_seconds)

    @classmethod
    def from_spec(cls, spec: str, settings: EvdevSettings) -> EvdevSource:
        """The source ``spec`` names; its options override ``settings`` (the gate's)."""
        return cls(*parse_spec(spec, KIND, settings))

    def open(self) -> int:
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        if self.settings.grab and is_device(self.path):
            try:
                fcntl.ioctl(fd, EVIOCGRAB, 1)
            except OSError as exc:
                os.close(fd)
                raise OSError(exc.errno, f"cannot grab {self.path}: {exc.strerror}") from exc
        return fd

    async def read(self, handle: int) -> AsyncIterator[str]:
        decoder = KeyDecoder(self.settings.layout)
        framer = LineFramer()
        pending = b""
        async for chunk in read_chunks(handle, EVENT.size * 256):
            pending += chunk
            whole = len(pending) - len(pending) % EVENT.size
            typed = "".join(
                decoder.key(code, value)
                for _, _, kind, code, value in EVENT.iter_unpack(pending[:whole])
                if kind == EV_KEY
            )
            pending = pending[whole:]
            for text in framer.feed(typed.encode()):
                yield text
        for text in framer.finish():
            yield text

    def close(self, handle: int) -> None:
        os.close(handle)
