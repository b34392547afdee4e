"""``--source serial:/dev/ttyACM0``: a scanner in USB-CDC (virtual COM port) or RS-232 mode.

A serial scanner needs no terminal and no focus, so it serves a gate under systemd. The port
is opened with pyserial (raw mode, the configured baud and framing, an exclusive lock so no
second process steals bytes), then read by the event loop (``gate.scan.reader``) and framed
by the shared ``LineFramer``: CR, LF or CRLF suffixes all work.

Options come from ``GATE_SERIAL_*`` and may be overridden per source, URL-style:
``serial:/dev/ttyACM0?baud=115200&parity=E``. Unplugging the scanner does not stop the gate
(``gate.scan.device``): the half-read line is dropped and the port reopened when it is back
(a udev symlink such as ``/dev/serial/by-id/...`` keeps the path stable).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

import serial
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gate.scan.device import DeviceSource, parse_spec
from gate.scan.lines import LineFramer
from gate.scan.reader import read_chunks

KIND = "serial"


class SerialSettings(BaseSettings):
    """How a serial scanner's port is set up (env prefix ``GATE_SERIAL_``)."""

    model_config = SettingsConfigDict(env_prefix="GATE_SERIAL_", extra="forbid")

    baud: int = Field(default=9600, ge=50, le=4_000_000, description="Baud rate (USB-CDC: any).")
    bytesize: int = Field(default=8, ge=5, le=8, description="Data bits (5-8).")
    parity: Literal["N", "E", "O", "M", "S"] = Field(default="N", description="Parity N/E/O/M/S.")
    stopbits: float = Field(default=1, description="Stop bits (1, 1.5 or 2).")
    reopen_seconds: float = Field(
        default=1.0, gt=0, le=60, description="Seconds between tries to reopen a lost port."
    )

    @field_validator("stopbits")
    @classmethod
    def _check_stopbits(cls, value: float) -> float:
        if value not in (1, 1.5, 2):
            raise ValueError("stop bits are 1, 1.5 or 2")
        return value


class SerialSource(DeviceSource[serial.Serial]):
    """Scanned texts from a serial port; runs until the gate stops (it survives unplugging)."""

    via = "serial"

    def __init__(self, path: str, settings: SerialSettings) -> None:
        self.settings = settings
        super().__init__(path, self.settings.reopen_seconds)

    @classmethod
    def from_spec(cls, spec: str, settings: SerialSettings) -> SerialSource:
        """The source ``spec`` names; its options override ``settings`` (the gate's)."""
        return cls(*parse_spec(spec, KIND, settings))

    def open(self) -> serial.Serial:
        s = self.settings
        try:
            return serial.Serial(
                self.path, s.baud, s.bytesize, s.parity, s.stopbits, timeout=0, exclusive=True
            )
        except serial.SerialException as exc:
            raise OSError(str(exc)) from exc

    async def read(self, handle: serial.Serial) -> AsyncIterator[str]:
        framer = LineFramer()
        async for chunk in read_chunks(handle.fileno()):
            for text in framer.feed(chunk):
                yield text

    def close(self, handle: serial.Serial) -> None:
        handle.close()
