"""What serial and evdev scanner sources share: ``KIND:PATH?option=value`` specs and reopening.

A scanner on an appliance gets unplugged, re-enumerated or is plugged in after the gate
started. A ``DeviceSource`` therefore never ends because its device is missing or went away:
it logs once per outage and tries again every ``reopen_seconds`` until the gate stops. Only a
replay (a FIFO or a file, not a device) ends at its end of input.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Generic, TypeVar
from urllib.parse import parse_qsl

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from gate.scan.reader import DeviceGoneError
from shared.errors import ConfigError

log = logging.getLogger(__name__)
S = TypeVar("S", bound=BaseSettings)
H = TypeVar("H")


def parse_spec(spec: str, kind: str, settings: S) -> tuple[str, S]:
    """``KIND:PATH[?option=value&...]`` -> (path, the gate's ``settings`` with the options on top).

    An unknown option or a bad value is a ``ConfigError`` naming the option.
    """
    path, _, query = spec.removeprefix(f"{kind}:").partition("?")
    if not path:
        raise ConfigError(f"{kind} source needs a device path, e.g. {kind}:/dev/...")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as exc:
        raise ConfigError(f"bad options in {spec!r}: use ?name=value&name=value") from exc
    try:
        return path, type(settings)(**(settings.model_dump() | options))
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"bad option {name!r} for {kind} source: {first['msg']}") from exc


def is_device(path: str) -> bool:
    """A character device (a real scanner) rather than a FIFO or file (a replay)."""
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return True  # not there yet: it will be a device when it is plugged in


class DeviceSource(ABC, Generic[H]):
    """Opens a device, reads texts from it, reopens it when it goes away; see module docs."""

    via = "device"

    def __init__(self, path: str, reopen_seconds: float) -> None:
        self.path = path
        self.reopen_seconds = reopen_seconds
        self.opened = 0
        self._reported = False

    async def texts(self) -> AsyncIterator[str]:
        while True:
            handle = self._try_open()
            if handle is not None:
                try:
                    async for text in self.read(handle):
                        yield text
                    if not is_device(self.path):
                        return  # a replay ended
                except DeviceGoneError:
                    pass
                finally:
                    self.close(handle)
                log.warning("%s scanner lost; reopening", self.via, extra={"path": self.path})
            await asyncio.sleep(self.reopen_seconds)

    def _try_open(self) -> H | None:
        try:
            handle = self.open()
        except (OSError, ValueError) as exc:
            if not self._reported:  # once per outage, not once a second
                log.warning(
                    "%s scanner not available: %s", self.via, exc, extra={"path": self.path}
                )
                self._reported = True
            return None
        self.opened += 1
        self._reported = False
        log.info("%s scanner connected", self.via, extra={"path": self.path})
        return handle

    @abstractmethod
    def open(self) -> H:
        """Open and set up the device; OSError or ValueError when it is not usable now."""

    @abstractmethod
    def read(self, handle: H) -> AsyncIterator[str]:
        """Texts until end of input; raises DeviceGoneError when the device disappears."""

    @abstractmethod
    def close(self, handle: H) -> None:
        """Release the device."""
